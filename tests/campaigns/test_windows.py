"""Calling windows in each candidate zone of a number, DST included."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, time, timedelta

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.windows import LegalWindow, is_open, parse_calling_hours, zones_for_number
from voiso_byob.errors import DomainError

WEEKDAYS_9_TO_20 = parse_calling_hours(
    [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "20:00"}]
)
LEGAL = LegalWindow(time(8), time(21))


def test_open_in_the_leads_zone_not_the_servers() -> None:
    # 14:00 UTC on a Wednesday in January: 09:00 in New York, 06:00 in Los Angeles.
    now = datetime(2026, 1, 7, 14, 0, tzinfo=UTC)
    assert is_open(now=now, zones=["America/New_York"], hours=WEEKDAYS_9_TO_20, legal=LEGAL)
    assert not is_open(now=now, zones=["America/Los_Angeles"], hours=WEEKDAYS_9_TO_20, legal=LEGAL)


def test_every_candidate_zone_must_be_open() -> None:
    now = datetime(2026, 1, 7, 14, 0, tzinfo=UTC)
    zones = ["America/New_York", "America/Los_Angeles"]
    assert not is_open(now=now, zones=zones, hours=WEEKDAYS_9_TO_20, legal=LEGAL)
    later = now + timedelta(hours=3)  # 12:00 New York, 09:00 Los Angeles
    assert is_open(now=later, zones=zones, hours=WEEKDAYS_9_TO_20, legal=LEGAL)


def test_no_zone_is_never_open() -> None:
    now = datetime(2026, 1, 7, 14, 0, tzinfo=UTC)
    assert not is_open(now=now, zones=[], hours=WEEKDAYS_9_TO_20, legal=LEGAL)


def test_the_legal_window_narrows_the_campaigns_hours() -> None:
    all_day = parse_calling_hours([{"days": ["sat"], "start": "00:00", "end": "23:59"}])
    saturday = datetime(2026, 1, 10, 7, 30, tzinfo=UTC)
    assert not is_open(now=saturday, zones=["UTC"], hours=all_day, legal=LEGAL)
    assert is_open(now=saturday.replace(hour=8), zones=["UTC"], hours=all_day, legal=LEGAL)
    florida = LEGAL.narrowed(time(8), time(20))
    assert is_open(now=saturday.replace(hour=20, minute=30), zones=["UTC"], hours=all_day, legal=LEGAL)
    assert not is_open(now=saturday.replace(hour=20, minute=30), zones=["UTC"], hours=all_day, legal=florida)


def test_dst_spring_forward_keeps_local_hours() -> None:
    # 2026-03-08 US clocks go 02:00 → 03:00. 13:00 UTC is 08:00 EST the day before, 09:00 EDT on the day.
    hours = parse_calling_hours([{"days": ["sat", "sun"], "start": "09:00", "end": "20:00"}])
    assert not is_open(
        now=datetime(2026, 3, 7, 13, 30, tzinfo=UTC), zones=["America/New_York"], hours=hours, legal=LEGAL
    )
    assert is_open(
        now=datetime(2026, 3, 8, 13, 30, tzinfo=UTC), zones=["America/New_York"], hours=hours, legal=LEGAL
    )


def test_toll_free_numbers_have_every_us_zone_and_mobiles_their_area() -> None:
    toll_free = zones_for_number(phonenumbers.parse("+18885550123"))
    assert "America/New_York" in toll_free and "Pacific/Honolulu" in toll_free
    assert zones_for_number(phonenumbers.parse("+12125550123")) == ["America/New_York"]
    uk_mobile = zones_for_number(phonenumbers.parse("+447400123456"))
    assert uk_mobile == ["Europe/Guernsey", "Europe/Isle_of_Man", "Europe/Jersey", "Europe/London"]


@pytest.mark.parametrize(
    "value",
    [
        [],
        "mon-fri",
        [{"days": ["monday"], "start": "09:00", "end": "20:00"}],
        [{"days": ["mon"], "start": "9:00", "end": "20:00"}],
        [{"days": ["mon"], "start": "20:00", "end": "09:00"}],
        [{"days": ["mon"], "start": "25:00", "end": "26:00"}],
        [{"days": [], "start": "09:00", "end": "20:00"}],
        [{"days": ["mon"], "start": "09:00", "end": "20:00", "extra": 1}],
    ],
)
def test_bad_calling_hours_are_refused(value: object) -> None:
    with pytest.raises(DomainError) as refused:
        parse_calling_hours(value)
    assert refused.value.code == "invalid_calling_hours"


ALL_ZONES = sorted(zoneinfo.available_timezones() - {"Factory", "localtime"})


@settings(max_examples=400, deadline=None)
@given(
    zones=st.lists(st.sampled_from(ALL_ZONES), min_size=1, max_size=4),
    # 2025 to 2027 covers a DST change in both directions in both hemispheres.
    now=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    start=st.integers(min_value=0, max_value=22),
    length=st.integers(min_value=1, max_value=12),
)
def test_never_open_outside_the_window_in_any_zone(zones, now, start, length) -> None:
    end = min(start + length, 23)
    hours = parse_calling_hours(
        [
            {
                "days": ["mon", "tue", "wed", "thu", "fri", "sat"],
                "start": f"{start:02d}:00",
                "end": f"{end:02d}:00",
            }
        ]
    )
    if is_open(now=now, zones=zones, hours=hours, legal=LEGAL):
        for name in zones:
            local = now.astimezone(zoneinfo.ZoneInfo(name))
            assert local.weekday() != 6
            assert time(max(start, 8)) <= local.time() < time(min(end, 21)), (name, local)
