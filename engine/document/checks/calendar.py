"""Checks of a funnel's ``calendar`` (the zone, each weekday's intervals, the holidays' country and
dates) and of what needs one: the ``working_hours_*`` variables and ``create_task``'s working-hour delay."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import holidays as holidays_package
import re2

from engine.document.limits import MAX_WORKING_HOURS
from engine.document.ruleset import Calendar, Holidays
from engine.document.suggestions import suggest
from engine.errors import Problem
from engine.i18n import _, ngettext
from engine.rules.working_time import WEEKDAYS, parse_clock

__all__ = [
    "MAX_HOLIDAY_DATES",
    "calendar_problems",
    "is_working_twin",
    "known_countries",
    "known_zones",
    "notification_delay_problems",
    "task_delay_problems",
    "working_time_refusal",
]

#: Listed days off beyond this are a pasted table, not a calendar someone keeps.
MAX_HOLIDAY_DATES = 1_000
_ISO_DATE = re2.compile(r"^\d{4}-\d{2}-\d{2}$")


@cache
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@cache
def known_countries() -> frozenset[str]:
    return frozenset(holidays_package.list_supported_countries())


def calendar_problems(calendar: Calendar, root: str = "calendar") -> list[Problem]:
    """Every problem of ``calendar``, each at its JSON path under ``root``."""
    out: list[Problem] = []
    zone = calendar.zone
    if zone not in known_zones():
        out.append(
            Problem(
                f"{root}.zone",
                _("'{zone}' is not a time zone (an IANA name such as 'Europe/Kyiv')").format(
                    zone=zone[:60]
                )
                + suggest(zone, known_zones()),
            )
        )
    any_hours = False
    for day, intervals in calendar.week.items():
        p = f"{root}.week.{day}"
        if day not in WEEKDAYS:
            out.append(
                Problem(
                    p,
                    _("'{day}' is not a weekday (use: {days})").format(
                        day=day[:20], days=", ".join(WEEKDAYS)
                    )
                    + suggest(day, WEEKDAYS),
                )
            )
            continue
        spans: list[tuple[int, int, int]] = []
        for i, interval in enumerate(intervals):
            ip = f"{p}[{i}]"
            if len(interval) != 2:
                out.append(
                    Problem(
                        ip,
                        ngettext(
                            'an interval is a start and an end, e.g. ["09:00", "18:00"]; got {n} value',
                            'an interval is a start and an end, e.g. ["09:00", "18:00"]; got {n} values',
                            len(interval),
                        ).format(n=len(interval)),
                    )
                )
                continue
            minutes = []
            for j, text in enumerate(interval):
                try:
                    minutes.append(parse_clock(text))
                except ValueError:
                    out.append(
                        Problem(
                            f"{ip}[{j}]",
                            _("'{text}' is not a time of day (HH:MM, from 00:00 to 24:00)").format(
                                text=text[:20]
                            ),
                        )
                    )
            if len(minutes) != 2:
                continue
            start, end = minutes
            if start >= end:
                out.append(
                    Problem(
                        ip,
                        _("the interval {start}–{end} ends before it starts").format(
                            start=interval[0], end=interval[1]
                        ),
                    )
                )
                continue
            spans.append((start, end, i))
        spans.sort()
        for (_s0, e0, i0), (s1, _e1, i1) in zip(spans, spans[1:], strict=False):
            if s1 < e0:
                first, second = intervals[i0], intervals[i1]
                out.append(
                    Problem(
                        f"{p}[{i1}]",
                        _("the interval {a}–{b} overlaps {c}–{d} ({day}[{other}])").format(
                            a=second[0], b=second[1], c=first[0], d=first[1], day=day, other=i0
                        ),
                    )
                )
        any_hours = any_hours or bool(spans)
    if not any_hours and not any(p.path.startswith(f"{root}.week.") for p in out):
        out.append(
            Problem(
                f"{root}.week",
                _(
                    'a calendar needs working hours on at least one day, e.g. "mon": [["09:00", "18:00"]]'
                ),
            )
        )
    if calendar.holidays is not None:
        out += _holiday_problems(calendar.holidays, f"{root}.holidays")
    return out


def _holiday_problems(days_off: Holidays, p: str) -> list[Problem]:
    out: list[Problem] = []
    country = days_off.country
    if country is not None and country not in known_countries():
        hint = (
            f"; did you mean '{country.upper()}'?"
            if country.upper() in known_countries()
            else suggest(country, known_countries())
        )
        out.append(
            Problem(
                f"{p}.country",
                _(
                    "'{country}' is not a country the holidays package knows (a code such as 'UA')"
                ).format(country=country[:20])
                + hint,
            )
        )
    dates = days_off.dates
    if len(dates) > MAX_HOLIDAY_DATES:
        out.append(
            Problem(
                f"{p}.dates",
                _("{n} dates; a calendar may list at most {limit}").format(
                    n=len(dates), limit=MAX_HOLIDAY_DATES
                ),
            )
        )
    seen: set[str] = set()
    for i, text in enumerate(dates):
        try:
            day = date.fromisoformat(text)
            if not _ISO_DATE.match(text) or not 2 <= day.year <= 9998:
                raise ValueError(text)
        except ValueError:
            out.append(
                Problem(
                    f"{p}.dates[{i}]",
                    _("'{text}' is not a date (YYYY-MM-DD, e.g. 2026-12-31)").format(
                        text=text[:30]
                    ),
                )
            )
            continue
        if text in seen:
            out.append(Problem(f"{p}.dates[{i}]", _("{date} is listed twice").format(date=text)))
        seen.add(text)
    return out


def is_working_twin(name: str, time_names: Collection[str]) -> bool:
    """``working_<a time variable>``: a name that would be a variable if the funnel had a calendar."""
    return name.startswith("working_") and name[len("working_") :] in time_names


def working_time_refusal(name: str) -> str:
    return _(
        "'{name}' counts working time: the funnel needs a valid \"calendar\" (working hours and"
        " days off)"
    ).format(name=name)


def task_delay_problems(params: dict[str, Any], p: str, has_calendar: bool) -> list[Problem]:
    """A task is due in calendar hours or in working hours: exactly one of the two (``p``: the action)."""
    out: list[Problem] = []
    working = f"{p}.params.due_in_working_hours"
    given = [k for k in ("due_in_hours", "due_in_working_hours") if params.get(k) is not None]
    nulls = [k for k in ("due_in_hours", "due_in_working_hours") if k in params]
    if not given and nulls:
        out.append(
            Problem(f"{p}.params.{nulls[0]}", _("needs a number, got {value}").format(value="null"))
        )
    elif not given:
        out.append(
            Problem(
                f"{p}.params",
                _("'create_task' needs parameter 'due_in_hours' (or 'due_in_working_hours')"),
            )
        )
    elif len(given) == 2:
        out.append(Problem(working, _("give 'due_in_hours' or 'due_in_working_hours', not both")))
    elif given == ["due_in_working_hours"] and not has_calendar:
        out.append(Problem(working, working_time_refusal("due_in_working_hours")))
    return out + _working_hours_limit(params, working)


def notification_delay_problems(
    params: dict[str, Any], p: str, has_calendar: bool
) -> list[Problem]:
    """A notification is told at once, after ``delay_hours``, or after ``due_in_working_hours``
    working hours of the calendar: at most one of the two (``p``: the action)."""
    out: list[Problem] = []
    working = f"{p}.params.due_in_working_hours"
    given = [k for k in ("delay_hours", "due_in_working_hours") if params.get(k) is not None]
    if len(given) == 2:
        out.append(Problem(working, _("give 'delay_hours' or 'due_in_working_hours', not both")))
    elif given == ["due_in_working_hours"] and not has_calendar:
        out.append(Problem(working, working_time_refusal("due_in_working_hours")))
    return out + _working_hours_limit(params, working)


def _working_hours_limit(params: dict[str, Any], working: str) -> list[Problem]:
    out: list[Problem] = []
    value = params.get("due_in_working_hours")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > MAX_WORKING_HOURS:
        out.append(
            Problem(
                working,
                _("is {value} working hours; a task may be due at most {limit:,} ahead").format(
                    value=value, limit=MAX_WORKING_HOURS
                ),
            )
        )
    return out
