"""A name field with an id derived from it (transliterated, unique), which the owner may edit."""

from __future__ import annotations

import streamlit as st

from engine.document.ids import id_from_name, unique_id
from engine.document.limits import IDENT  # the validator's id pattern: one rule for ids
from engine.i18n import _

__all__ = ["name_and_id"]


def name_and_id(
    key: str,
    taken: set[str],
    *,
    what: str = "stage",
    placeholder: str = "",
    labels: tuple[str, str] | None = None,
) -> tuple[str, str, str | None]:
    """A name field and an id field derived from it (transliterated, unique), which the owner may edit.

    Returns (name, id, problem or None). The id follows the name until the owner types one of their own.
    """
    name_label, id_label = labels or (
        (_("Rule name"), _("Rule id")) if what == "rule" else (_("Stage name"), _("Stage id"))
    )
    if what == "funnel":
        give = _("Give the funnel a name.")
        exists = _("A funnel with id '{id}' already exists; try '{free}'.")
    elif what == "rule":
        give = _("Give the rule a name.")
        exists = _("A rule with id '{id}' already exists; try '{free}'.")
    else:
        give = _("Give the stage a name.")
        exists = _("A stage with id '{id}' already exists; try '{free}'.")
    name = st.text_input(name_label, key=f"{key}:name", placeholder=placeholder)
    derived = unique_id(name, taken, what) if name.strip() else ""
    idk, autok = f"{key}:id", f"{key}:id_auto"
    if st.session_state.get(idk, "") in ("", st.session_state.get(autok)):
        st.session_state[idk] = derived  # set before the widget exists: it shows the derived id
    st.session_state[autok] = derived
    sid = st.text_input(
        id_label,
        key=idk,
        help=_(
            "Made from the name (Ukrainian is romanised: Демо-дзвінок → demo_dzvinok); "
            "lowercase letters, digits and _, starting with a letter. Fixed once saved."
        ),
    ).strip()
    problem = None
    if not name.strip():
        problem = give
    elif not IDENT.match(sid):
        problem = _(
            "'{id}' cannot be an id: use lowercase letters, digits and _, starting with a letter "
            "(e.g. {example})."
        ).format(id=sid, example=id_from_name(name, what))
    elif sid in taken:
        problem = exists.format(id=sid, free=unique_id(sid, taken, what))
    if problem and name.strip():
        st.caption(f"⚠️ {problem}")
    return name.strip(), sid, problem
