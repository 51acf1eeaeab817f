"""The menu node's form: a prompt and the keys the caller may press, in order."""

from __future__ import annotations

from typing import Any

from django import forms

from routing.flows.schema import DIGITS
from routing.forms.nodes import NOT_CONNECTED, Choices, NodeForm

# The order keys sit on a phone pad.
KEYPAD = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")


class MenuOptionForm(forms.Form):
    digit = forms.ChoiceField(
        label="Key", choices=[("", "—"), *[(key, key) for key in KEYPAD]], required=False
    )
    target = forms.ChoiceField(label="Go to", required=False)

    def __init__(self, *args: Any, targets: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [("", NOT_CONNECTED), *targets]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("target") and not cleaned.get("digit"):
            self.add_error("digit", "Choose the key the caller presses.")
        return cleaned


class BaseMenuOptionFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        seen: set[str] = set()
        for form in self.forms:
            digit = form.cleaned_data.get("digit")
            if digit in seen:
                raise forms.ValidationError(f"Key {digit} is used twice; each key goes to one place.")
            if digit:
                seen.add(digit)


MenuOptionFormSet = forms.formset_factory(
    MenuOptionForm, formset=BaseMenuOptionFormSet, extra=1, max_num=len(KEYPAD), validate_max=True
)


class MenuForm(NodeForm):
    """A prompt and the keys the caller may press; options can be added, removed and reordered.

    Reordering and removing are submit buttons (`row_action` = "up:2", "down:2", "remove:2",
    the row's index), so they work without JavaScript and save the rest of the form with them.
    """

    type = "menu"
    branch_names = ("invalid", "timeout")
    prompt = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Read to the caller, e.g. “For sales press 1, for support press 2.”",
    )
    timeout_seconds = forms.IntegerField(
        label="Wait for a key (seconds)", min_value=1, max_value=30, required=False, initial=5
    )
    max_tries = forms.IntegerField(
        label="Tries",
        min_value=1,
        max_value=5,
        required=False,
        initial=3,
        help_text="How often the prompt is played before the invalid or timeout branch.",
    )

    def __init__(self, data: Any = None, *, node: dict[str, Any], targets: Choices, **kwargs: Any) -> None:
        super().__init__(data, node=node, targets=targets, **kwargs)
        branches = node.get("next") if isinstance(node.get("next"), dict) else {}
        rows = [{"digit": key, "target": target or ""} for key, target in branches.items() if key in DIGITS]
        self.options = MenuOptionFormSet(
            data, prefix="option", initial=rows, form_kwargs={"targets": targets}
        )

    def initial_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {
            "prompt": config.get("prompt", ""),
            "timeout_seconds": config.get("timeout_seconds", 5),
            "max_tries": config.get("max_tries", 3),
        }

    def is_valid(self) -> bool:
        is_valid = super().is_valid()
        return self.options.is_valid() and is_valid

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        prompt = self.cleaned_data["prompt"].strip()
        if prompt:
            config["prompt"] = prompt
        for key in ("timeout_seconds", "max_tries"):
            if self.cleaned_data.get(key) is not None:
                config[key] = self.cleaned_data[key]
        return config

    def rows(self) -> list[tuple[str, str | None]]:
        """The options in order, with the row action of the button that was pressed applied."""
        rows = [
            (index, form.cleaned_data["digit"], form.cleaned_data.get("target") or None)
            for index, form in enumerate(self.options.forms)
            if form.cleaned_data.get("digit")
        ]
        action, _, index_text = str(self.data.get("row_action", "")).partition(":")
        at = next((i for i, row in enumerate(rows) if str(row[0]) == index_text), None)
        if at is not None:
            if action == "remove":
                del rows[at]
            elif action == "up" and at > 0:
                rows[at - 1], rows[at] = rows[at], rows[at - 1]
            elif action == "down" and at < len(rows) - 1:
                rows[at + 1], rows[at] = rows[at], rows[at + 1]
        return [(digit, target) for _, digit, target in rows]

    def branches(self) -> dict[str, str]:
        # A key without a target stays in the menu, not connected: the validator says so.
        return {**dict(self.rows()), **super().branches()}  # type: ignore[dict-item]

    def disable(self) -> None:
        super().disable()
        for form in self.options.forms:
            for field in form.fields.values():
                field.disabled = True
