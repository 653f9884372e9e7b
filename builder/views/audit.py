"""Builder page: the audit trail — who changed what (a user, an API key, the engine with its rule).

Read only: filter by who, deal and kind, export what is shown as CSV. Nothing here (nor anywhere in
the app) edits or deletes an entry; the trail is written by the engine in each change's transaction.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from builder.session import require_actor
from builder.state import get_reader, page_boundary
from engine.core import reports
from engine.errors import NotFound
from engine.i18n import _

KEY = "audit_"
ANYONE = ""
LIMIT = 2000


@page_boundary
def render() -> None:
    st.title("🧾 " + _("Audit trail"))
    actor = require_actor()
    audit = get_reader().audit
    st.caption(
        _(
            "Every change and who made it: a signed-in user, an API key (key:NAME), the engine with"
            " the rule that caused it (engine:RULE), or the command line (cli:LOGIN). Entries cannot"
            " be edited or deleted."
        )
    )
    cols = st.columns(3)
    people = [ANYONE, *audit.actors(actor=actor)]
    who = cols[0].selectbox(
        _("Who"), people, format_func=lambda a: a or _("anyone"), key=KEY + "who"
    )
    kinds = [ANYONE, *audit.kinds(actor=actor)]
    kind = cols[1].selectbox(
        _("Kind"), kinds, format_func=lambda k: k or _("any kind"), key=KEY + "kind"
    )
    deal_key = cols[2].text_input(_("Deal key"), key=KEY + "deal", placeholder="D-12")
    deal_id = None
    if deal_key.strip():
        try:
            deal_id = get_reader().deal_id(deal_key.strip())
        except NotFound:
            st.warning(_("No deal with the key '{key}'.").format(key=deal_key.strip()))
            return
    entries = audit.entries(
        actor_name=who or None, kind=kind or None, deal_id=deal_id, limit=LIMIT, actor=actor
    )
    if not entries:
        st.info(_("Nothing recorded for this filter yet."))
        return
    zone = reports.display_zone().key
    table = pd.DataFrame(
        [
            {
                "at": reports.to_display(e.at),
                "who": e.actor,
                "kind": e.kind,
                "subject": e.subject,
                "detail": ", ".join(f"{k}: {v}" for k, v in e.detail.items()),
            }
            for e in entries
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "at": _("When ({zone})").format(zone=zone),
            "who": _("Who"),
            "kind": _("Kind"),
            "subject": _("About"),
            "detail": _("Detail"),
        },
    )
    shown = len(entries)
    st.caption(_("{n} entries, newest first (at most {limit}).").format(n=shown, limit=LIMIT))
    st.download_button(
        _("Export CSV"),
        audit.csv(entries),
        file_name="conveyor-audit.csv",
        mime="text/csv",
        key=KEY + "csv",
    )
