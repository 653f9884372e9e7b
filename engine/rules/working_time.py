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
_US_PER_MINUTE = 60_000_000
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

    def _midnight(self, day: date) -> tuple[int, Any]:
        """Local ``day``'s wall-clock midnight read as UTC (microseconds), and the zone's offset then."""
        wall = datetime.combine(day, time())
        return _micros(wall.replace(tzinfo=UTC)), wall.replace(tzinfo=self.tz).utcoffset()

    def build_year(self, y: int, *, steady_days: bool = True) -> _Year:
        """Local year ``y``'s table, built afresh (``year`` keeps the last 512 built).

        ``steady_days``: a day whose midnights have one offset has no clock change in it, so its
        intervals are that offset away from wall time (one zone lookup a day instead of two an
        interval); the others are converted one time at a time (``_wall``). Both give one table."""
        starts: list[int] = []
        ends: list[int] = []
        day = date(y, 1, 1)
        midnight, offset = self._midnight(day)
        while day.year == y:
            following = day + timedelta(days=1)
            next_midnight, next_offset = self._midnight(following)
            steady = steady_days and offset == next_offset and offset is not None
            if not self.is_day_off(day):
                base = midnight - offset // _US if steady else 0
                for start, end in self.week[day.weekday()]:
                    if steady:
                        s, e = base + start * _US_PER_MINUTE, base + end * _US_PER_MINUTE
                    else:
                        s, e = self._wall(day, start), self._wall(day, end)
                    if starts and s < ends[-1]:
                        s = ends[-1]
                    if e > s:
                        if starts and s == ends[-1]:  # touching at midnight: one interval
                            ends[-1] = e
                        else:
                            starts.append(s)
                            ends.append(e)
            day, midnight, offset = following, next_midnight, next_offset
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
        if worked > (_MAX_YEAR - y + 1) * self._most_per_year():
            return None  # more than the calendar's years could hold even with no day off
        done = self.year(y).until(a)
        while y <= _MAX_YEAR:
            total = _year_total(self, y)
            if done + worked <= total:
                return _instant(self.year(y).reach(done + worked))
            worked -= total - done
            done = 0
            y += 1
        return None

    def _most_per_year(self) -> int:
        """More working microseconds than any local year holds: 52 weeks, the two longest days, and
        room for clock changes (a day is at most a few hours longer than its wall-clock hours)."""
        days = sorted(sum(e - s for s, e in intervals) for intervals in self.week)
        minutes = 52 * sum(days) + days[-1] + days[-2] + 8 * 60
        return minutes * _US_PER_MINUTE

    def add_hours(self, start: datetime, hours: float) -> datetime | None:
        """``start`` plus ``hours`` working hours, to the microsecond (None: beyond the calendar)."""
        return self.add_us(start, round(hours * US_PER_HOUR))


@lru_cache(maxsize=512)
def _year_table(calendar: WorkingCalendar, y: int) -> _Year:
    return calendar.build_year(y)


@cache
def _year_total(calendar: WorkingCalendar, y: int) -> int:
    """A year's working microseconds, kept for good: adding thousands of hours passes through years
    whose tables need not stay (one integer each, per calendar in use)."""
    return _year_table(calendar, y).total


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
