"""Working time: measuring and adding working hours, exact across weekends, holidays, DST and midnight.

Properties (Hypothesis) over random calendars and instants: adding N working microseconds and
measuring gives N back, and one microsecond earlier gives less; measures add up over adjacent spans;
working time never runs faster than the clocks; the vectorised measure is the scalar one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.document.ruleset import Calendar
from engine.rules.evaluators.vectorized import worked_until
from engine.rules.working_time import WEEKDAYS, WorkingCalendar, calendar_of, country_days_off

KYIV = ZoneInfo("Europe/Kyiv")
US = timedelta(microseconds=1)
OFFICE = {d: [["09:00", "18:00"]] for d in WEEKDAYS[:5]}


def kyiv(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=KYIV)


def cal(week: dict | None = None, zone: str = "Europe/Kyiv", **holidays: object) -> WorkingCalendar:
    doc: dict = {"zone": zone, "week": OFFICE if week is None else week}
    if holidays:
        doc["holidays"] = holidays
    found = calendar_of(Calendar.model_validate(doc))
    assert found is not None
    return found


def test_friday_afternoon_plus_eight_working_hours_is_monday_afternoon() -> None:
    office = cal()
    friday = kyiv(2026, 12, 4, 16)
    assert office.add_hours(friday, 8) == kyiv(2026, 12, 7, 15)
    assert office.hours(friday, kyiv(2026, 12, 7, 15)) == 8.0
    assert office.hours(friday, kyiv(2026, 12, 7, 9)) == 2.0  # the weekend counts nothing


def test_a_listed_holiday_moves_the_end_by_one_working_day() -> None:
    office = cal(country="UA", dates=["2026-12-07"])
    assert office.add_hours(kyiv(2026, 12, 4, 16), 8) == kyiv(2026, 12, 8, 15)


@pytest.mark.parametrize(
    ("friday", "monday"),
    [
        pytest.param(kyiv(2026, 3, 27, 16), kyiv(2026, 3, 30, 15), id="clocks-forward"),
        pytest.param(kyiv(2026, 10, 23, 16), kyiv(2026, 10, 26, 15), id="clocks-back"),
    ],
)
def test_a_dst_weekend_does_not_shift_working_hours(friday: datetime, monday: datetime) -> None:
    office = cal()
    assert office.add_hours(friday, 8) == monday
    # The wall-clock answer, though the UTC offset differs between the two days.
    assert friday.utcoffset() != monday.utcoffset()


def test_a_day_that_spans_a_clock_change_is_as_long_as_the_clocks_really_run() -> None:
    sundays = cal({"sun": [["00:00", "24:00"]]})
    assert sundays.hours(kyiv(2026, 3, 29), kyiv(2026, 3, 30)) == 23.0
    assert sundays.hours(kyiv(2026, 10, 25), kyiv(2026, 10, 26)) == 25.0
    # 03:00–04:00 does not exist on 29 March in Kyiv: an interval starting in it starts at the jump.
    skipped = cal({"sun": [["03:30", "05:00"]]})
    assert skipped.hours(kyiv(2026, 3, 29), kyiv(2026, 3, 30)) == 1.0


def test_an_interval_ending_at_midnight_joins_the_next_day_starting_at_midnight() -> None:
    nights = cal({"mon": [["22:00", "24:00"]], "tue": [["00:00", "02:00"]]})
    monday = kyiv(2026, 12, 7, 23)
    assert nights.add_hours(monday, 2) == kyiv(2026, 12, 8, 1)
    assert nights.hours(kyiv(2026, 12, 7), kyiv(2026, 12, 9)) == 4.0


def test_ukraine_under_martial_law_has_no_public_days_off_and_before_it_had() -> None:
    # From 2023 the package lists Ukraine's holidays as working days ("workday" category) only.
    assert country_days_off("UA", 2026) == frozenset()
    assert date(2022, 1, 7) in country_days_off("UA", 2022)
    office = cal(country="UA")
    # 1 January 2026 (a Thursday) is a working day; 7 January 2022 (a Friday) was not.
    assert office.hours(kyiv(2026, 1, 1), kyiv(2026, 1, 2)) == 9.0
    assert office.hours(kyiv(2022, 1, 7), kyiv(2022, 1, 8)) == 0.0


def test_a_country_with_public_holidays_gets_them_as_days_off() -> None:
    poland = cal(zone="Europe/Warsaw", country="PL")
    warsaw = ZoneInfo("Europe/Warsaw")
    # 11 November 2026 (Wednesday) is Independence Day in Poland.
    assert (
        poland.hours(datetime(2026, 11, 11, tzinfo=warsaw), datetime(2026, 11, 12, tzinfo=warsaw))
        == 0.0
    )


def test_a_forty_eight_hour_rule_across_a_week_long_holiday() -> None:
    week_off = [f"2026-12-{d:02d}" for d in range(7, 12)]  # Monday 7 to Friday 11 December
    office = cal(country="UA", dates=week_off)
    start = kyiv(2026, 12, 4, 9)  # Friday: 9 h that day, then nothing until 14 December
    # 9 (Fri 4) + 9 * 4 (Mon 14 - Thu 17) = 45, then 3 more on Friday 18 December.
    assert office.add_hours(start, 48) == kyiv(2026, 12, 18, 12)
    assert cal().add_hours(start, 48) == kyiv(2026, 12, 11, 12)


def test_measuring_backwards_is_the_negative_measure() -> None:
    office = cal()
    a, b = kyiv(2026, 12, 4, 16), kyiv(2026, 12, 7, 15)
    assert office.hours(b, a) == -8.0
    assert office.hours(None, a) == 0.0


# -- properties -------------------------------------------------------------------------------------
_clock = st.integers(0, 24 * 4).map(lambda q: q * 15)  # quarter hours, 00:00 … 24:00


@st.composite
def weeks(draw: st.DrawFn) -> dict[str, list[list[str]]]:
    week: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        marks = sorted(set(draw(st.lists(_clock, max_size=4))))
        pairs = [(a, b) for a, b in zip(marks[::2], marks[1::2], strict=False) if a < b]
        if pairs:
            week[day] = [
                [f"{a // 60:02d}:{a % 60:02d}", f"{b // 60:02d}:{b % 60:02d}"] for a, b in pairs
            ]
    if not week:
        week["wed"] = [["09:00", "18:00"]]
    return week


calendars = st.builds(
    lambda week, zone, dates: cal(week, zone, country="UA", dates=dates),
    weeks(),
    st.sampled_from(
        ["Europe/Kyiv", "America/New_York", "Australia/Lord_Howe", "UTC", "Asia/Kolkata"]
    ),
    st.lists(
        st.dates(date(2025, 1, 1), date(2027, 12, 31)).map(date.isoformat), max_size=5, unique=True
    ),
)
instants = st.integers(
    int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 10**6),
    int(datetime(2027, 12, 31, tzinfo=UTC).timestamp() * 10**6),
).map(lambda us: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us))
worked = st.integers(0, 300 * 3_600_000_000)


@settings(max_examples=150, deadline=None)
@given(calendars, instants, worked)
def test_adding_then_measuring_gives_the_hours_back_and_the_sum_is_the_first_such_instant(
    calendar: WorkingCalendar, start: datetime, n: int
) -> None:
    end = calendar.add_us(start, n)
    assert end is not None and end >= start
    assert calendar.worked_us(start, end) == n
    if n > 0:
        assert (
            calendar.worked_us(start, end - US) == n - 1
        )  # the first such instant, to the microsecond


@settings(max_examples=150, deadline=None)
@given(calendars, instants, instants, instants)
def test_measures_add_up_and_never_run_faster_than_the_clocks(
    calendar: WorkingCalendar, a: datetime, b: datetime, c: datetime
) -> None:
    a, b, c = sorted((a, b, c))
    ab, bc = calendar.worked_us(a, b), calendar.worked_us(b, c)
    assert ab + bc == calendar.worked_us(a, c)
    assert 0 <= ab <= (b - a) // US
    assert calendar.worked_us(c, a) == -(ab + bc)


@settings(max_examples=60, deadline=None)
@given(calendars, st.lists(instants, min_size=1, max_size=20), instants)
def test_the_vectorised_measure_is_the_scalar_one(
    calendar: WorkingCalendar, starts: list[datetime], now: datetime
) -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    us = np.array([(s - epoch) // US for s in starts], dtype="int64")
    got = worked_until(calendar, us, (now - epoch) // US)
    assert got.tolist() == [calendar.worked_us(s, now) for s in starts]


ZONES = st.sampled_from(
    [
        "Europe/Kyiv",
        "America/New_York",
        "Australia/Lord_Howe",  # half-hour clock changes
        "Africa/Casablanca",  # clocks stopped for Ramadan, some years twice
        "Pacific/Apia",  # skipped a whole day (2011-12-30)
        "America/Sao_Paulo",  # changed at midnight
        "Asia/Kolkata",
    ]
)


@settings(max_examples=80, deadline=None)
@given(weeks(), ZONES, st.integers(1900, 2100))
def test_a_year_built_a_day_at_a_time_is_the_year_built_one_time_at_a_time(
    week: dict, zone: str, year: int
) -> None:
    # The table's shortcut (a day without a clock change is its wall-clock hours at one offset)
    # must give exactly what converting every start and end through the zone gives.
    calendar = cal(week, zone, country="UA")
    assert calendar.build_year(year) == calendar.build_year(year, steady_days=False)


def test_more_working_hours_than_the_calendar_holds_are_never_reached() -> None:
    # "working_hours_in_stage >= 1e20" is never due: answered at once, not by walking eight
    # thousand years of tables (rule sets cap thresholds at 100 000; generated trees do not).
    office = cal(country="UA")
    start = kyiv(2026, 3, 20, 12)
    assert office.add_hours(start, 1e20) is None
    assert office.add_hours(start, 40_000_000) is None  # ~2,000 h a year until 9998 is 16 million


def test_a_million_working_hours_land_where_measuring_says_they_do() -> None:
    # Five centuries of office hours: the walk through yearly totals is exact to the microsecond.
    office = cal(country="UA")
    start = kyiv(2026, 3, 20, 12)
    end = office.add_hours(start, 1_000_000)
    assert end is not None and end.year > 2400
    assert office.worked_us(start, end) == 1_000_000 * 3_600_000_000
    assert office.worked_us(start, end - US) == 1_000_000 * 3_600_000_000 - 1
