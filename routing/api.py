"""REST endpoints of routing: queues."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from routing import services
from routing.models import Flow, PhoneNumber, Queue
from routing.route import simulate_flow
from routing.serializers import (
    FlowSerializer,
    FlowVersionSerializer,
    GraphSerializer,
    PhoneNumberSerializer,
    ProblemSerializer,
    QueueSerializer,
    RestoreSerializer,
    SimulateSerializer,
    SimulationStepSerializer,
    queue_service_kwargs,
)
from voiso_byob.api import CenterScopedViewSet
from voiso_byob.authentication import ReadOnlyPost
from voiso_byob.errors import DomainError


class QueueViewSet(CenterScopedViewSet):
    serializer_class = QueueSerializer

    def get_queryset(self) -> QuerySet[Queue]:
        if getattr(self, "swagger_fake_view", False):
            return Queue.objects.none()
        # The representation names members and the failover queue by id only: prefetching the
        # members' users and extensions (as `with_details()` does for the pages) would be wasted.
        return (
            Queue.objects.for_center(self.access.center)
            .select_related("extension")
            .prefetch_related("members", "virtual_agent_members")
        )

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["center"] = self.access.center
        return context

    def perform_create(self, serializer: QueueSerializer) -> None:
        serializer.instance = services.create_queue(
            center=self.access.center, by=self.access.by, **queue_service_kwargs(serializer.validated_data)
        )

    def perform_update(self, serializer: QueueSerializer) -> None:
        kwargs = queue_service_kwargs(serializer.validated_data)
        if not serializer.partial:
            # PUT replaces the whole queue: unsent optional fields return to their defaults.
            kwargs.setdefault("members", [])
            kwargs.setdefault("virtual_agent_members", [])
            kwargs.setdefault("failover_queue", None)
            kwargs.setdefault("failover_number", "")
        serializer.instance = services.update_queue(queue=serializer.instance, by=self.access.by, **kwargs)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_queue(queue=self.get_object(), by=self.access.by)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- numbers and flows -------------------------------------------------------------------


class PhoneNumberViewSet(CenterScopedViewSet):
    serializer_class = PhoneNumberSerializer

    def get_queryset(self) -> QuerySet[PhoneNumber]:
        if getattr(self, "swagger_fake_view", False):
            return PhoneNumber.objects.none()
        return PhoneNumber.objects.for_center(self.access.center).select_related("flow")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["center"] = self.access.center
        return context

    def perform_create(self, serializer: PhoneNumberSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.create_phone_number(
            center=self.access.center,
            by=self.access.by,
            number=data["number"],
            label=data.get("label", ""),
            flow=data.get("flow"),
        )

    def perform_update(self, serializer: PhoneNumberSerializer) -> None:
        data = serializer.validated_data
        kwargs: dict[str, Any] = {key: data[key] for key in ("label", "flow") if key in data}
        if not serializer.partial:
            # PUT replaces the whole number: unsent optional fields return to their defaults.
            kwargs.setdefault("label", "")
            kwargs.setdefault("flow", None)
        serializer.instance = services.update_phone_number(
            phone=serializer.instance, by=self.access.by, **kwargs
        )

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_phone_number(phone=self.get_object(), by=self.access.by)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FlowViewSet(CenterScopedViewSet):
    serializer_class = FlowSerializer

    def get_queryset(self) -> QuerySet[Flow]:
        if getattr(self, "swagger_fake_view", False):
            return Flow.objects.none()
        return (
            Flow.objects.for_center(self.access.center)
            .select_related("published_version")
            .prefetch_related("versions")
        )

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["center"] = self.access.center
        return context

    def perform_create(self, serializer: FlowSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.create_flow(
            center=self.access.center,
            by=self.access.by,
            name=data["name"],
            business_hours=data.get("business_hours"),
            after_hours_flow=data.get("after_hours_flow"),
            graph=data.get("graph"),
        )

    def perform_update(self, serializer: FlowSerializer) -> None:
        data = serializer.validated_data
        kwargs = {key: data[key] for key in ("name", "business_hours", "after_hours_flow") if key in data}
        serializer.instance = services.update_flow(flow=serializer.instance, by=self.access.by, **kwargs)
        if "graph" in data:
            services.save_draft(flow=serializer.instance, by=self.access.by, graph=data["graph"])

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_flow(flow=self.get_object(), by=self.access.by)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=FlowVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        """Every version, newest first: the draft, the published one and the archived ones."""
        flow = self.get_object()
        return Response(FlowVersionSerializer(flow.versions.order_by("-number"), many=True).data)

    @extend_schema(request=GraphSerializer, responses=FlowVersionSerializer)
    @action(detail=True, methods=["post"])
    def draft(self, request: Request, pk: str | None = None) -> Response:
        """Save a graph as the draft (valid or not: its problems come back with it)."""
        serializer = GraphSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.save_draft(
            flow=self.get_object(), by=self.access.by, graph=serializer.validated_data["graph"]
        )
        return Response(FlowVersionSerializer(version).data)

    @extend_schema(request=GraphSerializer, responses=ProblemSerializer(many=True))
    @action(detail=True, methods=["post"], permission_classes=[ReadOnlyPost])
    def validate(self, request: Request, pk: str | None = None) -> Response:
        """Check a graph against this contact center without saving anything."""
        serializer = GraphSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flow = self.get_object()
        return Response(services.flow_problems(flow.contact_center, serializer.validated_data["graph"]))

    @extend_schema(request=None, responses=FlowVersionSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        """Publish the draft; refused with its problems when it is not valid."""
        version = services.publish_flow(flow=self.get_object(), by=self.access.by)
        return Response(FlowVersionSerializer(version).data)

    @extend_schema(request=SimulateSerializer, responses=SimulationStepSerializer(many=True))
    @action(detail=True, methods=["post"], permission_classes=[ReadOnlyPost])
    def simulate(self, request: Request, pk: str | None = None) -> Response:
        """A test call through the draft (or `version`): path and instructions per menu. Changes nothing.

        Readers (supervisors, `read` keys) may run it, but their run sends no http_request node's
        request: each such node says so in `notes` and takes its error branch. Write access
        (administrators, `admin` keys) runs the requests as a real call would.
        """
        serializer = SimulateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        flow = self.get_object()
        versions = flow.versions.all()
        if "version" in data:
            version = get_object_or_404(versions, number=data["version"])
        else:
            version = versions.filter(state="draft").first() or flow.published_version
            if version is None:
                raise DomainError("no_version", "This flow has no version to run.")
        steps = simulate_flow(
            flow=flow,
            version=version,
            caller=data["caller"],
            at=data.get("at") or timezone.now(),
            digits=data.get("digits", []),
            is_http_allowed=self.access.can_write,
        )
        return Response(SimulationStepSerializer([asdict(step) for step in steps], many=True).data)

    @extend_schema(request=RestoreSerializer, responses=FlowVersionSerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str | None = None) -> Response:
        """Copy an older version's graph into the draft."""
        serializer = RestoreSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flow = self.get_object()
        version = get_object_or_404(flow.versions, number=serializer.validated_data["version"])
        return Response(
            FlowVersionSerializer(services.restore_version(version=version, by=self.access.by)).data
        )
