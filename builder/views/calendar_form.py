"""The designer's working-time form: the funnel's calendar (zone, weekly hours, days off) in the draft.

The form writes the document's ``calendar`` (docs/rules-format.md, "Working time"); the validator's
calendar checks run on Apply, so a malformed calendar is shown with its JSON paths and kept out of
the draft.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from pydantic import ValidationError

from builder import state
from engine.document.checks.calendar import calendar_problems, known_countries, known_zones
from engine.document.checks.reading import json_path
from engine.document.ruleset import Calendar
from engine.errors import Problem
from engine.i18n import N_, _
from engine.rules.working_time import WEEKDAYS

__all__ = ["parse_intervals", "render"]

DAY_NAMES = {
    "mon": N_("Monday"),
    "tue": N_("Tuesday"),
    "wed": N_("Wednesday"),
    "thu": N_("Thursday"),
    "fri": N_("Friday"),
    "sat": N_("Saturday"),
    "sun": N_("Sunday"),
}
DEFAULT_CALENDAR: dict[str, Any] = {
    "zone": "Europe/Kyiv",
    "week": {d: [["09:00", "18:00"]] for d in WEEKDAYS[:5]},
    "holidays": {"country": "UA", "dates": []},
}


def parse_intervals(text: str) -> list[list[str]]:
    """``"09:00-13:00, 14:00-18:00"`` as the document's ``[["09:00", "13:00"], ["14:00", "18:00"]]``.

    Each piece is split at its dash as written; the validator judges the times themselves, so a
    typo comes back with its JSON path instead of vanishing here.
    """
    out: list[list[str]] = []
    for piece in text.replace(";", ",").split(","):
        piece = piece.strip()
        if not piece:
            continue
        for dash in ("–", "—", "-"):
            if dash in piece:
                start, _sep, end = piece.partition(dash)
                out.append([start.strip(), end.strip()])
                break
        else:
            out.append([piece])
    return out


def _intervals_text(intervals: list[list[str]]) -> str:
    return ", ".join("–".join(i) for i in intervals)


def _problems(calendar: dict[str, Any]) -> list[Problem]:
    try:
        model = Calendar.model_validate(calendar)
    except ValidationError as exc:
        return [Problem(json_path(["calendar", *err["loc"]]), err["msg"]) for err in exc.errors()]
    return calendar_problems(model)


def render(funnel: str, doc: dict[str, Any]) -> None:
    """An expander on the designer page: edit, apply or remove the funnel's calendar."""
    current = doc.get("calendar")
    title = _("🗓️ Working time") + (
        f" · {current.get('zone', '')}" if isinstance(current, dict) else _(" · not declared")
    )
    with st.expander(title, expanded=False):
        st.caption(
            _(
                "With a calendar, rules may count working hours (working_hours_in_stage,"
                " working_hours_since_…) and tasks may be due in working hours. A day left empty"
                " is a day off."
            )
        )
        cal = current if isinstance(current, dict) else DEFAULT_CALENDAR
        key = f"calendar:{funnel}:{state.generation(funnel)}"
        zones = sorted(known_zones())
        zone = str(cal.get("zone", "Europe/Kyiv"))
        zone = st.selectbox(
            _("Time zone"),
            zones,
            index=zones.index(zone) if zone in zones else zones.index("Europe/Kyiv"),
            key=f"{key}:zone",
        )
        week = cal.get("week") if isinstance(cal.get("week"), dict) else {}
        cols = st.columns(2)
        texts: dict[str, str] = {}
        for i, day in enumerate(WEEKDAYS):
            texts[day] = cols[i % 2].text_input(
                _(DAY_NAMES[day]),
                value=_intervals_text(week.get(day) or []),
                placeholder=_("day off"),
                help=_("Working hours, e.g. 09:00–13:00, 14:00–18:00"),
                key=f"{key}:{day}",
            )
        days_off = cal.get("holidays") if isinstance(cal.get("holidays"), dict) else {}
        countries = ["", *sorted(known_countries())]
        country = days_off.get("country") or ""
        country = st.selectbox(
            _("Public holidays of"),
            countries,
            index=countries.index(country) if country in countries else 0,
            format_func=lambda c: c or _("— none —"),
            help=_(
                "Days off by law in that country, as the holidays package lists them for each year"
                " (Ukraine under martial law has none: its holidays are working days)."
            ),
            key=f"{key}:country",
        )
        dates = st.text_area(
            _("Other days off (one date per line, YYYY-MM-DD)"),
            value="\n".join(days_off.get("dates") or []),
            key=f"{key}:dates",
        )
        apply, remove = st.columns(2)
        applied = apply.button(_("Apply the calendar"), type="primary", key=f"{key}:apply")
        removed = isinstance(current, dict) and remove.button(
            _("Remove the calendar"), key=f"{key}:remove"
        )
        if removed:
            doc.pop("calendar", None)
            state.bump(funnel)
            st.rerun()
        if applied:
            calendar: dict[str, Any] = {
                "zone": zone,
                "week": {d: parse_intervals(t) for d, t in texts.items() if t.strip()},
                "holidays": {
                    "country": country or None,
                    "dates": [line.strip() for line in dates.splitlines() if line.strip()],
                },
            }
            problems = _problems(calendar)
            if problems:
                st.error(
                    _("The calendar was not applied:")
                    + "\n"
                    + "\n".join(f"- `{p.path}`: {p.message}" for p in problems)
                )
                return
            if calendar["holidays"]["country"] is None:
                del calendar["holidays"]["country"]
            doc["calendar"] = calendar
            state.bump(funnel)
            st.rerun()
