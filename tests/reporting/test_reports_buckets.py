"""Time buckets in the report's zone: DST days, half- and quarter-hour offsets, zero-filled series."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reporting.models import BotOutcome
from reporting.reports.filters import ReportFilters
from reporting.reports.sql import bucket_start, bucket_starts
from reporting.reports.virtual_agents import virtual_agent_report
from tests.reporting.factories import make_bot, make_call

NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
LONDON = ZoneInfo("Europe/London")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_spring_forward_day_is_one_23_hour_bucket_and_a_fall_back_day_one_of_25() -> None:
    spring = bucket_starts(utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), "day", NEW_YORK)
    assert len(spring) == 1 and spring[0].isoformat() == "2026-03-08T00:00:00-05:00"
    assert bucket_start(utc(2026, 3, 9, 3, 59), "day", NEW_YORK) == spring[0]  # 23:59 EDT, same day
    assert bucket_start(utc(2026, 3, 9, 4), "day", NEW_YORK).isoformat() == "2026-03-09T00:00:00-04:00"
    assert utc(2026, 3, 9, 4) - spring[0] == timedelta(hours=23)  # mixed zones: a real difference

    fall = bucket_start(utc(2026, 11, 2, 4, 59), "day", NEW_YORK)  # 23:59 EST on Nov 1
    assert fall.isoformat() == "2026-11-01T00:00:00-04:00"
    next_day = bucket_start(utc(2026, 11, 2, 5), "day", NEW_YORK)
    # Subtracted in UTC: datetimes sharing a tzinfo subtract as wall clocks.
    assert next_day.astimezone(UTC) - fall.astimezone(UTC) == timedelta(hours=25)


def test_hours_on_dst_nights_are_real_hours() -> None:
    zone = NEW_YORK
    spring = bucket_starts(
        *ReportFilters(None, date(2026, 3, 8), date(2026, 3, 8), zone).window, "hour", zone
    )
    fall = bucket_starts(
        *ReportFilters(None, date(2026, 11, 1), date(2026, 11, 1), zone).window, "hour", zone
    )
    assert len(spring) == 23 and len(fall) == 25
    # The repeated 01:00 of the fall-back night is two buckets, an hour apart.
    first, second = (b for b in fall if b.hour == 1)
    assert first.isoformat() == "2026-11-01T01:00:00-04:00"
    assert second.isoformat() == "2026-11-01T01:00:00-05:00"
    assert bucket_start(utc(2026, 11, 1, 5, 40), "hour", zone) == first
    assert bucket_start(utc(2026, 11, 1, 6, 40), "hour", zone) == second
    london = bucket_starts(
        *ReportFilters(None, date(2026, 3, 29), date(2026, 3, 29), LONDON).window, "hour", LONDON
    )
    assert len(london) == 23


def test_half_and_quarter_hour_zones_group_on_their_own_hours_and_days() -> None:
    # 10:10 UTC is 15:40 in Kolkata (+05:30) and 15:55 in Kathmandu (+05:45).
    moment = utc(2026, 5, 1, 10, 10)
    assert bucket_start(moment, "hour", KOLKATA).isoformat() == "2026-05-01T15:00:00+05:30"
    assert bucket_start(moment, "hour", KATHMANDU).isoformat() == "2026-05-01T15:00:00+05:45"
    assert bucket_start(moment, "15m", KATHMANDU).isoformat() == "2026-05-01T15:45:00+05:45"
    assert bucket_start(moment, "15m", KOLKATA).isoformat() == "2026-05-01T15:30:00+05:30"
    # 18:20 UTC is 23:50 on May 1 in Kolkata but 00:05 on May 2 in Kathmandu.
    late = utc(2026, 5, 1, 18, 20)
    assert bucket_start(late, "day", KOLKATA).isoformat() == "2026-05-01T00:00:00+05:30"
    assert bucket_start(utc(2026, 5, 1, 18, 30), "day", KOLKATA).isoformat() == "2026-05-02T00:00:00+05:30"
    assert bucket_start(late, "day", KATHMANDU).isoformat() == "2026-05-02T00:00:00+05:45"
    assert bucket_start(utc(2026, 5, 1, 18, 14), "day", KATHMANDU).isoformat() == "2026-05-01T00:00:00+05:45"


def test_weeks_start_on_monday_at_local_midnight() -> None:
    assert bucket_start(utc(2026, 5, 3, 12), "week", KOLKATA).isoformat() == "2026-04-27T00:00:00+05:30"
    assert bucket_start(utc(2026, 3, 9, 3), "week", NEW_YORK).isoformat() == "2026-03-02T00:00:00-05:00"


def _decided_call(center, bot, started_at: datetime):
    return make_call(
        center,
        started_at=started_at,
        virtual_agent=bot,
        bot_connected_at=started_at,
        bot_outcome=BotOutcome.CONTAINED,
    )


@pytest.mark.parametrize(
    ("zone", "day", "interval", "buckets"),
    [
        (NEW_YORK, date(2026, 3, 8), "hour", 23),
        (NEW_YORK, date(2026, 11, 1), "hour", 25),
        (NEW_YORK, date(2026, 11, 1), "15m", 100),
        (NEW_YORK, date(2026, 11, 1), "day", 1),
        (KOLKATA, date(2026, 5, 1), "hour", 24),
        (KATHMANDU, date(2026, 5, 1), "15m", 96),
        (KATHMANDU, date(2026, 5, 1), "week", 1),
        (LONDON, date(2026, 10, 25), "hour", 25),
    ],
)
def test_the_database_groups_as_bucket_start_does_and_fills_empty_buckets(
    acme, zone, day, interval, buckets
) -> None:
    bot = make_bot(acme)
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    # One call every 37 minutes for 25 hours from local midnight, and one just outside each end.
    moments = [start + timedelta(minutes=37 * i, seconds=11) for i in range(41)]
    for moment in [*moments, start - timedelta(seconds=1), start + timedelta(hours=26)]:
        _decided_call(acme, bot, moment)
    filters = ReportFilters(acme, day, day, zone, interval=interval)
    report = virtual_agent_report(filters)
    window_start, window_end = filters.window
    inside = [m for m in moments if window_start <= m < window_end]
    expected: dict[datetime, int] = {}
    for moment in inside:
        key = bucket_start(moment, interval, zone).astimezone(UTC)  # UTC keys: wall clocks repeat
        expected[key] = expected.get(key, 0) + 1
    assert len(report["series"]) == buckets
    got = {point["bucket"].astimezone(UTC): point["calls"] for point in report["series"] if point["calls"]}
    assert got == expected
    assert all(point["bucket"].tzinfo is not None for point in report["series"])
    assert [p["bucket"].utcoffset() for p in report["series"]] == [
        b.utcoffset() for b in expected_axis(filters)
    ]
    assert sum(point["calls"] for point in report["series"]) == report["totals"]["calls"] == len(inside)
    empty = [point for point in report["series"] if not point["calls"]]
    if empty:  # zero-filled: counts 0, rates and times null
        assert empty[0]["containment_rate"] is None and empty[0]["bot_time_p50"] is None


def expected_axis(filters: ReportFilters) -> list[datetime]:
    return bucket_starts(*filters.window, filters.interval, filters.tz)


def test_interval_none_has_no_series(acme) -> None:
    report = virtual_agent_report(
        ReportFilters(acme, date(2026, 5, 1), date(2026, 5, 7), UTC_ZONE, interval="none")
    )
    assert report["series"] == []


UTC_ZONE = ZoneInfo("UTC")


@pytest.mark.parametrize(
    "zone",
    [
        "America/New_York",
        "Europe/London",
        "Asia/Kolkata",
        "Asia/Kathmandu",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "America/St_Johns",
    ],
)
@pytest.mark.parametrize("interval", ["15m", "hour", "day", "week"])
def test_every_moment_falls_in_exactly_one_bucket_of_the_axis(zone: str, interval: str) -> None:
    """Over a year, DST changes included: the axis is increasing, and each moment's bucket is on it
    and holds it (bucket start <= moment < the next bucket's start)."""
    import random

    from reporting.reports.sql import next_bucket

    tz = ZoneInfo(zone)
    rng = random.Random(zone + interval)
    days = {"15m": 31, "hour": 92}.get(interval, 366)
    for first_day in (date(2026, 3, 1), date(2026, 9, 20)):  # both DST changes of each hemisphere
        window = ReportFilters(None, first_day, first_day + timedelta(days=days - 1), tz).window
        axis = bucket_starts(*window, interval, tz)
        utc_axis = [b.astimezone(UTC) for b in axis]
        assert utc_axis == sorted(set(utc_axis))
        on_axis = set(utc_axis)
        span = (window[1].astimezone(UTC) - window[0].astimezone(UTC)).total_seconds()  # real seconds
        for _ in range(300):
            moment = window[0].astimezone(UTC) + timedelta(seconds=rng.uniform(0, span))
            start = bucket_start(moment, interval, tz)
            assert start.astimezone(UTC) <= moment < next_bucket(start, interval, tz).astimezone(UTC)
            assert interval == "week" or start.astimezone(UTC) in on_axis


@pytest.mark.parametrize("zone", ["Europe/London", "Asia/Kathmandu", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_the_quarter_hour_axis_is_the_walked_one(zone) -> None:
    """bucket_starts' shortcut for 15 minutes (every 15 minutes of UTC) equals walking bucket by bucket."""
    from reporting.reports.sql import _walked

    tz = ZoneInfo(zone)
    for first_day in (date(2026, 3, 20), date(2026, 10, 1)):
        window = ReportFilters(None, first_day, first_day + timedelta(days=30), tz).window
        assert list(bucket_starts(*window, "15m", tz)) == _walked(*window, "15m", tz)
