from __future__ import annotations

from django import forms

from routing.models import Flow
from voiso_byob.models import ContactCenter


class PhoneNumberForm(forms.Form):
    """Add a number (E.164, label, flow) or, with `is_new=False`, change its label and flow."""

    number = forms.CharField(
        max_length=32,
        help_text="International format, e.g. +442079460018. Unique across all contact centers.",
    )
    label = forms.CharField(max_length=100, required=False, help_text="e.g. “UK sales line”.")

    def __init__(self, *args: object, center: ContactCenter, is_new: bool = True, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if is_new:
            self.fields["number"].widget.attrs.update({"inputmode": "tel", "autocomplete": "off"})
        else:
            del self.fields["number"]
        self.fields["flow"] = forms.ModelChoiceField(
            queryset=Flow.objects.for_center(center).only("id", "name"),
            required=False,
            empty_label="— no flow (calls are refused) —",
            help_text="The flow this number runs. Only its published version takes calls.",
        )
