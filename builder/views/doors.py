"""Builder page: the HTTP doors, read-only — every call to a signed hook (time, hook, event id,
outcome) and the website forms with a copy-paste HTML snippet. Hooks, keys and forms are created
from the command line (``conveyor hooks create``, ``conveyor forms create``), so no secret ever
reaches a page."""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from builder.state import get_reader, page_boundary
from engine.clock import for_display
from engine.core.forms import HONEYPOT, TOKEN_FIELD
from engine.core.links import public_url
from engine.document.ruleset import RuleSet
from engine.i18n import LANGUAGES, N_, _, current_language, use_language

KEY = "doors_"
#: What the form's visitor reads for the built-in fields a form may carry (engine.core.forms).
BUILTIN_LABELS = {
    "title": N_("Your name"),
    "phone": N_("Phone"),
    "email": N_("E-mail"),
    "amount": N_("Amount"),
}


def form_language(rs: RuleSet | None) -> str:
    """The language of a funnel's website form: the funnel's client language (``language`` in the
    document: the form's visitors are its clients), else the reader's interface language."""
    lang = rs.language if rs is not None else None
    return lang if lang in LANGUAGES else current_language()


def snippet(
    funnel: str, token: str, fields: list[str], rs: RuleSet | None = None, language: str = "en"
) -> str:
    """The HTML form a website pastes to send leads to ``POST /forms/{funnel}``, its labels and button in
    ``language``: a declared field's own label in that language, else Conveyor's words for the
    built-in fields (name, phone, e-mail, amount), else the field's name."""
    with use_language(language):

        def text(name: str) -> str:
            declared = rs.field(name) if rs is not None else None
            if declared is not None and str(declared.label):
                return declared.label.in_language(language)
            return _(BUILTIN_LABELS[name]) if name in BUILTIN_LABELS else name

        inputs = "\n".join(
            f'  <label>{html.escape(text(f))} <input name="{html.escape(f)}"></label>'
            for f in fields
        )
        send = html.escape(_("Send"))
    return (
        f'<form method="post" action="{html.escape(public_url())}/forms/{html.escape(funnel)}">\n'
        f'  <input type="hidden" name="{TOKEN_FIELD}" value="{html.escape(token)}">\n{inputs}\n'
        f'  <input name="{HONEYPOT}" style="display:none" tabindex="-1" autocomplete="off">\n'
        f'  <button type="submit">{send}</button>\n</form>'
    )


@page_boundary
def render() -> None:
    st.title("🔌 " + _("Hooks & forms"))
    reader = get_reader()
    st.subheader(_("Hook calls"))
    st.caption(
        _("Every call to POST /hooks/NAME, newest first. `conveyor hooks create NAME` adds a hook.")
    )
    calls = reader.hooks.calls(
        limit=int(st.number_input(_("Show the latest"), 10, 1000, 100, key=KEY + "n"))
    )
    if calls:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        _("time"): for_display(c.at, "%Y-%m-%d %H:%M:%S"),
                        _("hook"): c.hook,
                        _("event id"): c.event_id or "",
                        _("outcome"): c.outcome,
                        _("detail"): c.detail,
                    }
                    for c in calls
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.info(_("No hook has been called yet."))
    st.subheader(_("Website forms"))
    forms = [f for f in reader.forms.list() if not f.revoked]
    if not forms:
        st.info(_("No form yet: `conveyor forms create FUNNEL` prints a form token."))
    for f in forms:
        st.markdown(
            _(
                "**{funnel}** — fields {fields}; {rate} per hour per address; origins {origins}"
            ).format(
                funnel=f.funnel,
                fields=", ".join(f.fields),
                rate=f.rate_per_hour,
                origins=", ".join(f.origins) or _("any (no browser CORS)"),
            )
        )
        try:
            rs = reader.ruleset(f.funnel)
        except Exception:  # noqa: BLE001 - a funnel without an active version: the field names
            rs = None
        lang = form_language(rs)
        st.code(snippet(f.funnel, f.token, f.fields, rs, lang), language="html")
        st.caption(
            _(
                "The form's labels are in the funnel's client language ({language}), the language its"
                " messages to clients use; change the words freely, keep the name= attributes."
            ).format(language=lang)
        )
