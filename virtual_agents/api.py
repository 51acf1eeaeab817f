"""REST endpoints: /api/v1/integrations/ and /api/v1/virtual-agents/ with their actions."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from virtual_agents import services
from virtual_agents.models import ProviderIntegration, VirtualAgent
from virtual_agents.serializers import (
    HandoffCheckRowSerializer,
    IntegrationSerializer,
    ProviderAgentSerializer,
    VirtualAgentSerializer,
)
from voiso_byob.api import CenterScopedViewSet


class ByobGatedViewSet(CenterScopedViewSet):
    """Everything here needs BYOB switched on for the contact center (403 byob_disabled)."""

    # Writes and actions may call the bot provider's API: the schema declares its 502.
    calls_provider = True

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        services.require_byob(self.access.center)


class IntegrationViewSet(ByobGatedViewSet):
    serializer_class = IntegrationSerializer

    def get_queryset(self) -> QuerySet[ProviderIntegration]:
        if getattr(self, "swagger_fake_view", False):
            return ProviderIntegration.objects.none()
        return ProviderIntegration.objects.for_center(self.access.center)

    def perform_create(self, serializer: IntegrationSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.create_integration(
            center=self.access.center,
            provider=data["provider"],
            label=data["label"],
            credentials=data.get("credentials"),
            by=self.access.by,
            webhook_secret=data.get("webhook_secret"),
        )

    def perform_update(self, serializer: IntegrationSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.update_integration(
            integration=serializer.instance,
            by=self.access.by,
            label=data.get("label"),
            credentials=data.get("credentials"),
            webhook_secret=data.get("webhook_secret"),
        )

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_integration(integration=self.get_object(), by=self.access.by)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=IntegrationSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None) -> Response:
        """Check the stored credentials with the provider again; the outcome is in `status`/`last_error`."""
        integration = services.verify_integration(integration=self.get_object(), by=self.access.by)
        return Response(self.get_serializer(integration).data)

    @extend_schema(responses=ProviderAgentSerializer(many=True))
    @action(detail=True, methods=["get"])
    def agents(self, request: Request, pk: str | None = None) -> Response:
        """The provider's agents, live."""
        agents = services.list_provider_agents(integration=self.get_object())
        return Response(ProviderAgentSerializer(agents, many=True).data)


class VirtualAgentViewSet(ByobGatedViewSet):
    serializer_class = VirtualAgentSerializer

    def get_queryset(self) -> QuerySet[VirtualAgent]:
        if getattr(self, "swagger_fake_view", False):
            return VirtualAgent.objects.none()
        return VirtualAgent.objects.for_center(self.access.center).with_details()

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["center"] = self.access.center
        return context

    def perform_create(self, serializer: VirtualAgentSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.create_virtual_agent(
            integration=data["integration"],
            by=self.access.by,
            name=data["name"],
            provider_agent_id=data.get("provider_agent_id", ""),
            sip_uri=data.get("sip_uri", ""),
            extension=(data.get("extension") or {}).get("digits"),
            max_concurrent_calls=data.get("max_concurrent_calls", 10),
            is_enabled=data.get("is_enabled", True),
            handoff_targets=data.get("handoff_targets", []),
            default_handoff=data.get("default_handoff"),
        )

    def perform_update(self, serializer: VirtualAgentSerializer) -> None:
        data = serializer.validated_data
        kwargs: dict[str, Any] = {
            key: data[key]
            for key in ("name", "max_concurrent_calls", "is_enabled", "handoff_targets", "sip_uri")
            if key in data
        }
        if "extension" in data:
            kwargs["extension"] = (data["extension"] or {}).get("digits")
        if "default_handoff" in data:
            kwargs["default_handoff"] = data["default_handoff"]
        serializer.instance = services.update_virtual_agent(
            agent=serializer.instance, by=self.access.by, **kwargs
        )

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_virtual_agent(agent=self.get_object(), by=self.access.by)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=VirtualAgentSerializer)
    @action(detail=True, methods=["post"])
    def connect(self, request: Request, pk: str | None = None) -> Response:
        """Set the bot up at the provider (SIP trunk/number, REFER transfer tool). All or nothing."""
        agent = services.connect_virtual_agent(agent=self.get_object(), by=self.access.by)
        return Response(self.get_serializer(agent).data)

    @extend_schema(request=None, responses=VirtualAgentSerializer)
    @action(detail=True, methods=["post"])
    def disconnect(self, request: Request, pk: str | None = None) -> Response:
        """Undo the provider setup; the virtual agent stays, disabled."""
        agent = services.disconnect_virtual_agent(agent=self.get_object(), by=self.access.by)
        return Response(self.get_serializer(agent).data)

    @extend_schema(request=None, responses=HandoffCheckRowSerializer(many=True))
    @action(detail=True, methods=["get"])
    def check_handoffs(self, request: Request, pk: str | None = None) -> Response:
        """Compare the transfer targets at the provider with live extensions; lists the dangling ones."""
        rows = services.check_handoffs(agent=self.get_object())
        return Response(HandoffCheckRowSerializer(rows, many=True).data)
