"""Weekly opening hours and dated holidays as form fields (a schedule node, a flow's business hours)."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from routing.flows.schedule import DAYS
from routing.flows.schema import validate_schedule

DAY_NAMES = dict(
    zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)
_RANGE_RE = re.compile(r"^([0-9]{1,2}):([0-9]{2})\s*[-\u2013]\s*([0-9]{1,2}):([0-9]{2})$")
_HOLIDAY_RE = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})\s+(.+)$")
_PROBLEM_FIELD_RE = re.compile(r"^(?:config\.)?(?:weekly\.(?P<day>[a-z]+)|(?P<holidays>holidays))")


class ScheduleForm(forms.Form):
    """Weekly opening hours and dated holidays (a schedule node's config, a flow's business hours)."""

    holidays = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: date, then name, e.g. “2025-12-25 Christmas Day”.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for day in DAYS:
            self.fields[day] = forms.CharField(
                label=DAY_NAMES[day],
                required=False,
                max_length=600,
                help_text="e.g. 09:00-12:30, 13:30-17:30 (24:00 may end a day); empty = closed."
                if day == "mon"
                else "",
            )
        # Days first, holidays after them, whatever the subclass declares around them.
        names = list(self.fields)
        at = names.index("holidays")
        self.order_fields([*names[:at], *DAYS, "holidays", *(n for n in names[at + 1 :] if n not in DAYS)])

    @staticmethod
    def initial_schedule(config: Any) -> dict[str, str]:
        config = config if isinstance(config, dict) else {}
        weekly = config.get("weekly") if isinstance(config.get("weekly"), dict) else {}
        initial = {}
        for day in DAYS:
            ranges = weekly.get(day) if isinstance(weekly.get(day), list) else []
            initial[day] = ", ".join(
                f"{pair[0]}-{pair[1]}" for pair in ranges if isinstance(pair, list) and len(pair) == 2
            )
        holidays = config.get("holidays") if isinstance(config.get("holidays"), list) else []
        initial["holidays"] = "\n".join(
            f"{item.get('date', '')} {item.get('name', '')}" for item in holidays if isinstance(item, dict)
        )
        return initial

    def _ranges(self, day: str) -> list[list[str]]:
        ranges = []
        for part in (self.cleaned_data.get(day) or "").split(","):
            part = part.strip()
            if not part:
                continue
            match = _RANGE_RE.fullmatch(part)
            if match is None:
                self.add_error(
                    day, f"“{part}” is not a range; write 09:00-17:30, ranges separated by commas."
                )
                continue
            hour_from, minute_from, hour_to, minute_to = match.groups()
            ranges.append([f"{int(hour_from):02d}:{minute_from}", f"{int(hour_to):02d}:{minute_to}"])
        return ranges

    def _holidays(self) -> list[dict[str, str]]:
        holidays = []
        for line in (self.cleaned_data.get("holidays") or "").splitlines():
            line = line.strip()
            if not line:
                continue
            match = _HOLIDAY_RE.fullmatch(line)
            if match is None:
                self.add_error(
                    "holidays", f"“{line}” is not a date and a name, e.g. 2025-12-25 Christmas Day."
                )
                continue
            holidays.append({"date": match.group(1), "name": match.group(2).strip()[:100]})
        return holidays

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        weekly = {day: ranges for day in DAYS if (ranges := self._ranges(day))}
        schedule: dict[str, Any] = {"weekly": weekly, "holidays": self._holidays()}
        for problem in validate_schedule(schedule):
            match = _PROBLEM_FIELD_RE.match(problem.field or "")
            field = None
            if match is not None:
                field = match.group("day") if match.group("day") in DAYS else "holidays"
            self.add_error(field, problem.message)
        cleaned["schedule"] = schedule
        return cleaned

    def schedule(self) -> dict[str, Any]:
        """The config; `{}` when nothing is entered."""
        schedule = self.cleaned_data["schedule"]
        if not schedule["weekly"] and not schedule["holidays"]:
            return {}
        return schedule
