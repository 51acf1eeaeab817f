from __future__ import annotations

from typing import Any

from django.db.models import Manager
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from virtual_agents.models import HandoffTarget, Provider, ProviderIntegration, VirtualAgent
from virtual_agents.webhooks import has_webhook_secret, webhook_url


class IntegrationSerializer(serializers.ModelSerializer):
    provider = serializers.ChoiceField(choices=Provider.choices)
    credentials = serializers.DictField(
        child=serializers.CharField(max_length=512),
        write_only=True,
        required=False,
        help_text='Write-only, e.g. {"api_key": "…"}. Verified live before it is stored; never returned.',
    )
    credentials_hint = serializers.CharField(
        read_only=True, help_text="The key's last characters, e.g. …a1f9"
    )
    webhook_secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=512,
        help_text=(
            "Write-only: the secret the provider signs post-call webhooks with (ElevenLabs, Vapi; "
            "for Retell the API key with the webhook badge, when it is not this integration's key). "
            "Sets or replaces it; empty keeps the current one; never returned."
        ),
    )
    webhook_secret_set = serializers.SerializerMethodField(help_text="Whether a webhook secret is stored.")
    webhook_url = serializers.SerializerMethodField(
        help_text="Where the provider posts post-call reports; null for a generic SIP bot."
    )

    class Meta:
        model = ProviderIntegration
        fields = [
            "id",
            "provider",
            "label",
            "credentials",
            "credentials_hint",
            "webhook_secret",
            "webhook_secret_set",
            "webhook_url",
            "status",
            "last_verified_at",
            "last_error",
            "created",
        ]
        read_only_fields = ["id", "status", "last_verified_at", "last_error", "created"]

    def get_webhook_secret_set(self, integration: ProviderIntegration) -> bool:
        return has_webhook_secret(integration)

    def get_webhook_url(self, integration: ProviderIntegration) -> str | None:
        request = self.context.get("request")
        return webhook_url(integration, request) if request is not None else None

    def validate_provider(self, value: str) -> str:
        if self.instance is not None and value != self.instance.provider:
            raise serializers.ValidationError(
                "The provider of an integration cannot change.", code="immutable"
            )
        return value


class ProviderAgentSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class HandoffTargetSerializer(serializers.Serializer):
    label = serializers.CharField()
    sip_uri = serializers.CharField()
    extension = serializers.CharField(source="extension.digits", allow_null=True)
    number = serializers.CharField()


class HandoffTargetsField(serializers.ListField):
    """In: extension digits or E.164 numbers. Out: the targets they resolved to."""

    def to_representation(self, data: Manager[HandoffTarget]) -> list[dict[str, Any]]:
        return HandoffTargetSerializer(data.all(), many=True).data


class HandoffTargetsFieldSchema(OpenApiSerializerFieldExtension):
    target_class = HandoffTargetsField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        if direction == "response":
            return {
                "type": "array",
                "items": auto_schema.resolve_serializer(HandoffTargetSerializer, direction).ref,
            }
        return auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)


class VirtualAgentSerializer(serializers.ModelSerializer):
    integration = serializers.PrimaryKeyRelatedField(queryset=ProviderIntegration.objects.none())
    extension = serializers.CharField(
        source="extension.digits", required=False, allow_null=True, allow_blank=True, max_length=20
    )
    enabled = serializers.BooleanField(source="is_enabled", required=False, default=True)
    handoff_targets = HandoffTargetsField(
        child=serializers.CharField(max_length=32),
        required=False,
        max_length=50,
        help_text="Extension digits of queues/users, or E.164 numbers where external handoffs are allowed.",
    )
    default_handoff = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=32,
        help_text="Extension or E.164 number.",
    )
    sip_uri = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=256,
        help_text="The bot's INVITE target. Typed for generic SIP bots; set by connect for API providers.",
    )
    connected = serializers.BooleanField(source="is_connected", read_only=True)
    left_at_provider = serializers.SerializerMethodField(
        help_text="What the last disconnect could not remove at the provider, in plain words; "
        "clean it up there by hand."
    )

    class Meta:
        model = VirtualAgent
        fields = [
            "id",
            "integration",
            "provider_agent_id",
            "name",
            "extension",
            "sip_uri",
            "max_concurrent_calls",
            "enabled",
            "handoff_targets",
            "default_handoff",
            "connected",
            "left_at_provider",
            "created",
        ]
        read_only_fields = ["id", "created"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        center = self.context.get("center")
        if center is not None:
            self.fields["integration"].queryset = ProviderIntegration.objects.for_center(center)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            self.fields["integration"].read_only = True
            self.fields["provider_agent_id"].read_only = True

    def get_left_at_provider(self, instance: VirtualAgent) -> list[str]:
        return [str(item) for item in (instance.provider_state or {}).get("left_at_provider") or []]

    def to_representation(self, instance: VirtualAgent) -> dict[str, Any]:
        data = super().to_representation(instance)
        default = instance.default_handoff_extension
        data["default_handoff"] = default.digits if default else (instance.default_handoff_number or None)
        return data


class HandoffCheckRowSerializer(serializers.Serializer):
    sip_uri = serializers.CharField()
    is_ok = serializers.BooleanField()
    resolves_to = serializers.CharField()
    problem = serializers.CharField()
