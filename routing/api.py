"""REST endpoints of routing: queues."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from routing import services
from routing.models import Queue
from routing.serializers import QueueSerializer, queue_service_kwargs
from voiso_byob.api import CenterScopedViewSet


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
