"""The calls filter: one form for the calls page, its CSV export and the calls API's query string."""

from __future__ import annotations

from typing import Any

from django import forms

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
from routing.models import Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter

HANDED_OFF_CHOICES = [("", "Any"), ("true", "Handed off"), ("false", "Not handed off")]


def _to_bool(value: str) -> bool:
    return value == "true"


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%d")


class CallFilterForm(forms.Form):
    date_from = forms.DateField(required=False, label="From", widget=DateInput())
    date_to = forms.DateField(required=False, label="To", widget=DateInput())
    direction = forms.ChoiceField(required=False, choices=[("", "Any"), *Direction.choices])
    virtual_agent = forms.ModelChoiceField(
        required=False, queryset=VirtualAgent.objects.none(), empty_label="Any", label="Virtual agent"
    )
    queue = forms.ModelChoiceField(required=False, queryset=Queue.objects.none(), empty_label="Any")
    handed_off = forms.TypedChoiceField(
        required=False, choices=HANDED_OFF_CHOICES, coerce=_to_bool, empty_value=None, label="Handoff"
    )
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
        return cleaned

    def filters(self) -> CallFilters:
        """The filters of a valid form."""
        data = self.cleaned_data
        return CallFilters(
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            direction=data.get("direction") or "",
            virtual_agent=data.get("virtual_agent"),
            queue=data.get("queue"),
            is_handed_off=data.get("handed_off"),
            number=data.get("number") or "",
        )

    @property
    def cursor(self) -> Cursor | None:
        return self.cleaned_data.get("after")

    @property
    def rows_per_page(self) -> int:
        return self.cleaned_data.get("page_size") or PAGE_SIZE
