from __future__ import annotations

from typing import Any

from rest_framework import serializers

from routing.models import (
    MAX_WAIT_LIMIT,
    SERVICE_LEVEL_DEFAULT,
    SERVICE_LEVEL_MAX,
    SERVICE_LEVEL_MIN,
    FailoverAction,
    Flow,
    FlowVersion,
    PhoneNumber,
    Queue,
    QueueStrategy,
)
from virtual_agents.models import VirtualAgent
from voiso_byob.errors import DomainError
from voiso_byob.models import ContactCenter, Membership
from voiso_byob.phone import normalise_e164
from voiso_byob.sip import REFER_TO_MAX_LENGTH


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
    service_level_seconds = serializers.IntegerField(
        min_value=SERVICE_LEVEL_MIN,
        max_value=SERVICE_LEVEL_MAX,
        default=SERVICE_LEVEL_DEFAULT,
        help_text="T of the queue's service level (answered within T seconds ÷ offered).",
    )
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
            "service_level_seconds",
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
        "service_level_seconds",
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
        max_length=REFER_TO_MAX_LENGTH,
        trim_whitespace=False,
        help_text="The Refer-To value as received (the whole header value, display name included).",
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
    extension = serializers.CharField(
        required=False,
        help_text=(
            "queue, user, virtual_agent: the extension of this contact center. external: the number's "
            "`;ext=` (RFC 3966), digits the switch dials (DTMF) once the call is answered."
        ),
    )
    number = serializers.CharField(required=False, help_text="external: the E.164 number to dial.")
    name = serializers.CharField(required=False)
    sip_uri = serializers.CharField(required=False)
    subaddress = serializers.CharField(
        required=False, help_text="external: the number's `;isub=` (ISDN subaddress, RFC 3966), to pass on."
    )


class ReplacesSerializer(serializers.Serializer):
    call_id = serializers.CharField()
    to_tag = serializers.CharField()
    from_tag = serializers.CharField()
    early_only = serializers.BooleanField()


class ReferResponseSerializer(serializers.Serializer):
    sip_status = serializers.IntegerField(help_text="202: the switch accepts the REFER.")
    destination = DestinationSerializer()
    replaces = ReplacesSerializer(required=False, help_text="Attended transfer (RFC 3891), when present.")


class PhoneNumberSerializer(serializers.ModelSerializer):
    number = serializers.CharField(max_length=32, help_text="E.164, e.g. +442071234567")
    flow = serializers.PrimaryKeyRelatedField(queryset=Flow.objects.none(), required=False, allow_null=True)

    class Meta:
        model = PhoneNumber
        fields = ["id", "number", "label", "flow", "created"]
        read_only_fields = ["id", "created"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        center = self.context.get("center")
        if center is not None:
            self.fields["flow"].queryset = Flow.objects.for_center(center)

    def validate_number(self, value: str) -> str:
        # The number is the row's identity: a PUT repeats it (a full update sends every required
        # field), and any other number is refused rather than silently ignored.
        is_update = self.instance is not None and not isinstance(self.instance, list | tuple)
        if is_update and _e164_or_text(value) != self.instance.number:
            raise serializers.ValidationError(
                "A number cannot change; delete it and add the new one.", code="immutable"
            )
        return value


def _e164_or_text(value: str) -> str:
    try:
        return normalise_e164(value)
    except DomainError:
        return value


class ProblemSerializer(serializers.Serializer):
    node = serializers.CharField(allow_null=True)
    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class FlowVersionSerializer(serializers.ModelSerializer):
    graph = serializers.JSONField(read_only=True)
    problems = ProblemSerializer(many=True, read_only=True)
    is_valid = serializers.BooleanField(read_only=True)

    class Meta:
        model = FlowVersion
        fields = ["id", "number", "state", "graph", "problems", "is_valid", "created", "published_at"]
        read_only_fields = fields


class FlowSerializer(serializers.ModelSerializer):
    business_hours = serializers.JSONField(
        required=False, help_text="Schedule-node format; empty = always open."
    )
    after_hours_flow = serializers.PrimaryKeyRelatedField(
        queryset=Flow.objects.none(), required=False, allow_null=True
    )
    graph = serializers.JSONField(write_only=True, required=False, help_text="Initial graph of a new flow.")
    published_version = serializers.SerializerMethodField()
    draft = serializers.SerializerMethodField()

    class Meta:
        model = Flow
        fields = [
            "id",
            "name",
            "business_hours",
            "after_hours_flow",
            "graph",
            "published_version",
            "draft",
            "created",
        ]
        read_only_fields = ["id", "created"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        center = self.context.get("center")
        if center is not None:
            self.fields["after_hours_flow"].queryset = Flow.objects.for_center(center)

    def get_published_version(self, flow: Flow) -> int | None:
        return flow.published_version.number if flow.published_version else None

    def get_draft(self, flow: Flow) -> dict[str, Any] | None:
        drafts = [v for v in flow.versions.all() if v.state == "draft"]
        if not drafts:
            return None
        return {
            "number": drafts[0].number,
            "is_valid": drafts[0].is_valid,
            "problems": len(drafts[0].problems),
        }


class GraphSerializer(serializers.Serializer):
    graph = serializers.JSONField()


class SimulateSerializer(serializers.Serializer):
    caller = serializers.CharField(max_length=32, help_text="The caller's number (From).")
    called = serializers.CharField(max_length=32, required=False, allow_blank=True)
    at = serializers.DateTimeField(required=False, help_text="RFC 3339 with offset; default now.")
    digits = serializers.ListField(
        child=serializers.RegexField(r"^[0-9*#]?$", max_length=1),
        required=False,
        max_length=20,
        help_text="Keys pressed at successive menus; '' for a timeout.",
    )
    version = serializers.IntegerField(
        required=False, help_text="Default: the draft, else the published version."
    )


class RestoreSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class RouteRequestSerializer(serializers.Serializer):
    call_id = StrictCharField(max_length=256)
    to = StrictCharField(max_length=32, help_text="The dialled number (E.164).")
    # "from" is a Python keyword: the field is declared below under its wire name.
    at = serializers.DateTimeField(required=False, help_text="RFC 3339 with offset; default now.")
    digits = serializers.RegexField(
        r"^[0-9*#]?$",
        required=False,
        allow_blank=True,
        max_length=1,
        help_text="The key pressed at the menu the call waits at; empty for a timeout.",
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = StrictCharField(max_length=64, help_text="The caller's number as the switch saw it.")
        return fields


class RouteResponseSerializer(serializers.Serializer):
    call_id = serializers.CharField()
    instructions = serializers.ListField(child=serializers.DictField())
    destination = DestinationSerializer(required=False)


class SimulationStepSerializer(serializers.Serializer):
    digits = serializers.CharField(allow_null=True)
    instructions = serializers.ListField(child=serializers.DictField())
    path = serializers.ListField(child=serializers.CharField())
    destination = DestinationSerializer(allow_null=True)
    notes = serializers.ListField(child=serializers.CharField())
