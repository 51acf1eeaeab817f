"""The calls filter: one form for the calls page, its CSV export and the calls API's query string."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django import forms

from campaigns.models import Campaign
from reporting.models import CALL_ID_MAX, Direction
from reporting.queries import (
    MAX_CURSOR_LENGTH,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    CallFilters,
    Cursor,
    InvalidCursor,
    date_range_problem,
)
from reporting.reports import predicates
from routing.models import Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter, validate_timezone

HANDED_OFF_CHOICES = [("", "Any"), ("true", "Handed off"), ("false", "Not handed off")]
OUTCOME_CHOICES = [
    ("", "Any"),
    ("reached_bot", "Reached a bot"),
    ("contained", "Contained"),
    ("handed_off", "Handed off"),
    ("abandoned_in_bot", "Abandoned in bot"),
    ("in_bot", "With a bot now"),
]
QUEUE_RESULT_CHOICES = [
    ("", "Any"),
    ("offered", "Entered a queue"),
    ("answered", "Answered"),
    ("abandoned", "Abandoned"),
    ("waiting", "Waiting now"),
    ("within_service_level", "Answered within service level"),
]
HANDOFF_CHOICES = [("", "Any"), ("requested", "Requested"), ("completed", "Completed"), ("failed", "Failed")]
ATTEMPT_CHOICES = [
    ("", "Any"),
    ("dialled", "Dialler calls"),
    ("connected", "Connected"),
    ("completed", "Completed"),
    ("busy", "Busy"),
    ("no_answer", "No answer"),
    ("machine", "Machine"),
    ("failed", "Failed"),
    ("ringing", "Ringing now"),
    ("dropped", "Dropped"),
    ("handed_off", "Handed off"),
]
# Each choice is a predicate the reports count with: the lists and the figures cannot drift.
assert {value for value, _ in OUTCOME_CHOICES if value} == set(predicates.OUTCOMES)
assert {value for value, _ in QUEUE_RESULT_CHOICES if value} == set(predicates.QUEUE_RESULTS)
assert {value for value, _ in HANDOFF_CHOICES if value} == set(predicates.HANDOFF_RESULTS)
assert {value for value, _ in ATTEMPT_CHOICES if value} == set(predicates.ATTEMPT_RESULTS)
MAX_IDS = 100


def _to_bool(value: str) -> bool:
    return value == "true"


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%d")


def _with_any(rows: Any) -> Any:
    """Lazy options, read once (a select's rendering asks for its choices more than once)."""
    read: list[tuple[str, str]] = []

    def options() -> list[tuple[str, str]]:
        if not read:
            read.extend([("", "Any"), *((str(pk), label) for pk, label in rows())])
        return read

    return options


class RepeatableSelect(forms.Select):
    """A one-choice select on the page, but it reads every value of a repeated parameter
    (`?queue=a&queue=b`: a report's drill-down over several queues)."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        getlist = getattr(data, "getlist", None)
        return getlist(name) if getlist is not None else data.get(name)


class RepeatableIds(forms.ModelMultipleChoiceField):
    """Ids of the center's objects, repeatable; unknown and another center's get the same error."""

    def __init__(self, label: str) -> None:
        super().__init__(
            queryset=VirtualAgent.objects.none(), required=False, label=label, widget=RepeatableSelect
        )

    def clean(self, value: Any) -> Any:
        value = [item for item in (value or []) if item != ""]  # the select's "Any"
        if len(value) > MAX_IDS:
            raise forms.ValidationError(f"Choose at most {MAX_IDS}.", code="too_many")
        return super().clean(value)


class CallFilterForm(forms.Form):
    date_from = forms.DateField(required=False, label="From", widget=DateInput())
    date_to = forms.DateField(required=False, label="To", widget=DateInput())
    direction = forms.ChoiceField(required=False, choices=[("", "Any"), *Direction.choices])
    # A report's drill-down: its zone and a bucket's [start, before) (ISO 8601 with an offset).
    tz = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    started_from = forms.DateTimeField(required=False, widget=forms.HiddenInput)
    started_before = forms.DateTimeField(required=False, widget=forms.HiddenInput)
    direction = forms.ChoiceField(required=False, choices=[("", "Any"), *Direction.choices])
    virtual_agent = RepeatableIds("Virtual agent")
    queue = RepeatableIds("Queue")
    campaign = RepeatableIds("Campaign")
    handed_off = forms.TypedChoiceField(
        required=False, choices=HANDED_OFF_CHOICES, coerce=_to_bool, empty_value=None, label="Handoff"
    )
    outcome = forms.ChoiceField(required=False, choices=OUTCOME_CHOICES, label="Bot outcome")
    queue_result = forms.ChoiceField(required=False, choices=QUEUE_RESULT_CHOICES, label="In queue")
    handoff = forms.ChoiceField(required=False, choices=HANDOFF_CHOICES, label="Handoff result")
    attempt = forms.ChoiceField(required=False, choices=ATTEMPT_CHOICES, label="Dialler")
    number = forms.CharField(
        required=False,
        max_length=CALL_ID_MAX,
        label="Number contains",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "From or to", "autocomplete": "off"}),
    )
    # Paging, not filtering: the opaque keyset cursor and (API) the page size.
    after = forms.CharField(required=False, max_length=MAX_CURSOR_LENGTH, widget=forms.HiddenInput)
    page_size = forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)

    def __init__(self, *args: Any, center: ContactCenter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.center = center
        self.fields["virtual_agent"].queryset = VirtualAgent.objects.for_center(center).order_by("name")
        self.fields["queue"].queryset = Queue.objects.for_center(center).order_by("name")
        self.fields["campaign"].queryset = Campaign.objects.for_center(center).order_by("name")
        # The selects' options, read only when the page renders (the API never does): one query
        # each (a ModelChoiceIterator counts first, and a queue's label fetches its extension).
        bots, queues, campaigns = (
            self.fields[name].queryset for name in ("virtual_agent", "queue", "campaign")
        )
        options = {
            "virtual_agent": lambda: bots.values_list("pk", "name"),
            "queue": lambda: (
                (pk, f"{name} ({digits})")
                for pk, name, digits in queues.values_list("pk", "name", "extension__digits")
            ),
            "campaign": lambda: campaigns.values_list("pk", "name"),
        }
        for name, rows in options.items():
            self.fields[name].widget.choices = _with_any(rows)

    def clean_tz(self) -> ZoneInfo | None:
        name = self.cleaned_data.get("tz") or ""
        if not name:
            return None
        try:
            validate_timezone(name)
        except forms.ValidationError:
            raise forms.ValidationError(
                "Choose an IANA time zone, e.g. Europe/London.", code="invalid_timezone"
            )
        return ZoneInfo(name)

    @property
    def zone(self) -> ZoneInfo:
        """The zone the list's dates and times are in: the form's tz, else the center's."""
        zone = self.cleaned_data.get("tz") if hasattr(self, "cleaned_data") else None
        return zone or ZoneInfo(self.center.timezone)

    def clean_after(self) -> Cursor | None:
        token = self.cleaned_data.get("after") or ""
        if not token:
            return None
        try:
            return Cursor.decode(token)
        except InvalidCursor as exc:
            raise forms.ValidationError(str(exc), code="invalid_cursor")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        problem = date_range_problem(cleaned.get("date_from"), cleaned.get("date_to"))
        if problem is not None:
            field, message = problem
            self.add_error(field, forms.ValidationError(message, code="invalid_date_range"))
        start, before = cleaned.get("started_from"), cleaned.get("started_before")
        if start is not None and before is not None and start >= before:
            self.add_error(
                "started_before",
                forms.ValidationError(
                    "The end of the time window is not after its start.", code="invalid_date_range"
                ),
            )
        return cleaned

    def filters(self) -> CallFilters:
        """The filters of a valid form."""
        data = self.cleaned_data
        return CallFilters(
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            tz=data.get("tz"),
            started_from=data.get("started_from"),
            started_before=data.get("started_before"),
            direction=data.get("direction") or "",
            virtual_agents=tuple(sorted(bot.pk for bot in data.get("virtual_agent") or ())),
            queues=tuple(sorted(queue.pk for queue in data.get("queue") or ())),
            campaigns=tuple(sorted(campaign.pk for campaign in data.get("campaign") or ())),
            is_handed_off=data.get("handed_off"),
            outcome=data.get("outcome") or "",
            queue_result=data.get("queue_result") or "",
            handoff=data.get("handoff") or "",
            attempt=data.get("attempt") or "",
            number=data.get("number") or "",
        )

    @property
    def cursor(self) -> Cursor | None:
        return self.cleaned_data.get("after")

    @property
    def rows_per_page(self) -> int:
        return self.cleaned_data.get("page_size") or PAGE_SIZE
