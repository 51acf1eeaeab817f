"""One form per node type: each reads a node of the graph and writes it back.

The forms check what a person can get wrong while typing (a time range that is not
HH:MM-HH:MM, a number that is not a phone number, a key used twice); what makes a draft
unpublishable (an empty prompt, a branch not connected) is left to the flow validator,
whose problems are shown on the diagram, so an unfinished node can still be saved.
Menus are in `menus.py`, routes in `routes.py`; `routing.forms.NODE_FORMS` lists them all.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django import forms

from routing.forms.schedule import ScheduleForm
from voiso_byob.errors import DomainError
from voiso_byob.models import ContactCenter
from voiso_byob.phone import normalise_e164

Choices = list[tuple[str, Any]]

NOT_CONNECTED = "— not connected —"
BRANCH_LABELS = {
    "next": "Then go to",
    "open": "When open, go to",
    "closed": "When closed, go to",
    "holiday": "On a holiday, go to",
    "true": "When true, go to",
    "false": "When false, go to",
    "done": "When the request succeeds, go to",
    "error": "When it fails, go to",
    "busy": "When the target is busy or disabled, go to",
    "invalid": "After the last wrong key, go to",
    "timeout": "After the last silence, go to",
}
BRANCH_HELP = {
    "holiday": "Optional: a holiday takes the closed branch when this is not connected.",
    "busy": "Optional: a busy virtual agent otherwise goes to its default handoff.",
}


def split_list(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,;]+", text or "") if part]


def e164(value: str, field: str) -> str:
    """The number in E.164, or the reason it is not one as a form error."""
    try:
        return normalise_e164(value, field=field)
    except DomainError as exc:
        raise forms.ValidationError(exc.message) from None


class NodeForm(forms.Form):
    """The fields every node has: its label and its fixed branches (a target node each)."""

    type: ClassVar[str]
    branch_names: ClassVar[tuple[str, ...]] = ()
    # Fields that apply to one choice of another field only (see ConditionForm): field → choice.
    shown_when: ClassVar[dict[str, str]] = {}

    label = forms.CharField(
        max_length=100, required=False, help_text="Shown on the diagram instead of the node id."
    )

    def __init__(
        self,
        data: Any = None,
        *,
        node: dict[str, Any],
        targets: Choices,
        center: ContactCenter,
        **kwargs: Any,
    ) -> None:
        config = node.get("config") if isinstance(node.get("config"), dict) else {}
        branches = node.get("next") if isinstance(node.get("next"), dict) else {}
        initial = {"label": node.get("label") or "", **self.initial_config(config)}
        for name in self.branch_names:
            initial[f"branch_{name}"] = branches.get(name) or ""
        super().__init__(data, initial=initial, **kwargs)
        self.center = center
        self.targets = targets
        for name in self.branch_names:
            self.fields[f"branch_{name}"] = forms.ChoiceField(
                label=BRANCH_LABELS[name],
                choices=[("", NOT_CONNECTED), *targets],
                required=False,
                help_text=BRANCH_HELP.get(name, ""),
            )
        for name, when in self.shown_when.items():
            self.fields[name].shown_when = when  # type: ignore[attr-defined]

    def setting_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if not name.startswith("branch_")]

    def branch_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("branch_")]

    def initial_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {}

    def config(self) -> dict[str, Any]:
        return {}

    def branches(self) -> dict[str, str]:
        return {
            name: self.cleaned_data[f"branch_{name}"]
            for name in self.branch_names
            if self.cleaned_data.get(f"branch_{name}")
        }

    def node(self) -> dict[str, Any]:
        """The node as the graph stores it."""
        node: dict[str, Any] = {"type": self.type}
        label = (self.cleaned_data.get("label") or "").strip()
        if label:
            node["label"] = label
        node["config"] = self.config()
        node["next"] = self.branches()
        return node

    def disable(self) -> None:
        """Read-only: every field shown, none editable (supervisors, old versions)."""
        for field in self.fields.values():
            field.disabled = True


class StartForm(NodeForm):
    type = "start"
    branch_names = ("next",)


class HangupForm(NodeForm):
    type = "hangup"


class VoicemailForm(NodeForm):
    type = "voicemail"
    greeting = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Read to the caller before the beep; empty for the default greeting.",
    )

    def initial_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {"greeting": config.get("greeting", "")}

    def config(self) -> dict[str, Any]:
        greeting = self.cleaned_data.get("greeting", "").strip()
        return {"greeting": greeting} if greeting else {}


class PlayForm(NodeForm):
    type = "play"
    branch_names = ("next",)
    text = forms.CharField(
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Read to the caller by text-to-speech…",
    )
    url = forms.CharField(
        max_length=2048, required=False, label="Or a recording's URL", help_text="…or an http(s) audio file."
    )

    def initial_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {"text": config.get("text", ""), "url": config.get("url", "")}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if (cleaned.get("text") or "").strip() and (cleaned.get("url") or "").strip():
            self.add_error("url", "Play either the text or the recording, not both.")
        return cleaned

    def config(self) -> dict[str, Any]:
        text, url = self.cleaned_data["text"].strip(), self.cleaned_data["url"].strip()
        if text:
            return {"text": text}
        return {"url": url} if url else {}


class ScheduleNodeForm(NodeForm, ScheduleForm):
    type = "schedule"
    branch_names = ("open", "closed", "holiday")

    def initial_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return self.initial_schedule(config)

    def config(self) -> dict[str, Any]:
        return self.cleaned_data["schedule"]


CONDITION_KINDS = [
    ("caller_prefix", "The caller's number starts with…"),
    ("caller_country", "The caller is from a country…"),
    ("caller_in_list", "The caller is in a list of numbers"),
    ("variable", "A variable compares…"),
]
OPERATOR_CHOICES = [
    ("eq", "equals"),
    ("ne", "does not equal"),
    ("contains", "contains"),
    ("gt", "is greater than (numbers)"),
    ("lt", "is less than (numbers)"),
    ("exists", "is set"),
]


class ConditionForm(NodeForm):
    type = "condition"
    branch_names = ("true", "false")
    kind = forms.ChoiceField(label="Check", choices=CONDITION_KINDS)
    prefixes = forms.CharField(
        required=False, max_length=2000, help_text="e.g. +44, +353 (separated by commas or spaces)."
    )
    countries = forms.CharField(
        required=False, max_length=1000, help_text="Region codes, e.g. GB, IE (commas or spaces)."
    )
    numbers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="E.164 numbers, one per line (e.g. a VIP list).",
    )
    name = forms.CharField(
        label="Variable", required=False, max_length=105, help_text="e.g. crm.tier, or call.caller."
    )
    operator = forms.ChoiceField(choices=OPERATOR_CHOICES, required=False)
    value = forms.CharField(required=False, max_length=256)
    # Which kind each field belongs to; the template hides the others (CSS :has).
    shown_when: ClassVar[dict[str, str]] = {
        "prefixes": "caller_prefix",
        "countries": "caller_country",
        "numbers": "caller_in_list",
        "name": "variable",
        "operator": "variable",
        "value": "variable",
    }

    def initial_config(self, config: dict[str, Any]) -> dict[str, Any]:
        def listed(key: str, separator: str) -> str:
            value = config.get(key)
            return separator.join(map(str, value)) if isinstance(value, list) else ""

        return {
            "kind": config.get("kind", "caller_prefix"),
            "prefixes": listed("prefixes", ", "),
            "countries": listed("countries", ", "),
            "numbers": listed("numbers", "\n"),
            "name": config.get("name", ""),
            "operator": config.get("operator", "eq"),
            "value": config.get("value", ""),
        }

    def clean_countries(self) -> list[str]:
        return [code.upper() for code in split_list(self.cleaned_data["countries"])]

    def clean_numbers(self) -> list[str]:
        # Lines, not words: "+44 20 7946 0018" is one number.
        lines = re.split(r"[\n,;]+", self.cleaned_data["numbers"])
        return [e164(line, "numbers") for line in lines if line.strip()]

    def config(self) -> dict[str, Any]:
        data = self.cleaned_data
        kind = data["kind"]
        config: dict[str, Any] = {"kind": kind}
        if kind == "caller_prefix" and split_list(data["prefixes"]):
            config["prefixes"] = split_list(data["prefixes"])
        elif kind == "caller_country" and data["countries"]:
            config["countries"] = data["countries"]
        elif kind == "caller_in_list" and data["numbers"]:
            config["numbers"] = data["numbers"]
        elif kind == "variable":
            if data["name"].strip():
                config["name"] = data["name"].strip()
            config["operator"] = data["operator"] or "eq"
            if config["operator"] != "exists":
                config["value"] = data["value"]
        return config


class HttpRequestForm(NodeForm):
    type = "http_request"
    branch_names = ("done", "error")
    method = forms.ChoiceField(choices=[("GET", "GET"), ("POST", "POST")], initial="GET")
    url = forms.CharField(
        label="URL",
        max_length=2048,
        required=False,
        help_text="http:// or https://; private and loopback addresses are refused when the call runs.",
    )
    timeout_seconds = forms.FloatField(
        label="Timeout (seconds)", min_value=0.1, max_value=2.0, required=False, initial=2.0
    )
    save_as = forms.CharField(
        label="Save the answer as",
        max_length=40,
        required=False,
        help_text="The JSON answer's fields become variables, e.g. crm → crm.tier.",
    )

    def initial_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {
            "method": config.get("method", "GET"),
            "url": config.get("url", ""),
            "timeout_seconds": config.get("timeout_seconds", 2.0),
            "save_as": config.get("save_as", ""),
        }

    def config(self) -> dict[str, Any]:
        data = self.cleaned_data
        config: dict[str, Any] = {"method": data["method"]}
        if data["url"].strip():
            config["url"] = data["url"].strip()
        if data.get("timeout_seconds") is not None:
            config["timeout_seconds"] = data["timeout_seconds"]
        if data["save_as"].strip():
            config["save_as"] = data["save_as"].strip()
        return config
