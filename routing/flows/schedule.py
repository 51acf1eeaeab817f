"""Weekly opening hours and dated holidays, evaluated in a contact center's timezone.

The config (shared by the `schedule` node and `Flow.business_hours`):

    {"weekly": {"mon": [["09:00", "17:30"], ...], ..., "sun": []},
     "holidays": [{"date": "2025-12-25", "name": "Christmas"}]}

Ranges are wall-clock times, start inclusive, end exclusive; "24:00" may end a range and a
range may not cross midnight (split it into "22:00"-"24:00" and "00:00"-"06:00"). A missing
day has no ranges (closed). Holidays are whole local dates and win over opening hours.

DST: the instant is converted to local wall time with zoneinfo and compared with the ranges,
so a range means what a clock on the office wall shows. On a spring-forward day in London
(01:00 → 02:00) a range "01:30"-"03:00" is open from 02:00 BST, the first wall time inside it
that exists, until 03:00 BST; wall times inside the gap never occur, so a range lying wholly
inside the gap is closed that day. On a fall-back day the repeated hour is open both times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OPEN, CLOSED, HOLIDAY = "open", "closed", "holiday"

_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
END_OF_DAY = 24 * 60


def parse_time(text: str, *, is_end: bool = False) -> int | None:
    """'09:30' → 570 minutes after midnight; '24:00' only as an end; None when malformed."""
    if is_end and text == "24:00":
        return END_OF_DAY
    match = _TIME_RE.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)) * 60 + int(match.group(2))


def parse_date(text: str) -> date | None:
    if not _DATE_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed, validated schedule: ranges per weekday (Monday = 0) in minutes, holiday dates."""

    ranges: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date]

    def state_at(self, at: datetime, zone: ZoneInfo) -> str:
        """'open', 'closed' or 'holiday' for the aware instant `at` in `zone`."""
        local = at.astimezone(zone)
        if self.holidays and local.date() in self.holidays:
            return HOLIDAY
        minute = local.hour * 60 + local.minute
        for start, end in self.ranges[local.weekday()]:
            if start <= minute < end:
                return OPEN
        return CLOSED

    def is_open(self, at: datetime, zone: ZoneInfo) -> bool:
        return self.state_at(at, zone) == OPEN


def parse_schedule(config: dict) -> Schedule:
    """Build a Schedule from a config that `validate_schedule` accepted (ValueError otherwise)."""
    weekly = config.get("weekly") or {}
    ranges = []
    for day in DAYS:
        day_ranges = []
        for start_text, end_text in weekly.get(day) or ():
            start, end = parse_time(start_text), parse_time(end_text, is_end=True)
            if start is None or end is None or start >= end:
                raise ValueError(f"bad range {start_text!r}-{end_text!r} on {day}")
            day_ranges.append((start, end))
        ranges.append(tuple(sorted(day_ranges)))
    holidays = set()
    for holiday in config.get("holidays") or ():
        parsed = parse_date(holiday["date"])
        if parsed is None:
            raise ValueError(f"bad holiday date {holiday['date']!r}")
        holidays.add(parsed)
    return Schedule(ranges=tuple(ranges), holidays=frozenset(holidays))
