"""What a report is asked for (`ReportFilters`), parsed from a query string in one place
(`ReportFilterForm`: the pages, the exports and the API all use it), and the cohort it reads.

The cohort (`cohort()`): the center's calls that *started* in the window — from local midnight of
`start` to local midnight after `end`, in `tz` — narrowed by the filters. Every figure of every
report is an aggregate over it with a FILTER, so no figure can count a call another leaves out,
and the Calls page shows the same calls from the same predicate (reporting.reports.drilldown).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Campaign
from reporting.models import CallRecord, CallRecordQuerySet, Direction
from routing.models import Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter, validate_timezone

INTERVAL_CHOICES = [
    ("15m", "15 minutes"),
    ("hour", "Hour"),
    ("day", "Day"),
    ("week", "Week"),
    ("none", "No grouping"),
]
DEFAULT_INTERVAL = "day"
DEFAULT_DAYS = 7  # the last 7 days, today included
# The longest range (days, both ends included) each grouping may cover: at most ~3,000 points
# a chart (15 minutes over a month, hours over a quarter, days over three years).
MAX_DAYS = {"15m": 31, "hour": 92, "day": 1096, "week": 3660, "none": 3660}
DEFAULT_CONTEXT_KEY = "X-Reason"
MAX_IDS = 100  # bots, queues or campaigns in one filter
# Dates a report may name: far enough from datetime's limits that a week's bucket never overflows.
MIN_DATE, MAX_DATE = date(1970, 1, 1), date(9000, 12, 31)


@dataclass(frozen=True)
class ReportFilters:
    center: ContactCenter
    start: date
    end: date  # inclusive
    tz: ZoneInfo
    interval: str = DEFAULT_INTERVAL  # "15m" | "hour" | "day" | "week" | "none"
    virtual_agents: tuple[uuid.UUID, ...] = ()
    queues: tuple[uuid.UUID, ...] = ()
    campaigns: tuple[uuid.UUID, ...] = ()
    direction: str = ""  # "" | "inbound" | "outbound"

    @property
    def window(self) -> tuple[datetime, datetime]:
        """[local midnight of start, local midnight after end) in tz, as aware datetimes."""
        return (
            datetime.combine(self.start, time.min, tzinfo=self.tz),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=self.tz),
        )


def default_filters(center: ContactCenter, **overrides: Any) -> ReportFilters:
    """The last DEFAULT_DAYS days in the center's zone, by day (what an empty query string means)."""
    zone = ZoneInfo(center.timezone)
    today = timezone.now().astimezone(zone).date()
    values: dict[str, Any] = {
        "center": center,
        "start": today - timedelta(days=DEFAULT_DAYS - 1),
        "end": today,
        "tz": zone,
    }
    values.update(overrides)
    return ReportFilters(**values)


def cohort_q(filters: ReportFilters, prefix: str = "") -> Q:
    """The cohort's predicate, on CallRecord (`prefix` "" ) or across a relation ("call_record__")."""
    start, end = filters.window
    conditions: dict[str, Any] = {
        "contact_center": filters.center,
        "started_at__gte": start,
        "started_at__lt": end,
    }
    if filters.virtual_agents:
        conditions["virtual_agent_id__in"] = filters.virtual_agents
    if filters.queues:
        conditions["queue_id__in"] = filters.queues
    if filters.campaigns:
        conditions["campaign_ref__in"] = [str(pk) for pk in filters.campaigns]
    if filters.direction:
        conditions["direction"] = filters.direction
    return Q(**{prefix + name: value for name, value in conditions.items()})


def cohort(filters: ReportFilters) -> CallRecordQuerySet:
    """The calls a report counts (see the module docstring). Records without a start are never in it."""
    return CallRecord.objects.filter(cohort_q(filters))


class _Ids(forms.ModelMultipleChoiceField):
    """Repeatable ids of the center's objects. Unknown and another center's ids get the same error."""

    def __init__(self, label: str) -> None:
        super().__init__(queryset=VirtualAgent.objects.none(), required=False, label=label)

    def clean(self, value: Any) -> Any:
        if value and len(value) > MAX_IDS:
            raise forms.ValidationError(f"Choose at most {MAX_IDS}.", code="too_many")
        return super().clean(value)


class ReportFilterForm(forms.Form):
    """The query string of every report: `start`, `end` (dates, inclusive), `tz` (IANA; default
    the center's), `interval`, repeatable `virtual_agent` / `queue` / `campaign`, `direction`.

    Defaults: the last 7 days up to today in `tz`, by day. A range longer than MAX_DAYS[interval]
    is refused (e.g. 15-minute buckets over at most 31 days), as are dates outside 1970-9000.
    """

    start = forms.DateField(required=False)
    end = forms.DateField(required=False)
    tz = forms.CharField(required=False, max_length=64, label="Time zone")
    interval = forms.ChoiceField(required=False, choices=INTERVAL_CHOICES)
    virtual_agent = _Ids("Virtual agents")
    queue = _Ids("Queues")
    campaign = _Ids("Campaigns")
    direction = forms.ChoiceField(required=False, choices=[("", "Any"), *Direction.choices])
    # The virtual agents report only: the handoff context header to break handoffs down by.
    context_key = forms.RegexField(
        required=False,
        max_length=64,
        regex=r"^[A-Za-z0-9][A-Za-z0-9-]*$",
        error_messages={"invalid": "A header name: letters, digits and '-'."},
    )

    def __init__(self, *args: Any, center: ContactCenter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.center = center
        self.fields["virtual_agent"].queryset = VirtualAgent.objects.for_center(center).order_by("name")
        # A queue's label names its extension: joined, not fetched per option.
        self.fields["queue"].queryset = (
            Queue.objects.for_center(center).select_related("extension").order_by("name")
        )
        self.fields["campaign"].queryset = Campaign.objects.for_center(center).order_by("name")

    def clean_tz(self) -> ZoneInfo:
        name = self.cleaned_data.get("tz") or self.center.timezone
        try:
            validate_timezone(name)
        except forms.ValidationError:
            raise forms.ValidationError(
                "Choose an IANA time zone, e.g. Europe/London.", code="invalid_timezone"
            )
        return ZoneInfo(name)

    def clean_context_key(self) -> str:
        return self.cleaned_data.get("context_key") or DEFAULT_CONTEXT_KEY

    @property
    def context_header(self) -> str:
        """The context header of a valid form (default X-Reason)."""
        return self.cleaned_data["context_key"]

    def clean_interval(self) -> str:
        return self.cleaned_data.get("interval") or DEFAULT_INTERVAL

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        zone, interval = cleaned.get("tz"), cleaned.get("interval")
        if zone is None or interval is None or "start" in self.errors or "end" in self.errors:
            return cleaned
        for name in ("start", "end"):
            value = cleaned.get(name)
            if value is not None and not MIN_DATE <= value <= MAX_DATE:
                self.add_error(
                    name,
                    forms.ValidationError(
                        f"Choose a date between {MIN_DATE:%Y-%m-%d} and {MAX_DATE:%Y-%m-%d}.",
                        code="invalid_date_range",
                    ),
                )
                return cleaned
        today = timezone.now().astimezone(zone).date()
        start, end = cleaned.get("start"), cleaned.get("end")
        if end is None:
            # Alone, a start means the week from it (up to today when that comes first).
            end = today if start is None else max(start, min(start + timedelta(days=DEFAULT_DAYS - 1), today))
        if start is None:
            start = max(end - timedelta(days=DEFAULT_DAYS - 1), MIN_DATE)
        if start > end:
            self.add_error(
                "end",
                forms.ValidationError("The end date is before the start date.", code="invalid_date_range"),
            )
            return cleaned
        days = (end - start).days + 1
        if days > MAX_DAYS[interval]:
            self.add_error(
                "interval",
                forms.ValidationError(
                    f"Grouping by {dict(INTERVAL_CHOICES)[interval].lower()} covers at most "
                    f"{MAX_DAYS[interval]} days; this range has {days}. "
                    "Choose a shorter range or a longer grouping.",
                    code="range_too_long",
                ),
            )
            return cleaned
        cleaned["start"], cleaned["end"] = start, end
        return cleaned

    def filters(self) -> ReportFilters:
        """The filters of a valid form (ValueError for an invalid one: check is_valid() first)."""
        if not self.is_valid():
            raise ValueError(f"invalid report filters: {self.errors.as_json()}")
        data = self.cleaned_data
        return ReportFilters(
            center=self.center,
            start=data["start"],
            end=data["end"],
            tz=data["tz"],
            interval=data["interval"],
            virtual_agents=tuple(sorted(bot.pk for bot in data.get("virtual_agent") or ())),
            queues=tuple(sorted(queue.pk for queue in data.get("queue") or ())),
            campaigns=tuple(sorted(campaign.pk for campaign in data.get("campaign") or ())),
            direction=data.get("direction") or "",
        )


def filters_query(filters: ReportFilters) -> dict[str, list[str]]:
    """The query string (as lists of values) that ReportFilterForm parses back into `filters`."""
    query: dict[str, list[str]] = {
        "start": [filters.start.isoformat()],
        "end": [filters.end.isoformat()],
        "tz": [filters.tz.key],
        "interval": [filters.interval],
    }
    for name, ids in (
        ("virtual_agent", filters.virtual_agents),
        ("queue", filters.queues),
        ("campaign", filters.campaigns),
    ):
        if ids:
            query[name] = [str(pk) for pk in ids]
    if filters.direction:
        query["direction"] = [filters.direction]
    return query
