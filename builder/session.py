"""Who is signed in to the builder: the sign-in form, the session, sign-out, and what a role may open.

The one public question for pages: **``current_actor()``** — the signed-in user as the
``engine.core.access.Actor`` every engine call takes (``actor=current_actor()``), or ``None`` when
nobody is signed in. ``acting_conveyor()`` is the app's ``Conveyor`` with that actor already given
to every change method (what a page changes through). ``signed_in_user()`` gives the whole session (``SignedIn``: name, role, the
manager row, whether a manager sees the team); ``require_actor()`` is ``current_actor()`` for a page
that must not render without one (it shows a notice and stops the run); ``can(permission)`` says
whether the signed-in role may do something, so a page hides what it may not use (the engine
refuses it anyway: roles are checked in the core). The router (``builder/app.py``) calls ``gate()``
first on every run: until someone signs in it shows only the sign-in form, and a session that has
expired, whose user was disabled or got a new password, is signed out.

A page reload is a new Streamlit session: the signed-in session is stored (``Conveyor.sessions``) and
its signed id kept in a cookie (``builder.cookie``), so the gate resumes it after a reload or in a new
tab. Sign-out ends the stored session, clears the cookie and forgets everything this tab kept for the
user (drafts, selections, pending toasts), so whoever signs in next starts clean.

Single sign-on: when ``.streamlit/secrets.toml`` has an ``[auth]`` section (Streamlit's OIDC,
``st.login``), the form also offers "Sign in with …"; the identity provider's verified e-mail is
mapped to the Conveyor user with that e-mail (``sso_email`` + ``Users.sign_in_by_email``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import streamlit as st

from builder import state
from builder.cookie import clear_cookie, sent_cookie, write_cookie
from builder.identity import KEY, Acting, can, current_actor, signed_in_user
from builder.state import error_message, get_conveyor
from engine.core.access import Actor, Role
from engine.core.users import SESSION_LIFETIME, SignedIn
from engine.errors import TooManyAttempts, Unauthenticated
from engine.i18n import N_, _

__all__ = [
    "KEY",
    "PAGES_BY_ROLE",
    "acting_conveyor",
    "can",
    "current_actor",
    "gate",
    "may_open",
    "require_actor",
    "sign_in_page",
    "sign_out",
    "signed_in_user",
    "sso_email",
]

GO_HOME = "auth_go_home"
#: The signed session id the sidebar keeps in the browser's cookie.
COOKIE_VALUE = "auth_cookie_value"
SIGNED_OUT = "auth_signed_out"  # this tab signed out: the sign-in form clears the browser's cookie
#: What sign-out keeps of the tab's session_state: the interface language (the device's, until the next
#: user's own setting replaces it) and the sign-out's own marks. Keys starting with "_" belong to tests.
KEEP_AT_SIGN_OUT = frozenset({state.LANGUAGE_KEY, GO_HOME, SIGNED_OUT})

#: The pages (by ``url_path``) a role may open; every other page's address answers with a refusal.
#: ``None``: every page. A viewer reads every page but a manager's own day, and changes nothing (the
#: pages hide their changes; the core refuses them).
PAGES_BY_ROLE: dict[Role, frozenset[str] | None] = {
    Role.OWNER: None,
    Role.MANAGER: frozenset({"home", "day", "deals", "actions", "dry-run", "notifications"}),
    Role.VIEWER: frozenset(
        {"home", "designer", "rules", "versions", "dry-run", "deals", "actions", "analytics"}
        | {"doors", "audit"}
    ),
}
_OWNER_ONLY = frozenset({"users"})
#: The roles as the sidebar names them (``_(role.value)``): listed here for the catalogue.
ROLE_NAMES = (N_("owner"), N_("manager"), N_("viewer"))


def require_actor() -> Actor:
    """The signed-in actor; without one, a notice and the end of this run (the page renders nothing)."""
    actor = current_actor()
    if actor is None:
        st.warning(_("Sign in first."), icon="🔒")
        st.stop()
    return actor  # type: ignore[return-value]  # st.stop() does not return


def acting_conveyor() -> Any:
    """The app's ``Conveyor`` for changes, made as the signed-in user (``actor=current_actor()`` on
    every change method: ``save_ruleset``, ``activate``, ``create_deal``, ``update_deal``, ``move_deal``,
    ``record_event``, ``record_activity``, ``complete_task``, ``retry_action``). Without a signed-in
    user, ``Unauthenticated``: a page never changes anything as nobody."""
    actor = current_actor()
    if actor is None:
        raise Unauthenticated(_("Sign in first."))
    return Acting(get_conveyor(), actor)


def may_open(url_path: str, signed: SignedIn | None = None) -> bool:
    """May the signed-in user open the page at ``url_path``?"""
    signed = signed or signed_in_user()
    if signed is None:
        return False
    if url_path in _OWNER_ONLY:
        return signed.role is Role.OWNER
    pages = PAGES_BY_ROLE.get(signed.role, frozenset())
    return pages is None or url_path in pages


def gate() -> SignedIn | None:
    """Called first by the router on every run: the session, checked again (expiry, idle time, the user
    still active with the same role and password); ``None`` (and the session dropped) otherwise."""
    signed = signed_in_user()
    if signed is None:
        return _resume_from_cookie()
    try:
        fresh = get_conveyor().sessions.check(signed)
    except Exception:  # noqa: BLE001 - a database that is down signs nobody in; the form says why
        fresh = None
    if fresh is None:
        st.session_state.pop(KEY, None)
        st.session_state[SIGNED_OUT] = True  # the form clears the cookie of the session that ended
        st.session_state["auth_notice"] = _("Your session has ended; sign in again.")
        return None
    st.session_state[KEY] = fresh
    return fresh


def _resume_from_cookie() -> SignedIn | None:
    """After a reload: the session the browser's cookie names, if it is still good."""
    value = sent_cookie()
    if value is None or st.session_state.get(SIGNED_OUT):
        return None  # a tab that signed out still has the cookie it connected with: it is over
    try:
        signed = get_conveyor().sessions.resume_cookie(value)
    except Exception:  # noqa: BLE001 - a database that is down signs nobody in; the form says why
        signed = None
    if signed is None:
        st.session_state[SIGNED_OUT] = True  # the form clears the stale cookie
        st.session_state["auth_notice"] = _("Your session has ended; sign in again.")
        return None
    _start(signed, value)
    return signed


def sign_out() -> None:
    """End this tab's session for good (and the single sign-on session, if it came from there): the
    stored session ends, the cookie goes, and nothing this tab kept for the user stays behind."""
    signed = signed_in_user()
    if signed is not None:
        try:
            get_conveyor().sessions.end(signed)
        except Exception:  # noqa: BLE001 - the tab signs out all the same; the session expires
            pass
    for key in list(st.session_state.keys()):
        if key not in KEEP_AT_SIGN_OUT and not str(key).startswith("_"):
            del st.session_state[key]
    st.session_state[GO_HOME] = True  # whoever signs in next starts on their own first page
    st.session_state[SIGNED_OUT] = True
    if signed is not None and signed.via == "sso" and _sso_configured():
        st.logout()


def sso_email(user: Mapping[str, Any]) -> str | None:
    """The e-mail an OIDC identity vouches for (``st.user``'s claims), or ``None``: not signed in
    there, no e-mail, or an e-mail the provider says is not verified."""
    if not user.get("is_logged_in", False):
        return None
    email = user.get("email")
    if not isinstance(email, str) or "@" not in email:
        return None
    if user.get("email_verified") is False:
        return None
    return email.strip().lower()


def _sso_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets.toml at all
        return False


def _client_address() -> str:
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - AppTest and bare mode have no client
        return ""
    return address if isinstance(address, str) else ""


def sign_in_page() -> None:
    """The only page before sign-in: user name and password (and single sign-on if configured)."""
    st.title(_("Sign in to Conveyor"))
    if st.session_state.get(SIGNED_OUT):
        clear_cookie()
    notice = st.session_state.pop("auth_notice", None)
    if notice:
        st.info(notice, icon="⏱️")
    if _sso_configured():
        _sso_section()
    with st.form("auth_form", clear_on_submit=False):
        name = st.text_input(_("User name"), key="auth_name", autocomplete="username")
        password = st.text_input(
            _("Password"), type="password", key="auth_password", autocomplete="current-password"
        )
        submitted = st.form_submit_button(_("Sign in"), type="primary")
    if submitted:
        try:
            signed = get_conveyor().sessions.sign_in(name, password, address=_client_address())
        except TooManyAttempts as exc:
            st.error(str(exc), icon="⏳")
        except Unauthenticated as exc:
            st.error(str(exc), icon="🚫")
        except Exception as exc:  # noqa: BLE001 - a clear sentence, never a traceback
            st.error(error_message(exc), icon="🚫")
        else:
            _start(signed)
            st.session_state.pop("auth_password", None)
            st.rerun()
    st.caption(
        _(
            "No account? The owner adds one with `conveyor users add NAME --role manager`."
            " After 5 wrong passwords the next attempt has to wait."
        )
    )


def sign_in_at(url_path: str) -> Any:
    """The sign-in form as the page at ``url_path`` (before sign-in every address shows the form)."""

    def form() -> None:
        sign_in_page()

    form.__name__ = f"sign_in_at_{url_path.replace('-', '_')}"
    return form


def _sso_section() -> None:
    user = st.user.to_dict() if hasattr(st.user, "to_dict") else dict(st.user)
    email = sso_email(user)
    if email is None:
        if st.button(_("Sign in with single sign-on"), key="auth_sso"):
            st.login()
        return
    try:
        signed = get_conveyor().sessions.sign_in_by_email(email)
    except Unauthenticated as exc:
        st.error(str(exc), icon="🚫")
        if st.button(_("Sign out of single sign-on"), key="auth_sso_out"):
            st.logout()
        return
    _start(signed)
    st.rerun()


def _start(signed: SignedIn, cookie: str | None = None) -> None:
    """The tab's new session, kept in the browser's cookie; the user's own language, if they chose
    one, replaces the default."""
    st.session_state[KEY] = signed
    st.session_state.pop(SIGNED_OUT, None)
    try:
        cookie = cookie or get_conveyor().sessions.cookie(signed)
    except Exception:  # noqa: BLE001 - no cookie: the session lasts as long as the tab
        cookie = None
    if cookie:
        st.session_state[COOKIE_VALUE] = cookie
    if signed.language:
        state.choose_language(signed.language)


def _keep_cookie(signed: SignedIn) -> None:
    cookie = st.session_state.get(COOKIE_VALUE)
    if not cookie:
        return
    now = signed.last_seen_at
    left = int((signed.signed_in_at + SESSION_LIFETIME - now).total_seconds())
    write_cookie(cookie, max(left, 0))


def remember_language(language: str) -> None:
    """The language switch's choice kept on the signed-in user, so their next sign-in starts in it."""
    signed = signed_in_user()
    if signed is None:
        return
    try:
        get_conveyor().users.set_language(signed.name, language, actor=signed.actor)
    except Exception as exc:  # noqa: BLE001 - the session keeps the choice; a toast says why it was not kept
        st.toast(error_message(exc), icon="🚫")
    else:
        st.session_state[KEY] = replace(signed, language=language)


def sidebar() -> None:
    """Who is signed in, and Sign out (in the sidebar of every page)."""
    signed = signed_in_user()
    if signed is None:
        return
    with st.sidebar:
        _keep_cookie(signed)
        st.caption(
            _("Signed in as **{name}** ({role})").format(
                name=signed.name, role=_(signed.role.value)
            )
        )
        if st.button(_("Sign out"), key="auth_sign_out"):
            sign_out()
            st.rerun()


def refusal(title: str) -> Any:
    """A page for an address the role may not open: it says so, and shows nothing of the page."""

    def refuse() -> None:
        signed = signed_in_user()
        role = _(signed.role.value) if signed else ""
        st.error(_("The {role} role may not open {page}.").format(role=role, page=title), icon="🔒")

    refuse.__name__ = f"refuse_{title}"
    return refuse
