"""Shared resources of the builder app: one ``Conveyor`` per process (``st.cache_resource``).

Pages never write rows themselves: every change goes through the ``Conveyor`` API, so rules fire the
same way as from the CLI. The database URL comes from ``CONVEYOR_DB`` (set by ``conveyor builder``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import streamlit as st
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, SQLAlchemyError

from engine.core.conveyor import Conveyor, VersionInfo
from engine.core.reader import ReadOnlyConveyor
from engine.document.labels import label
from engine.document.validate import validate_document
from engine.errors import ConveyorError, Problem, RuleSetInvalid
from engine.i18n import LANGUAGES, N_, _, default_language, ngettext, set_language
from storage.db import database_url
from storage.errors import DatabaseUnavailable

_log = logging.getLogger(__name__)


@st.cache_resource(show_spinner=False)
def _conveyor(url: str) -> Conveyor:
    # A failure is not cached: the next rerun tries again (the folder may have been created meanwhile).
    try:
        return Conveyor(url)
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(
            _("cannot open the database {url}: {error}").format(
                url=_safe_url(url), error=_short(exc)
            )
        ) from exc


def get_conveyor() -> Conveyor:
    """The app's one ``Conveyor`` for changes; raises ``DatabaseUnavailable`` (shown by ``page_boundary``)."""
    return _conveyor(database_url(os.environ.get("CONVEYOR_DB")))


@st.cache_resource(show_spinner=False)
def _reader(url: str) -> ReadOnlyConveyor:
    # Every transaction read-only: on SQLite a deferred BEGIN, so drawing a page never queues behind the
    # engine's writes (BEGIN IMMEDIATE, up to the 30 s busy timeout) nor holds the write lock itself; a
    # change made through it fails loudly instead of vanishing (changes go through ``get_conveyor()``).
    writer = _conveyor(url)
    return ReadOnlyConveyor(writer.engine, clock=writer.clock, migrate=False)


def get_reader() -> ReadOnlyConveyor:
    """The app's ``Conveyor`` for page reads (shares the engine and clock of ``get_conveyor()``)."""
    return _reader(database_url(os.environ.get("CONVEYOR_DB")))


# -- errors ----------------------------------------------------------------------------------------------
BUSY = N_("The database is busy — try again in a moment (another process is writing).")


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as given (it has no parsable password)
        return url


def _short(exc: BaseException, width: int = 200) -> str:
    """The driver's own first line (``exc.orig``), without SQLAlchemy's SQL and background link."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    line = text[0] if text else exc.__class__.__name__
    return line if len(line) <= width else line[: width - 1] + "…"


def error_message(exc: Exception, what: str | None = None) -> str:
    """One clear sentence for an error a page cannot recover from; never a traceback.

    ``what`` names the thing being saved, for refusals by the database ("The deal could not be saved").
    """
    what = what or _("The change")
    if isinstance(exc, DatabaseUnavailable):
        return _(
            "The database is not available: {error}. Check CONVEYOR_DB (or `conveyor builder --db`) "
            "and reload the page."
        ).format(error=exc)
    if isinstance(exc, ConveyorError):
        return str(exc)
    if isinstance(exc, OperationalError):
        text = _short(exc).lower()
        if "locked" in text or "busy" in text or "timeout" in text:
            return _(BUSY)
        return _(
            "The database could not be read or written: {error}. Try again in a moment."
        ).format(error=_short(exc))
    if isinstance(exc, IntegrityError | DataError):
        return _("{what} could not be saved: {error}").format(what=what, error=_short(exc))
    if isinstance(exc, SQLAlchemyError):
        return _("The database refused the request: {error}").format(error=_short(exc))
    return _("Something went wrong: {kind}: {error}").format(
        kind=exc.__class__.__name__, error=_short(exc)
    )


def show_error(exc: Exception, what: str | None = None) -> None:
    """Show ``exc`` as a red box; unexpected ones are logged with their traceback for the operator."""
    if not isinstance(exc, ConveyorError | SQLAlchemyError | DatabaseUnavailable):
        _log.error("builder page failed", exc_info=exc)
    elif not isinstance(exc, ConveyorError):
        _log.warning("builder page: %s", error_message(exc, what))
    st.error(error_message(exc, what), icon="🚫")


def page_boundary(render: Callable[[], None]) -> Callable[[], None]:
    """Wrap a page's ``render``: any error becomes one clear red box instead of a traceback.

    The page is drawn in the session's language (``apply_language``). Streamlit's own control flow
    (``st.rerun``, ``st.stop``, ``st.switch_page``) raises BaseException subclasses and passes
    through untouched.
    """

    @functools.wraps(render)
    def guarded() -> None:
        apply_language()
        try:
            render()
        except Exception as exc:  # noqa: BLE001 - the one place a page's unexpected errors end up
            show_error(exc)

    return guarded


# -- the interface language -----------------------------------------------------------------------------
LANGUAGE_KEY = "ui_language"  # the session's choice; a signed-in user's setting fills it at sign-in
LANGUAGE_NAMES = {"uk": "Українська", "en": "English"}


def language() -> str:
    """The session's interface language: its own choice, else ``CONVEYOR_LANG`` (``uk`` or ``en``)."""
    chosen = st.session_state.get(LANGUAGE_KEY)
    return chosen if chosen in LANGUAGES else default_language()


def apply_language() -> str:
    """Make this run's ``_()`` and Babel formats speak the session's language (once per script run)."""
    lang = language()
    set_language(lang)
    return lang


def choose_language(lang: str) -> None:
    """The session's new language (the switch in the sidebar calls this)."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not one of {', '.join(LANGUAGES)}")
    st.session_state[LANGUAGE_KEY] = lang
    set_language(lang)


def language_switch(where: Any = None, remember: Callable[[str], None] | None = None) -> str:
    """The sidebar's language picker; returns the language this run is drawn in.

    ``remember`` keeps a new choice beyond this session (the router passes the signed-in user's
    setting, ``builder.session.remember_language``).
    """
    lang = apply_language()
    key = LANGUAGE_KEY + "_w"
    st.session_state[key] = lang  # the widget starts at the session's language on every page

    def chosen() -> None:
        choose_language(st.session_state[key])
        if remember is not None:
            remember(st.session_state[key])

    (where or st.sidebar).selectbox(
        "🌐 " + _("Language"),
        list(LANGUAGES),
        format_func=LANGUAGE_NAMES.get,
        key=key,
        on_change=chosen,
    )
    return language()


# -- per-funnel drafts of the owner pages ------------------------------------------------------------
# A draft is the document dict being edited; it lives in st.session_state until saved as a new version
# through ``Conveyor.save_ruleset`` (the only write path). Keys start with "draft:" / "owner_".

FUNNEL_KEY = "owner_funnel"  # the picker widget's key (each page's widget is its own element)
FUNNEL_CHOICE = "owner_funnel_choice"  # the ONE shared choice of the owner pages (not a widget key)
FUNNEL_NEXT = "owner_funnel_next"  # set by a page to switch funnels on the next run


def _base_key(funnel: str) -> str:
    return f"draft_base:{funnel}"


def _draft_key(funnel: str) -> str:
    return f"draft:{funnel}"


def _gen_key(funnel: str) -> str:
    return f"draft_gen:{funnel}"


def _canonical(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, ensure_ascii=False)


def load_draft(funnel: str, *, reset: bool = False) -> dict[str, Any]:
    """The funnel's draft document, created from the active version (with positions filled in)."""
    from builder.canvas.layout import ensure_positions

    key = _draft_key(funnel)
    active = _active_version(funnel)
    if (
        key in st.session_state
        and not reset
        and not is_dirty(funnel)
        and st.session_state.get(_version_key(funnel)) != active
    ):
        reset = True  # saved or rolled back elsewhere (another tab, the CLI): show the new active version
    if reset or key not in st.session_state:
        doc = get_reader().ruleset(funnel).to_document()
        st.session_state[_version_key(funnel)] = active
        # Positions assigned here are part of the base, so viewing alone never marks the draft unsaved;
        # they are persisted with the next saved version.
        ensure_positions(doc)
        st.session_state[key] = doc
        st.session_state[_base_key(funnel)] = _canonical(doc)
        bump(funnel)
    return st.session_state[key]


def _version_key(funnel: str) -> str:
    return f"draft_version:{funnel}"


def _active_version(funnel: str) -> int | None:
    return next((v.version for v in get_reader().versions(funnel) if v.active), None)


def draft_base_version(funnel: str) -> int | None:
    """The version the draft was taken from."""
    return st.session_state.get(_version_key(funnel))


def set_draft(funnel: str, doc: dict[str, Any]) -> None:
    st.session_state[_draft_key(funnel)] = doc


def generation(funnel: str) -> int:
    """Widget-key generation: bumped when the draft changes structurally so widgets re-read it."""
    return st.session_state.get(_gen_key(funnel), 0)


def bump(funnel: str) -> None:
    st.session_state[_gen_key(funnel)] = generation(funnel) + 1


def is_dirty(funnel: str) -> bool:
    key = _draft_key(funnel)
    return key in st.session_state and _canonical(st.session_state[key]) != st.session_state.get(
        _base_key(funnel)
    )


def draft_problems(doc: dict[str, Any]) -> list[Problem]:
    """Problems of a draft, from the same validator the CLI uses."""
    try:
        validate_document(doc, known_funnels=[f for f, _ in get_reader().funnels()])
    except RuleSetInvalid as exc:
        return exc.problems
    return []


def save_draft(funnel: str, comment: str, author: str = "owner") -> VersionInfo:
    """Save the draft as a new active version; raises ``RuleSetInvalid`` and saves nothing if invalid."""
    from builder.identity import Acting, current_actor
    from engine.errors import Unauthenticated

    actor = current_actor()
    if actor is None:
        raise Unauthenticated(_("Sign in first."))
    doc = load_draft(funnel)
    info = Acting(get_conveyor(), actor).save_ruleset(doc, comment=comment, author=author)
    load_draft(funnel, reset=True)
    return info


def discard_draft(funnel: str) -> None:
    load_draft(funnel, reset=True)


def funnel_picker(where: Any = None) -> str | None:
    """The funnel the owner pages work on (shared by Designer, Rule editor and Versions)."""
    funnels = get_reader().funnels()
    if not funnels:
        return None
    ids = [f for f, _ in funnels]
    names = dict(funnels)
    return shared_funnel_picker(
        where or st, ids, lambda f: f"{funnel_label(f, names[f])} ({f})", FUNNEL_KEY, _main_funnel
    )


def funnel_names() -> dict[str, str]:
    """Every funnel's id and its name in the reader's language (for summaries: "start «Проєктні роботи»")."""
    return {f: funnel_label(f, name) for f, name in get_reader().funnels()}


def funnel_label(funnel: str, stored: str = "") -> str:
    """A funnel's name in the reader's language (its active version's label), else the stored name."""
    try:
        return label(get_reader().ruleset(funnel).name) or stored or funnel
    except ConveyorError:
        return stored or funnel


def shared_funnel_picker(
    where: Any,
    ids: list[str],
    label: Callable[[str], str],
    key: str,
    default: Callable[[list[str]], str],
) -> str:
    """A "Funnel" selectbox (widget key ``key``) showing the ONE funnel choice every page shares.

    The choice lives under FUNNEL_CHOICE, never only in a widget: Streamlit gives a picker a new
    element on every page (and when the funnel list changes), and a new element that is not handed a
    value starts at its first option; that made the pages jump to "Project work" after an import.
    """
    choice = st.session_state.get(FUNNEL_CHOICE)
    picked = st.session_state.get(key)  # the widget as the user left it on the last run
    if st.session_state.get(FUNNEL_NEXT) is not None:
        requested = st.session_state.pop(FUNNEL_NEXT)
        if requested in ids:
            choice = requested
    elif picked in ids and picked != st.session_state.get(key + "_shown"):
        choice = picked  # the user picked another funnel (a left-over value of another page is not a pick)
    if choice not in ids:
        choice = default(ids)
    st.session_state[FUNNEL_CHOICE] = choice
    st.session_state[key] = choice  # set before the widget exists: the widget starts at the choice
    st.session_state[key + "_shown"] = choice
    where.selectbox(_("Funnel"), ids, format_func=label, key=key)
    return choice


def owner_top() -> tuple[Any, str, dict[str, Any]] | None:
    """The top of the Designer and the Rule editor: (the right-hand column, funnel, its draft), or None."""
    top = st.columns([2, 3])
    funnel = funnel_picker(top[0])
    if funnel is None:
        st.info(_("There are no funnels yet. Import one on the **Versions & import/export** page."))
        return None
    return top[1], funnel, load_draft(funnel)


def _main_funnel(ids: list[str]) -> str:
    """The funnel shown first: the one with the most stages (the main sales funnel, not a sub-process)."""
    c = get_reader()
    return max(ids, key=lambda f: (len(c.ruleset(f).stages), -ids.index(f)))


def save_bar(funnel: str, place: str) -> None:
    """'Unsaved changes' banner with a comment box, Save and Discard (shown on every owner page);
    a role that may not save rule sets reads the funnel only."""
    from builder.identity import can
    from engine.core.access import Permission

    if not can(Permission.WRITE_FUNNELS):
        st.info(_("Read only: your role may look at the funnel, not change it."), icon="👁️")
        return
    if not is_dirty(funnel):
        st.success(_("No unsaved changes: you are looking at the active version."), icon="✅")
        return
    doc = load_draft(funnel)
    problems = draft_problems(doc)
    with st.container(border=True):
        st.warning(
            _(
                "**Unsaved changes** in this funnel. Save them as a new version to make them active."
            ),
            icon="✏️",
        )
        base, active = draft_base_version(funnel), _active_version(funnel)
        if base != active:
            st.info(
                _(
                    "These changes were made to version {base}; version {active} is active now. "
                    "Saving makes your draft the newest version; Discard to start from the active one."
                ).format(base=base, active=active)
            )
        cols = st.columns([4, 1, 1])
        comment = cols[0].text_input(
            _("Comment for the new version (optional)"),
            key=f"owner_comment:{place}",
            placeholder=_("e.g. reminder after 12 h instead of 24 h"),
        )
        cols[1].markdown("<div style='height:1.75rem'></div>", unsafe_allow_html=True)
        save = cols[1].button(
            "💾 " + _("Save version"),
            type="primary",
            key=f"owner_save:{place}",
            disabled=bool(problems),
            width="stretch",
        )
        cols[2].markdown("<div style='height:1.75rem'></div>", unsafe_allow_html=True)
        if cols[2].button(_("Discard"), key=f"owner_discard:{place}", width="stretch"):
            discard_draft(funnel)
            st.rerun()
        if problems:
            whole = _("document")
            count = ngettext(
                "The draft cannot be saved: {count} problem.",
                "The draft cannot be saved: {count} problems.",
                len(problems),
            ).format(count=len(problems))
            st.error(
                count
                + "\n\n"
                + "\n".join(f"- `{p.path or whole}`: {p.message}" for p in problems[:20])
            )
        if save:
            try:
                info = save_draft(funnel, comment)
            except RuleSetInvalid as exc:
                st.error(
                    _("Not saved:")
                    + "\n\n"
                    + "\n".join(f"- `{p.path}`: {p.message}" for p in exc.problems)
                )
            except (ConveyorError, SQLAlchemyError) as exc:
                st.error(
                    _("Not saved: {error} Your draft is kept; try again.").format(
                        error=error_message(exc, _("The new version"))
                    )
                )
            else:
                st.session_state["owner_flash"] = _(
                    "Saved version {version} of '{funnel}'."
                ).format(version=info.version, funnel=funnel)
                st.rerun()


def picker(where: Any, label: str, options: list[Any], labels: dict[Any, str], key: str) -> Any:
    """A selectbox whose choice lives in ``st.session_state[key]`` and survives label changes.

    The widget's own key carries a hash of the labels (see ``components.labels_key``), so renaming
    what an option shows starts a fresh widget at the remembered choice. Code that wants to change
    the choice after the widget exists sets ``st.session_state[key + "_next"]`` and reruns.
    """
    from builder.components import labels_key

    wkey = f"{key}_w:{labels_key(labels.get(o, str(o)) for o in options)}"
    if key + "_next" in st.session_state:
        st.session_state[key] = st.session_state.pop(key + "_next")
    elif wkey in st.session_state:
        st.session_state[key] = st.session_state[wkey]  # the user's pick in this widget
    current = st.session_state.get(key)
    if current not in options:
        current = options[0]
    st.session_state[key] = current
    st.session_state[wkey] = current  # set before the widget exists: allowed, and no index passed
    return where.selectbox(label, options, key=wkey, format_func=lambda o: labels.get(o, str(o)))


def flash() -> None:
    msg = st.session_state.pop("owner_flash", None)
    if msg:
        st.toast(msg, icon="💾")
        st.success(msg, icon="💾")


# -- pages ---------------------------------------------------------------------------------------------
_PAGES: dict[str, Any] = {}


def register_pages(pages: dict[str, Any]) -> None:
    """The router hands its ``st.Page`` objects here so pages can ``st.switch_page`` to each other."""
    _PAGES.update(pages)


def page(url_path: str) -> Any:
    return _PAGES[url_path]
