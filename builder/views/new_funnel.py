"""Start a new funnel from a template (TechFlow B2B, online shop, empty), so nobody begins with a blank JSON.

The template's document is saved as the new funnel's first version by the core
(``RuleSets.start_from_template``, the same call as ``conveyor init --template``), together with
the funnels its rules start when they are not stored yet.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from builder import state
from builder.naming import name_and_id
from engine.document.labels import label
from engine.document.templates import TEMPLATES, template
from engine.errors import ConveyorError
from engine.i18n import _

__all__ = ["start_funnel"]

KEY = "new_funnel"


def start_funnel(expanded: bool = False) -> None:
    """A "New funnel from a template" panel: pick a template, name the funnel, create it."""
    with st.expander("➕ " + _("New funnel from a template"), expanded=expanded):
        names = [t.name for t in TEMPLATES]
        chosen = st.radio(
            _("Template"),
            names,
            format_func=lambda n: _(template(n).title),
            key=f"{KEY}:template",
        )
        doc = template(chosen).document()
        stages, rules = len(doc.get("stages", [])), len(doc.get("rules", []))
        st.caption(
            _("{description} · {stages} stages, {rules} rules").format(
                description=label(doc.get("description")), stages=stages, rules=rules
            )
        )
        taken = {f for f, _name in state.get_reader().funnels()}
        name, funnel, problem = name_and_id(
            f"{KEY}:{chosen}",
            taken,
            what="funnel",
            placeholder=label(doc.get("name")),
            labels=(_("Funnel name"), _("Funnel id")),
        )
        if st.button(_("Create funnel"), type="primary", key=f"{KEY}:go"):
            if problem:
                st.error(problem)
                return
            try:
                saved = state.get_conveyor().rulesets.start_from_template(
                    chosen, funnel, name, author="owner (template)"
                )
            except (ConveyorError, SQLAlchemyError) as exc:
                state.show_error(exc, _("The new funnel"))
                return
            for suffix in (":name", ":id", ":id_auto"):
                st.session_state.pop(f"{KEY}:{chosen}{suffix}", None)
            others = [v.funnel for v in saved[:-1]]
            st.session_state["owner_flash"] = _(
                "Funnel '{funnel}' was created from the template; edit it below."
            ).format(funnel=name) + (
                " " + _("Also saved: {funnels}.").format(funnels=", ".join(others))
                if others
                else ""
            )
            st.session_state[state.FUNNEL_NEXT] = funnel
            st.rerun()
