from __future__ import annotations

from typing import Any

from rest_framework import serializers

from routing.models import MAX_WAIT_LIMIT, FailoverAction, Queue, QueueStrategy
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter, Membership


class QueueSerializer(serializers.ModelSerializer):
    extension = serializers.CharField(source="extension.digits", max_length=20)
    strategy = serializers.ChoiceField(choices=QueueStrategy.choices, default=QueueStrategy.RING_ALL)
    members = serializers.PrimaryKeyRelatedField(
        many=True,
        required=False,
        queryset=Membership.objects.none(),
        help_text="Membership ids of people with an extension.",
    )
    virtual_agent_members = serializers.PrimaryKeyRelatedField(
        many=True,
        required=False,
        queryset=VirtualAgent.objects.none(),
        help_text="Virtual agent ids (each needs an extension).",
    )
    max_wait_seconds = serializers.IntegerField(min_value=5, max_value=MAX_WAIT_LIMIT, default=300)
    failover_action = serializers.ChoiceField(
        choices=FailoverAction.choices, default=FailoverAction.VOICEMAIL
    )
    failover_queue = serializers.PrimaryKeyRelatedField(
        required=False, allow_null=True, queryset=Queue.objects.none()
    )
    failover_number = serializers.CharField(required=False, allow_blank=True, max_length=32, default="")

    class Meta:
        model = Queue
        fields = [
            "id",
            "name",
            "extension",
            "strategy",
            "members",
            "virtual_agent_members",
            "virtual_agent_members",
            "max_wait_seconds",
            "failover_action",
            "failover_queue",
            "failover_number",
            "created",
        ]
        read_only_fields = ["id", "created"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        center: ContactCenter | None = self.context.get("center")
        if center is not None:
            # Relations resolve inside the caller's contact center only.
            members = self.fields["members"]
            members.child_relation.queryset = Membership.objects.for_center(center).select_related("user")
            self.fields["failover_queue"].queryset = Queue.objects.for_center(center)
            agents = self.fields["virtual_agent_members"]
            agents.child_relation.queryset = VirtualAgent.objects.for_center(center)


def queue_service_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    """validated_data → keyword arguments of routing.services (only the fields sent)."""
    fields = (
        "name",
        "strategy",
        "members",
        "virtual_agent_members",
        "max_wait_seconds",
        "failover_action",
        "failover_queue",
        "failover_number",
    )
    kwargs = {key: data[key] for key in fields if key in data}
    if "extension" in data:
        kwargs["extension"] = data["extension"]["digits"]
    return kwargs
