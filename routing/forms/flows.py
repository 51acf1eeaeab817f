from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms

from routing.flows.schema import DIGITS
from routing.forms.schedule import ScheduleForm
from routing.models import Flow
from voiso_byob.models import ContactCenter

NODE_TYPES = [
    ("menu", "Menu", "Play a prompt and branch on the key the caller presses."),
    ("route", "Route", "Send the call to a virtual agent, a queue, a person or a number."),
    ("play", "Play", "Read a message or play a recording, then go on."),
    ("schedule", "Schedule", "Branch on opening hours and holidays in the contact center's timezone."),
    ("condition", "Condition", "Branch on the caller's number or country, or on a variable."),
    ("http_request", "HTTP request", "Ask your system (GET/POST, ≤ 2 s) and keep its JSON answer."),
    ("voicemail", "Voicemail", "Let the caller leave a message."),
    ("hangup", "Hang up", "End the call."),
    ("start", "Start", "Where every call begins; a flow has exactly one."),
]
MAX_TEST_DIGITS = 20


class FlowForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="e.g. “Main line”. Unique in this contact center.")


class FlowSettingsForm(ScheduleForm):
    """Name, business hours (the whole flow's opening hours) and the flow to run outside them."""

    name = forms.CharField(max_length=100)

    def __init__(self, *args: Any, flow: Flow, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["after_hours_flow"] = forms.ModelChoiceField(
            queryset=Flow.objects.for_center(flow.contact_center).exclude(pk=flow.pk).only("id", "name"),
            required=False,
            label="Outside business hours, run",
            empty_label="— this flow anyway —",
            help_text="Used only when business hours are set and that flow is published.",
        )
        self.fields["holidays"].label = "Holidays (closed all day)"
        self.order_fields(
            ["name", *(name for name in self.fields if name not in ("name", "after_hours_flow"))]
        )


class AddNodeForm(forms.Form):
    type = forms.ChoiceField(
        choices=[(value, label) for value, label, _ in NODE_TYPES], widget=forms.RadioSelect
    )
    label = forms.CharField(max_length=100, required=False, help_text="Optional; shown on the diagram.")
    connect_from = forms.ChoiceField(
        label="Connect from",
        required=False,
        help_text="The branch that leads to the new node (it replaces where that branch went).",
    )

    def __init__(self, *args: Any, slots: list[tuple[str, str]], has_start: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["connect_from"].choices = [("", "— nothing yet —"), *slots]
        if has_start:
            self.fields["type"].choices = [
                choice for choice in self.fields["type"].choices if choice[0] != "start"
            ]

    def cards(self) -> list[dict[str, str]]:
        """The type picker: the types that can be added here, each with what it does."""
        allowed = {value for value, _ in self.fields["type"].choices}
        return [
            {"value": value, "label": label, "note": note}
            for value, label, note in NODE_TYPES
            if value in allowed
        ]


class TestCallForm(forms.Form):
    """A test call: who calls, when (wall time in the contact center's timezone), which keys."""

    caller = forms.CharField(max_length=32, help_text="The caller's number, e.g. +442079460018.")
    at = forms.CharField(
        label="Date and time",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    digits = forms.CharField(
        label="Keys pressed",
        required=False,
        max_length=100,
        help_text="One per menu, in order, separated by commas, e.g. 1, 2. Leave one empty for silence.",
    )
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args: Any, center: ContactCenter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = ZoneInfo(center.timezone)
        self.fields["at"].help_text = f"In the contact center's timezone ({center.timezone})."

    def clean_at(self) -> datetime:
        text = self.cleaned_data["at"].strip()
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise forms.ValidationError("Enter a date and time, e.g. 2025-06-02T10:30.") from None
        return at if at.tzinfo is not None else at.replace(tzinfo=self.zone)

    def clean_digits(self) -> list[str]:
        text = self.cleaned_data["digits"].strip()
        if not text:
            return []
        keys = [part.strip() for part in text.split(",")]
        if len(keys) > MAX_TEST_DIGITS:
            raise forms.ValidationError(f"At most {MAX_TEST_DIGITS} menus in one test call.")
        for key in keys:
            if key and (len(key) != 1 or key not in DIGITS):
                raise forms.ValidationError(f"“{key}” is not a key; use 0-9, * or #, one per menu.")
        return keys
