"""Working time: how many working hours lie between two instants, and when N working hours have passed.

A ``WorkingCalendar`` is a funnel's ``calendar`` (engine.document.ruleset.Calendar) made exact: each
local day's working intervals become UTC instants (integer microseconds since the epoch), one table
per local year, so a measure is two binary searches per year spanned and adding hours is one search.
DST is in the conversion: an interval is as long as the clocks really run through it, a wall-clock
time that happens twice (clocks going back) counts from its first occurrence, and one the clocks skip
(spring forward) is the instant they jump. Days off: the week's free days, the country's *public*
holidays as the ``holidays`` package gives them for that year (Ukraine under martial law, from 2023,
has none: its holidays are working days, the package's ``workday`` category), and listed dates.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_package

from engine.document.ruleset import Calendar

__all__ = [
    "US_PER_HOUR",
    "WEEKDAYS",
    "WorkingCalendar",
    "calendar_of",
    "country_days_off",
    "parse_clock",
]

#: The document's weekday keys, Monday first (``date.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
US_PER_HOUR = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_MIN_YEAR, _MAX_YEAR = 2, 9998  # a year's table converts the days around it: stay inside datetime


def parse_clock(text: str) -> int:
    """Minutes since midnight of ``"HH:MM"`` (``"24:00"`` is 1440); ValueError if it is not one."""
    if len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isdigit():
        raise ValueError(text)
    hours, minutes = int(text[:2]), int(text[3:])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(text)
    return hours * 60 + minutes


@cache
def country_days_off(country: str, year: int) -> frozenset[date]:
    """The country's public holidays (days off by law) in ``year``, as the ``holidays`` package has them."""
    found = holidays_package.country_holidays(country, years=year, categories=("public",))
    return frozenset(found.keys())


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _US


def _instant(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class _Year:
    """One local year's working intervals in UTC microseconds, sorted and disjoint."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    before: tuple[int, ...]  # working microseconds of the year before interval i
    after: tuple[int, ...]  # ... up to the end of interval i
    total: int

    def until(self, t: int) -> int:
        """Working microseconds of this year before instant ``t``."""
        k = bisect_right(self.starts, t)
        if k == 0:
            return 0
        return self.before[k - 1] + min(t, self.ends[k - 1]) - self.starts[k - 1]

    def reach(self, worked: int) -> int:
        """The first instant by which ``worked`` (1 ≤ worked ≤ total) microseconds of the year are worked."""
        i = bisect_left(self.after, worked)
        return self.starts[i] + worked - self.before[i]


@dataclass(frozen=True)
class WorkingCalendar:
    """A validated calendar: ``week[weekday]`` holds (start, end) minutes since local midnight."""

    zone: str
    week: tuple[tuple[tuple[int, int], ...], ...]
    country: str | None = None
    dates: frozenset[date] = frozenset()

    # -- the tables ------------------------------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def is_day_off(self, day: date) -> bool:
        if day in self.dates:
            return True
        return self.country is not None and day in country_days_off(self.country, day.year)

    def _wall(self, day: date, minute: int) -> int:
        """The instant (UTC microseconds) of wall-clock ``minute`` of local ``day``."""
        tz = self.tz
        wall = datetime.combine(day, time()) + timedelta(minutes=minute)
        at = wall.replace(tzinfo=tz)  # fold=0: a repeated time is its first occurrence
        utc = at.astimezone(UTC)
        if utc.astimezone(tz).replace(tzinfo=None) == wall:
            return _micros(utc)
        # The clocks skip this time: the instant they jump lies between the two readings of it.
        lo, hi = _micros(at.replace(fold=1).astimezone(UTC)), _micros(utc)
        lo, hi = min(lo, hi), max(lo, hi)
        offset = _instant(lo).astimezone(tz).utcoffset()
        while hi - lo > 1_000_000:  # zone transitions fall on whole seconds
            mid = (lo + hi) // 2
            if _instant(mid).astimezone(tz).utcoffset() == offset:
                lo = mid
            else:
                hi = mid
        return hi - hi % 1_000_000

    def year(self, y: int) -> _Year:
        return _year_table(self, y)

    def _build_year(self, y: int) -> _Year:
        starts: list[int] = []
        ends: list[int] = []
        day = date(y, 1, 1)
        while day.year == y:
            if not self.is_day_off(day):
                for start, end in self.week[day.weekday()]:
                    s, e = self._wall(day, start), self._wall(day, end)
                    if starts and s < ends[-1]:
                        s = ends[-1]
                    if e > s:
                        if starts and s == ends[-1]:  # touching at midnight: one interval
                            ends[-1] = e
                        else:
                            starts.append(s)
                            ends.append(e)
            day += timedelta(days=1)
        before, after, total = [], [], 0
        for s, e in zip(starts, ends, strict=True):
            before.append(total)
            total += e - s
            after.append(total)
        return _Year(tuple(starts), tuple(ends), tuple(before), tuple(after), total)

    def _local_year(self, us: int) -> int:
        return min(max(_instant(us).astimezone(self.tz).year, _MIN_YEAR), _MAX_YEAR)

    # -- measuring and adding ----------------------------------------------------------------------
    def worked_us(self, start: datetime, end: datetime) -> int:
        """Working microseconds from ``start`` to ``end`` (negative when ``end`` is earlier)."""
        a, b = _micros(start), _micros(end)
        if b < a:
            return -self._between(b, a)
        return self._between(a, b)

    def _between(self, a: int, b: int) -> int:
        if a == b:
            return 0
        y0, y1 = self._local_year(a), self._local_year(b)
        total = 0
        for y in range(max(y0 - 1, _MIN_YEAR), min(y1 + 1, _MAX_YEAR) + 1):
            table = self.year(y)
            total += table.until(b) - table.until(a)
        return total

    def hours(self, start: datetime | None, end: datetime) -> float:
        """Working hours from ``start`` to ``end`` as the ``working_hours_*`` variables read them (0: no start)."""
        if start is None:
            return 0.0
        # The same two correctly rounded divisions as the calendar-hour variables.
        return self.worked_us(start, end) / 10**6 / 3600.0

    def add_us(self, start: datetime, worked: int) -> datetime | None:
        """The first instant at which ``worked`` working microseconds have passed since ``start``.

        None when that is past the calendar's last year. ``worked`` ≤ 0 gives ``start``.
        """
        if worked <= 0:
            return start
        a = _micros(start)
        y = self._local_year(a)
        done = self.year(y).until(a)
        while y <= _MAX_YEAR:
            table = self.year(y)
            if done + worked <= table.total:
                return _instant(table.reach(done + worked))
            worked -= table.total - done
            done = 0
            y += 1
        return None

    def add_hours(self, start: datetime, hours: float) -> datetime | None:
        """``start`` plus ``hours`` working hours, to the microsecond (None: beyond the calendar)."""
        return self.add_us(start, round(hours * US_PER_HOUR))


@lru_cache(maxsize=512)
def _year_table(calendar: WorkingCalendar, y: int) -> _Year:
    return calendar._build_year(y)


def _key(calendar: Calendar) -> tuple[Any, ...]:
    return (
        calendar.zone,
        tuple((k, tuple(tuple(i) for i in v)) for k, v in sorted(calendar.week.items())),
        None if calendar.holidays is None else calendar.holidays.country,
        () if calendar.holidays is None else tuple(calendar.holidays.dates),
    )


@lru_cache(maxsize=256)
def _from_key(key: tuple[Any, ...]) -> WorkingCalendar:
    zone, week, country, dates = key
    days: list[tuple[tuple[int, int], ...]] = [() for _ in WEEKDAYS]
    for name, intervals in week:
        days[WEEKDAYS.index(name)] = tuple(
            sorted((parse_clock(s), parse_clock(e)) for s, e in intervals)
        )
    return WorkingCalendar(
        zone=zone,
        week=tuple(days),
        country=country,
        dates=frozenset(date.fromisoformat(d) for d in dates),
    )


def calendar_of(calendar: Calendar | None) -> WorkingCalendar | None:
    """The working calendar of a *validated* document calendar (one object per distinct calendar)."""
    return None if calendar is None else _from_key(_key(calendar))
