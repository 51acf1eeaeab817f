from __future__ import annotations

import re
from typing import Any

from django import forms

from voiso_byob.models import ContactCenter, NumberType

_SEPARATORS = re.compile(r"[\s,;]+")


class ExternalTransfersForm(forms.Form):
    """The center's toll-fraud guard on handoffs to external numbers (services.update_external_transfers)."""

    is_allowed = forms.BooleanField(
        required=False,
        label="Allow handoffs to external numbers",
        help_text="Off: bots' REFERs to phone numbers and flows' external routes are all refused.",
    )
    allowed_destinations = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        label="Allowed destinations",
        help_text="Countries (GB, US) and number prefixes (+4420, +1212), separated by spaces or commas. "
        "Empty: every country.",
    )
    denied_number_types = forms.MultipleChoiceField(
        required=False,
        choices=NumberType.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Never dial these kinds of number",
        help_text="Checked kinds are refused even inside an allowed destination (by libphonenumber's "
        "number plans).",
    )
    is_only_bot_targets = forms.BooleanField(
        required=False,
        label="Bots may hand off only to the numbers configured as their handoff targets",
        help_text="A bot's REFER to any other number is refused, even if it is allowed above.",
    )

    def __init__(self, *args: Any, center: ContactCenter, is_read_only: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "is_allowed": center.allows_external_transfers,
                "allowed_destinations": " ".join(center.allowed_destinations),
                "denied_number_types": center.denied_number_types,
                "is_only_bot_targets": center.external_only_bot_targets,
            },
        )
        super().__init__(*args, **kwargs)
        if is_read_only:
            for field in self.fields.values():
                field.disabled = True

    def clean_allowed_destinations(self) -> list[str]:
        return [entry for entry in _SEPARATORS.split(self.cleaned_data["allowed_destinations"]) if entry]
