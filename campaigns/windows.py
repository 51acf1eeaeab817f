"""Calling windows: when a lead may be dialled, in each of the time zones its number may be in.

Pure functions over aware datetimes and IANA zone names; the dialer asks them at claim time.
A number with several candidate zones (a US toll-free number: 42) is dialled only when the window
is open in every one of them, so no callee is ever reached outside their local hours.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as phone_timezones

from campaigns.models import WEEKDAYS
from voiso_byob.errors import DomainError


@dataclass(frozen=True, slots=True)
class HoursRange:
    days: frozenset[int]  # 0 = Monday, as datetime.weekday()
    start: time
    end: time

    def contains(self, local: datetime) -> bool:
        return local.weekday() in self.days and self.start <= local.time() < self.end


def _parse_time(text: object, *, field: str) -> time:
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":":
        raise DomainError(
            "invalid_calling_hours", f"{field} must be a time written HH:MM.", field="calling_hours"
        )
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise DomainError("invalid_calling_hours", f"{text!r} is not a time of day.", field="calling_hours")


def parse_calling_hours(value: object) -> list[HoursRange]:
    """`[{"days": ["mon", …], "start": "09:00", "end": "20:00"}]` → ranges; raises DomainError."""
    if not isinstance(value, list) or not value:
        raise DomainError(
            "invalid_calling_hours", "Give at least one range of days and hours.", field="calling_hours"
        )
    if len(value) > 28:
        raise DomainError("invalid_calling_hours", "At most 28 ranges.", field="calling_hours")
    ranges = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"days", "start", "end"}:
            raise DomainError(
                "invalid_calling_hours",
                'Each range is {"days": [...], "start": "HH:MM", "end": "HH:MM"}.',
                field="calling_hours",
            )
        days = item["days"]
        if not isinstance(days, list) or not days or any(day not in WEEKDAYS for day in days):
            raise DomainError(
                "invalid_calling_hours", f"days are among {', '.join(WEEKDAYS)}.", field="calling_hours"
            )
        start = _parse_time(item["start"], field="start")
        end = _parse_time(item["end"], field="end")
        if start >= end:
            raise DomainError(
                "invalid_calling_hours",
                "A range ends after it starts (no overnight ranges).",
                field="calling_hours",
            )
        ranges.append(HoursRange(frozenset(WEEKDAYS.index(day) for day in days), start, end))
    return ranges


@dataclass(frozen=True, slots=True)
class LegalWindow:
    """The window no campaign can widen: the center's policy narrowed by the number's region rule."""

    start: time
    end: time

    def narrowed(self, start: time, end: time) -> LegalWindow:
        return LegalWindow(max(self.start, start), min(self.end, end))

    def contains(self, local: datetime) -> bool:
        return self.start <= local.time() < self.end


@lru_cache(maxsize=1024)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def is_open(*, now: datetime, zones: list[str], hours: list[HoursRange], legal: LegalWindow) -> bool:
    """True when, in every zone, it is inside the legal window and inside one of the campaign's ranges."""
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    for name in zones:
        local = now.astimezone(_zone(name))
        if not legal.contains(local) or not any(r.contains(local) for r in hours):
            return False
    return bool(zones)


KNOWN_ZONES = frozenset(zoneinfo.available_timezones())


def zones_for_number(parsed: phonenumbers.PhoneNumber) -> list[str]:
    """The IANA zones the number may be in; [] when libphonenumber knows none (then the campaign's zone)."""
    zones = phone_timezones.time_zones_for_number(parsed)
    return sorted(zone for zone in zones if zone in KNOWN_ZONES)
