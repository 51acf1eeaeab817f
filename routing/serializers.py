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


class StrictCharField(serializers.CharField):
    """A string, and only a string: DRF's CharField would turn 42 or true into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ReferRequestSerializer(serializers.Serializer):
    call_id = StrictCharField(max_length=256)
    refer_to = StrictCharField(
        max_length=4096, trim_whitespace=False, help_text="The Refer-To value as received."
    )
    referred_by = StrictCharField(max_length=1024, required=False, allow_blank=True)
    headers = serializers.DictField(
        child=serializers.CharField(max_length=1024, allow_blank=True),
        required=False,
        help_text="X-headers of the REFER, kept as the handoff's context.",
    )

    def validate_headers(self, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 50:
            raise serializers.ValidationError("At most 50 headers.")
        return value


class DestinationSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["queue", "user", "virtual_agent", "external"])
    extension = serializers.CharField(required=False)
    number = serializers.CharField(required=False)
    name = serializers.CharField(required=False)
    sip_uri = serializers.CharField(required=False)


class ReplacesSerializer(serializers.Serializer):
    call_id = serializers.CharField()
    to_tag = serializers.CharField()
    from_tag = serializers.CharField()
    early_only = serializers.BooleanField()


class ReferResponseSerializer(serializers.Serializer):
    sip_status = serializers.IntegerField(help_text="202: the switch accepts the REFER.")
    destination = DestinationSerializer()
    replaces = ReplacesSerializer(required=False, help_text="Attended transfer (RFC 3891), when present.")
