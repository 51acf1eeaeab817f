"""The route node's form: where the call goes, from this contact center's targets."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms

from routing.forms.nodes import Choices, NodeForm, e164
from routing.models import Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter, Membership

# What a route's target (and a dial's destination) is called on the page; the same words as the
# reporting TargetType choices, which routing cannot import.
TARGET_KIND_LABELS = {
    "virtual_agent": "Virtual agent",
    "queue": "Queue",
    "user": "User",
    "external": "External number",
}


def route_target_choices(center: ContactCenter) -> tuple[Choices, dict[tuple[str, str], str]]:
    """The route targets of a center, grouped for a select, and their names by (kind, id)."""
    names: dict[tuple[str, str], str] = {}
    agents = [
        (f"virtual_agent:{agent.pk}", agent.name)
        for agent in VirtualAgent.objects.for_center(center).only("id", "name").order_by("name")
    ]
    queues = [
        (f"queue:{queue.pk}", f"{queue.name} · {queue.extension.digits}")
        for queue in Queue.objects.for_center(center).select_related("extension").order_by("name")
    ]
    users = [
        (f"user:{member.pk}", f"{member.user.display_name} · {member.extension.digits}")
        for member in Membership.objects.for_center(center)
        .filter(extension__isnull=False)
        .select_related("user", "extension")
        .order_by("extension__digits")
    ]
    for group, kind_label in (
        (agents, TARGET_KIND_LABELS["virtual_agent"]),
        (queues, TARGET_KIND_LABELS["queue"]),
        (users, TARGET_KIND_LABELS["user"]),
    ):
        for value, label in group:
            kind, _, ref = value.partition(":")
            names[(kind, ref)] = f"{kind_label} {label}"
    choices: Choices = [("", "— choose —")]
    for label, group in (("Virtual agents", agents), ("Queues", queues), ("Users", users)):
        if group:
            choices.append((label, group))
    choices.append(("Other", [("external", "An external number"), ("variable", "The number in a variable")]))
    return choices, names


class RouteForm(NodeForm):
    type = "route"
    branch_names = ("busy",)
    target = forms.ChoiceField(label="Send the call to", required=False)
    number = forms.CharField(label="External number", max_length=32, required=False, help_text="E.164.")
    variable = forms.CharField(
        max_length=105, required=False, help_text="Holding an extension or an E.164 number, e.g. crm.agent."
    )
    caller_id = forms.CharField(
        label="Caller ID",
        max_length=32,
        required=False,
        help_text="Optional: the number the callee sees, E.164; empty keeps the caller's.",
    )
    shown_when: ClassVar[dict[str, str]] = {"number": "external", "variable": "variable"}

    def __init__(self, data: Any = None, *, center: ContactCenter, **kwargs: Any) -> None:
        super().__init__(data, center=center, **kwargs)
        choices, _ = route_target_choices(center)
        current = self.initial.get("target", "")
        known = {value for _, group in choices[1:] for value, _ in group}
        if current and current not in known:
            # A queue deleted since: keep it visible (and flagged by the validator), not silently dropped.
            choices.append(("Missing", [(current, f"{current.split(':')[0].replace('_', ' ')} (deleted)")]))
        self.fields["target"].choices = choices

    def initial_config(self, config: dict[str, Any]) -> dict[str, Any]:
        target = config.get("target") if isinstance(config.get("target"), dict) else {}
        kind = target.get("type", "")
        value = f"{kind}:{target.get('id', '')}" if kind in ("virtual_agent", "queue", "user") else kind
        return {
            "target": value,
            "number": target.get("number", ""),
            "variable": target.get("name", ""),
            "caller_id": config.get("caller_id", ""),
        }

    def clean_number(self) -> str:
        number = self.cleaned_data["number"].strip()
        return e164(number, "number") if number else ""

    def clean_caller_id(self) -> str:
        number = self.cleaned_data["caller_id"].strip()
        return e164(number, "caller_id") if number else ""

    def config(self) -> dict[str, Any]:
        data = self.cleaned_data
        config: dict[str, Any] = {}
        choice = data.get("target") or ""
        kind, _, ref = choice.partition(":")
        if kind in ("virtual_agent", "queue", "user"):
            config["target"] = {"type": kind, "id": ref}
        elif kind == "external":
            config["target"] = {"type": "external", **({"number": data["number"]} if data["number"] else {})}
        elif kind == "variable":
            name = data["variable"].strip()
            config["target"] = {"type": "variable", **({"name": name} if name else {})}
        if data["caller_id"]:
            config["caller_id"] = data["caller_id"]
        return config
