from __future__ import annotations

from django import forms

from routing.models import (
    MAX_WAIT_LIMIT,
    SERVICE_LEVEL_DEFAULT,
    SERVICE_LEVEL_MAX,
    SERVICE_LEVEL_MIN,
    FailoverAction,
    Queue,
    QueueStrategy,
)
from virtual_agents.models import VirtualAgent
from voiso_byob.forms import ExtensionField
from voiso_byob.models import ContactCenter, Membership


class MemberChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Membership) -> str:  # type: ignore[override]
        return f"{obj.user.display_name} · {obj.extension.digits}"


class VirtualAgentChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: VirtualAgent) -> str:  # type: ignore[override]
        return f"{obj.name} · {obj.extension.digits}"


class QueueForm(forms.Form):
    name = forms.CharField(max_length=100)
    strategy = forms.ChoiceField(choices=QueueStrategy.choices, initial=QueueStrategy.RING_ALL)
    max_wait_seconds = forms.IntegerField(
        min_value=5, max_value=MAX_WAIT_LIMIT, initial=300, label="Maximum wait (seconds)"
    )
    service_level_seconds = forms.IntegerField(
        min_value=SERVICE_LEVEL_MIN,
        max_value=SERVICE_LEVEL_MAX,
        initial=SERVICE_LEVEL_DEFAULT,
        # Blank is the default: forms posted before the field existed keep working.
        required=False,
        label="Service level threshold (seconds)",
        help_text="Reports count a caller answered within this many seconds as within service level.",
    )
    failover_action = forms.ChoiceField(
        choices=FailoverAction.choices, initial=FailoverAction.VOICEMAIL, label="When the wait runs out"
    )
    failover_number = forms.CharField(
        max_length=32, required=False, label="External number", help_text="E.164, e.g. +12125550199"
    )

    def __init__(
        self, *args: object, center: ContactCenter, queue: Queue | None = None, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["extension"] = ExtensionField(center, required=True)
        self.fields["members"] = MemberChoiceField(
            queryset=Membership.objects.for_center(center)
            .filter(extension__isnull=False)
            .select_related("user", "extension"),
            required=False,
            widget=forms.CheckboxSelectMultiple,
            help_text="People with an extension.",
        )
        bots = (
            VirtualAgent.objects.for_center(center)
            .filter(extension__isnull=False)
            .select_related("extension")
        )
        if bots.exists():
            self.fields["virtual_agent_members"] = VirtualAgentChoiceField(
                queryset=bots,
                required=False,
                widget=forms.CheckboxSelectMultiple,
                label="Virtual agents",
                help_text="Bots with an extension take calls from this queue too.",
            )
        others = Queue.objects.for_center(center).select_related("extension")
        if queue is not None:
            others = others.exclude(pk=queue.pk)
        self.fields["failover_queue"] = forms.ModelChoiceField(
            queryset=others, required=False, label="Failover queue"
        )
        self.order_fields(
            [
                "name",
                "extension",
                "strategy",
                "members",
                "virtual_agent_members",
                "max_wait_seconds",
                "service_level_seconds",
                "failover_action",
                "failover_queue",
                "failover_number",
            ]
        )

    def clean_service_level_seconds(self) -> int:
        value = self.cleaned_data.get("service_level_seconds")
        return SERVICE_LEVEL_DEFAULT if value is None else value
