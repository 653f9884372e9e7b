"""Versions & import/export: the funnel's immutable versions, a diff of any two, rollback, export, import.

Import validates with the CLI's validator and shows every problem with its JSON path; nothing is
saved unless the document is valid.
"""

from __future__ import annotations

import difflib
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from builder import session, state
from builder.compare import differences, pictures
from builder.state import page_boundary
from builder.views.deals import md
from builder.views.designer import rule_data_for
from engine.core import reports
from engine.core.access import Permission
from engine.document.labels import label
from engine.errors import ConveyorError, RuleSetInvalid
from engine.i18n import _, ngettext


@page_boundary
def render() -> None:
    st.title("🗂️ " + _("Versions & import/export"))
    c = state.get_reader()  # reads; Make active and Save imported version use state.get_conveyor()
    funnel = state.funnel_picker(st.columns([2, 3])[0])
    state.flash()
    tabs = st.tabs(
        ["📜 " + _("Versions"), "🔍 " + _("Compare"), "⬇️ " + _("Export"), "⬆️ " + _("Import")]
    )
    if funnel is None:
        with tabs[3]:
            _import(c)
        return
    versions = c.versions(funnel)
    with tabs[0]:
        _versions(c, funnel, versions)
    with tabs[1]:
        _compare(c, funnel, versions)
    with tabs[2]:
        _export(c, funnel, versions)
    with tabs[3]:
        if session.can(Permission.WRITE_FUNNELS):
            _import(c)
        else:
            st.caption(_("Only the owner imports rule sets."))


def _versions(c: Any, funnel: str, versions: list[Any]) -> None:
    if state.is_dirty(funnel):
        st.warning(
            _(
                "This funnel has unsaved changes in the designer; save them there to create a version."
            ),
            icon="✏️",
        )
    zone = (
        reports.display_zone().key
    )  # the same zone as every other page (CONVEYOR_TZ, Europe/Kyiv by default)
    newest_first = sorted(versions, key=lambda v: -v.version)
    table = pd.DataFrame(
        [
            {
                _("Version"): v.version,
                _("Active"): "✅ " + _("active") if v.active else "",
                _("Saved at ({zone})").format(zone=zone): reports.to_display(v.created_at),
                _("By"): v.author or "—",
                _("Comment"): v.comment or "",
            }
            for v in newest_first
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")
    active = next((v.version for v in versions if v.active), None)
    st.markdown(_("**Make an older version active again** (rollback; nothing is deleted)"))
    numbers = [v.version for v in newest_first]
    if len(numbers) < 2:
        st.caption(_("There is only one version, and it is active."))
        return
    if not session.can(Permission.WRITE_FUNNELS):
        st.caption(_("Only the owner makes another version active."))
        return
    cols = st.columns([2, 1, 3])
    # The newest version that is not active is the one a rollback usually wants.
    default = next(n for n in numbers if n != active)
    chosen = cols[0].selectbox(
        _("Version to make active (v{version} is active now)").format(version=active),
        numbers,
        index=numbers.index(default),
        key=f"versions:{funnel}:activate",
        format_func=lambda n: (
            _("v{version} (active)").format(version=n) if n == active else f"v{n}"
        ),
    )
    cols[1].markdown("<div style='height:1.75rem'></div>", unsafe_allow_html=True)
    if cols[1].button(
        _("Make active"), type="primary", disabled=chosen == active, key=f"versions:{funnel}:go"
    ):
        try:
            info = session.acting_conveyor().activate(funnel, chosen)
        except (ConveyorError, SQLAlchemyError) as exc:
            state.show_error(exc, _("Version {version}").format(version=chosen))
        else:
            if not state.is_dirty(funnel):
                state.discard_draft(funnel)  # the designer now shows the newly active version
            st.session_state["owner_flash"] = _(
                "Version {version} of '{funnel}' is active now."
            ).format(version=info.version, funnel=funnel)
            st.rerun()


def _compare(c: Any, funnel: str, versions: list[Any]) -> None:
    numbers = sorted(v.version for v in versions)
    if len(numbers) < 2:
        st.info(_("There is only one version so far; save a change to compare versions."))
        return
    cols = st.columns([1, 1, 2], vertical_alignment="bottom")
    a = cols[0].selectbox(
        _("From version"), numbers, index=len(numbers) - 2, key=f"versions:{funnel}:a"
    )
    b = cols[1].selectbox(
        _("To version"), numbers, index=len(numbers) - 1, key=f"versions:{funnel}:b"
    )
    with_positions = cols[2].toggle(
        _("Show position-only changes"),
        key=f"versions:{funnel}:positions",
        help=_(
            "Nodes dragged on the canvas change only where they are drawn, not what the funnel does."
        ),
    )
    old, new = c.ruleset(funnel, a), c.ruleset(funnel, b)
    diff = differences(old, new, dict(c.funnels()))
    shown = diff.shown(with_positions)
    hidden = 0 if with_positions else diff.position_only
    if not shown:
        st.success(
            _("v{old} and v{new} do the same.").format(old=a, new=b)
            + (
                " "
                + ngettext(
                    "({count} node only moved on the canvas.)",
                    "({count} nodes only moved on the canvas.)",
                    hidden,
                ).format(count=hidden)
                if hidden
                else ""
            )
        )
    else:
        before = _("Before (v{version})").format(version=a)
        after = _("After (v{version})").format(version=b)
        what = {
            "funnel": _("funnel"),
            "stage": _("stage"),
            "transition": _("transition"),
            "rule": _("rule"),
            "field": _("field"),
            "event": _("event"),
        }
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        _("What"): what.get(ch.what, ch.what),
                        _("Name"): ch.name,
                        _("Change"): ch.change,
                        before: ch.before,
                        after: ch.after,
                    }
                    for ch in shown
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={
                before: st.column_config.TextColumn(width="large"),
                after: st.column_config.TextColumn(width="large"),
            },
        )
        # Cells cut long sentences: a changed condition or action is also written out in full.
        for ch in shown:
            if ch.before and ch.after and ch.change in (_("conditions"), _("actions")):
                st.markdown(
                    f"**{md(ch.name)}** — {md(ch.change)}:  \n~~{md(ch.before)}~~  \n→ {md(ch.after)}"
                )
        if hidden:
            st.caption(
                ngettext(
                    "{count} position-only change hidden: a node moved on the canvas. "
                    "Turn on “Show position-only changes” to list it.",
                    "{count} position-only changes hidden: nodes moved on the canvas. "
                    "Turn on “Show position-only changes” to list them.",
                    hidden,
                ).format(count=hidden)
            )
    marks = diff.nodes(with_positions)
    with st.expander(_("Picture of both versions"), expanded=bool(marks)):
        added, changed, removed = _("added"), _("changed"), _("removed")
        st.markdown(
            f"<span style='color:#16A34A'>■</span> {added} · "
            f"<span style='color:#7C3AED'>■</span> {changed} · "
            f"<span style='color:#DC2626'>■</span> {removed}",
            unsafe_allow_html=True,
        )
        pictures(
            old,
            new,
            marks,
            (rule_data_for(old.to_document()), rule_data_for(new.to_document())),
            (f"v{a}", f"v{b}"),
        )
    text = "".join(
        difflib.unified_diff(
            old.to_json().splitlines(True),
            new.to_json().splitlines(True),
            fromfile=f"v{a}",
            tofile=f"v{b}",
            n=3,
        )
    )
    with st.expander(_("Line-by-line diff of the JSON")):
        st.code(text or _("(no differences)"), language="diff")


def _export(c: Any, funnel: str, versions: list[Any]) -> None:
    numbers = sorted((v.version for v in versions), reverse=True)
    active = next((v.version for v in versions if v.active), numbers[0])
    cols = st.columns([1, 2])
    version = cols[0].selectbox(
        _("Version to export (v{version} is active)").format(version=active),
        numbers,
        index=numbers.index(active),
        key=f"versions:{funnel}:export_v",
        format_func=lambda n: f"v{n}",
    )
    fmt = cols[1].radio(
        _("Format"),
        ["conveyor", "business-rules"],
        horizontal=True,
        key=f"versions:{funnel}:fmt",
        format_func={
            "conveyor": _("Whole rule-set document"),
            "business-rules": _("Bare business-rules rules list (enabled rules)"),
        }.get,
    )
    text = c.rulesets.export(funnel, fmt, version)
    suffix = "" if fmt == "conveyor" else ".business-rules"
    st.download_button(
        "⬇️ " + _("Download JSON"),
        data=text.encode("utf-8"),
        file_name=f"{funnel}.v{version}{suffix}.json",
        mime="application/json",
        type="primary",
        key=f"versions:{funnel}:download",
    )
    with st.expander(_("Preview")):
        st.code(text, language="json")


def _import(c: Any) -> None:
    st.markdown(
        _(
            "Upload a rule-set JSON file (or paste it). It is checked with the same validator as "
            "`conveyor validate`; it is saved as a new version only if it has no problems."
        )
    )
    upload = st.file_uploader(_("Rule-set JSON"), type=["json"], key="versions:upload")
    pasted = st.text_area(_("…or paste the JSON here"), key="versions:paste", height=140)
    data: bytes | None = None
    source = ""
    if upload is not None:
        data, source = upload.getvalue(), upload.name
    elif pasted.strip():
        data, source = pasted.encode("utf-8"), _("pasted text")
    if data is None:
        return
    try:
        rs = c.rulesets.validate(data)
    except RuleSetInvalid as exc:
        st.error(
            ngettext(
                "**{source} is not valid — nothing was saved.** {count} problem:",
                "**{source} is not valid — nothing was saved.** {count} problems:",
                len(exc.problems),
            ).format(source=source, count=len(exc.problems))
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {_("JSON path"): p.path or _("(document)"), _("Problem"): p.message}
                    for p in exc.problems
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        return
    done = st.session_state.get("versions:imported")
    if done and done[0] == (rs.funnel, rs.fingerprint()):
        st.success(
            _("{source} was saved as version {version} of '{funnel}'.").format(
                source=source, version=done[1], funnel=rs.funnel
            )
        )
        return  # the uploader still holds the file; do not offer to save the same document twice
    known = dict(c.funnels())
    what = (
        _("a new version of **{funnel}**").format(
            funnel=state.funnel_label(rs.funnel, known[rs.funnel])
        )
        if rs.funnel in known
        else _("a **new funnel**")
    )
    st.success(
        _(
            "{source} is valid: funnel `{funnel}` ({name}) with {stages} stages, {transitions} "
            "transitions and {rules} rules. Saving creates {what}."
        ).format(
            source=source,
            funnel=rs.funnel,
            name=label(rs.name),
            stages=len(rs.stages),
            transitions=len(rs.transitions),
            rules=len(rs.rules),
            what=what,
        )
    )
    comment = st.text_input(
        _("Comment"),
        value=_("imported from {source}").format(source=source),
        key="versions:import_comment",
    )
    if st.button(_("Save imported version"), type="primary", key="versions:import_save"):
        try:
            info = session.acting_conveyor().save_ruleset(rs, comment=comment)
        except RuleSetInvalid as exc:
            st.error(
                _("Not saved:")
                + "\n\n"
                + "\n".join(f"- `{p.path}`: {p.message}" for p in exc.problems)
            )
            return
        except (
            ConveyorError,
            SQLAlchemyError,
        ) as exc:  # e.g. someone saved a version at the same time
            st.error(
                _("Not saved: {error} Nothing was changed; try again.").format(
                    error=state.error_message(exc, _("The imported version"))
                ),
                icon="🚫",
            )
            return
        st.session_state["versions:imported"] = ((rs.funnel, rs.fingerprint()), info.version)
        if not state.is_dirty(rs.funnel):
            state.discard_draft(rs.funnel)
        st.session_state["owner_flash"] = _("Imported as version {version} of '{funnel}'.").format(
            version=info.version, funnel=rs.funnel
        )
        st.session_state[state.FUNNEL_NEXT] = rs.funnel
        st.rerun()
