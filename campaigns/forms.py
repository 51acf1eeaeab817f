"""Portal forms for campaigns, their lead files and the do-not-call lists.

Forms check shape only; the rules (names unique per center, bots of this center, hours that
parse) are the services' and come back as DomainError onto the field they name.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms

from campaigns.models import DEFAULT_RETRY_MINUTES, RETRYABLE_OUTCOMES, WEEKDAYS, Campaign, LeadStatus
from routing.models import PhoneNumber, Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter

DAY_LABELS = dict(zip(WEEKDAYS, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), strict=True))
RETRY_LABELS = {
    "busy": "Retry after busy",
    "no_answer": "Retry after no answer",
    "machine": "Retry after answering machine",
    "failed": "Retry after failed",
}
# Blank range rows under the filled ones, so a range can be added without JavaScript.
EXTRA_HOURS_ROWS = 2


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=100)
    virtual_agents = forms.ModelMultipleChoiceField(
        queryset=VirtualAgent.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label="Virtual agents",
        help_text="The bots that take the calls; their free capacity paces the dialing.",
    )
    handoff_queue = forms.ModelChoiceField(
        queryset=Queue.objects.none(),
        required=False,
        empty_label="None",
        label="Handoff queue",
        help_text="Where the bots hand callers to people.",
    )
    handoff_queue_threshold = forms.IntegerField(
        min_value=1,
        max_value=1000,
        initial=5,
        label="Pause when waiting callers exceed",
        help_text="The campaign pauses itself while more handed-off callers wait in the queue.",
    )
    caller_ids = forms.ModelMultipleChoiceField(
        queryset=PhoneNumber.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Caller-ID numbers",
    )
    timezone = forms.ChoiceField(
        required=False,
        label="Time zone",
        help_text="For leads whose number gives no time zone; the others are called in their own.",
    )
    max_attempts = forms.IntegerField(min_value=1, max_value=20, initial=3, label="Max attempts per lead")
    priority = forms.IntegerField(
        min_value=1, max_value=1000, initial=100, help_text="Among the center's campaigns; lower first."
    )

    def __init__(self, *args: Any, center: ContactCenter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["virtual_agents"].queryset = VirtualAgent.objects.for_center(center).order_by("name")  # type: ignore[attr-defined]
        self.fields["handoff_queue"].queryset = Queue.objects.for_center(center).order_by("name")  # type: ignore[attr-defined]
        self.fields["caller_ids"].queryset = PhoneNumber.objects.filter(contact_center=center).order_by(
            "number"
        )  # type: ignore[attr-defined]
        self.fields["timezone"].choices = [  # type: ignore[attr-defined]
            ("", f"The center's ({center.timezone})"),
            *((zone, zone) for zone in sorted(zoneinfo.available_timezones())),
        ]
        for outcome in RETRYABLE_OUTCOMES:
            self.fields[f"retry_{outcome}"] = forms.IntegerField(
                min_value=1,
                max_value=10_080,
                initial=DEFAULT_RETRY_MINUTES[outcome],
                label=RETRY_LABELS[outcome],
                help_text="Minutes.",
            )

    @staticmethod
    def initial_for(campaign: Campaign) -> dict[str, Any]:
        return {
            "name": campaign.name,
            "virtual_agents": list(campaign.virtual_agents.all()),
            "handoff_queue": campaign.handoff_queue,
            "handoff_queue_threshold": campaign.handoff_queue_threshold,
            "caller_ids": list(campaign.caller_ids.all()),
            "timezone": campaign.timezone,
            "max_attempts": campaign.max_attempts,
            "priority": campaign.priority,
            **{f"retry_{outcome}": campaign.retry_delay_minutes(outcome) for outcome in RETRYABLE_OUTCOMES},
        }

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "virtual_agents": list(data["virtual_agents"]),
            "handoff_queue": data["handoff_queue"],
            "handoff_queue_threshold": data["handoff_queue_threshold"],
            "caller_ids": list(data["caller_ids"]),
            "timezone_name": data["timezone"],
            "max_attempts": data["max_attempts"],
            "retry_minutes": {outcome: data[f"retry_{outcome}"] for outcome in RETRYABLE_OUTCOMES},
            "priority": data["priority"],
        }


class CallingHoursForm(forms.Form):
    """One range: the days it applies to, from start to end (the lead's local time)."""

    days = forms.MultipleChoiceField(
        choices=list(DAY_LABELS.items()), widget=forms.CheckboxSelectMultiple, required=False
    )
    start = forms.TimeField(required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    end = forms.TimeField(required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        given = [bool(data.get("days")), data.get("start") is not None, data.get("end") is not None]
        if any(given) and not all(given):
            raise forms.ValidationError("Choose the days and both times, or leave the whole row empty.")
        if all(given) and data["start"] >= data["end"]:
            raise forms.ValidationError("The range must end after it starts.")
        return data

    def value(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if not data.get("days"):
            return None
        days = [day for day in WEEKDAYS if day in data["days"]]
        return {"days": days, "start": data["start"].strftime("%H:%M"), "end": data["end"].strftime("%H:%M")}


class BaseCallingHoursFormSet(forms.BaseFormSet):
    def ranges(self) -> list[dict[str, Any]]:
        return [value for form in self.forms if (value := form.value()) is not None]


CallingHoursFormSet = forms.formset_factory(
    CallingHoursForm, formset=BaseCallingHoursFormSet, extra=EXTRA_HOURS_ROWS, max_num=28, validate_max=True
)


def calling_hours_formset(data: Any = None, *, ranges: list[dict[str, Any]] | None = None) -> Any:
    initial = [
        {"days": item.get("days", []), "start": item.get("start"), "end": item.get("end")}
        for item in ranges or []
    ]
    return CallingHoursFormSet(data, initial=initial, prefix="hours")


class LeadImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Columns Number (required), Name, Source, Priority (1 to 1000, lower first) and any X-… "
        "column, sent to the bot as a SIP header.",
    )


class LeadFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "All statuses"), *LeadStatus.choices], required=False)
    q = forms.CharField(required=False, max_length=150, label="Search")


class DoNotCallForm(forms.Form):
    phone = forms.CharField(max_length=32, label="Number")
    reason = forms.CharField(max_length=255, required=False)


class DoNotCallImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file", help_text="A Number column and optionally a Reason column; up to 10,000 rows."
    )
