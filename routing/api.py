"""REST endpoints of routing: queues."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from routing import services
from routing.models import Queue
from routing.refer import resolve_refer
from routing.serializers import (
    QueueSerializer,
    ReferRequestSerializer,
    ReferResponseSerializer,
    queue_service_kwargs,
)
from voiso_byob.api import CenterScopedViewSet
from voiso_byob.api_errors import error_body
from voiso_byob.authentication import ApiKeyAuthentication, TelephonyAccess, api_access
from voiso_byob.sip import ReferToError


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


# --- the telephony contract: the SIP layer asks, we answer -------------------------------


def _refused(exc: ReferToError) -> Response:
    # HTTP carries the refusal; `sip_status` is what the switch answers the REFER with.
    http_status = exc.sip_status if exc.sip_status in (400, 403, 404) else status.HTTP_409_CONFLICT
    body = error_body(exc.code, exc.message, sip_status=exc.sip_status)
    return Response(body, status=http_status)


@extend_schema(
    request=ReferRequestSerializer,
    responses={200: ReferResponseSerializer},
    summary="Is this REFER target valid, and where does it go?",
    description=(
        "Parses `refer_to` (RFC 3261/3515/3966, name-addr or addr-spec, `Replaces`) and resolves it in "
        "the key's contact center. A refusal is a 4xx whose `error.sip_status` the switch answers the "
        "REFER with: 400 malformed, 403 foreign domain or external transfers not allowed, 404 unknown "
        "extension, 480 (HTTP 409) a disabled or disconnected virtual agent."
    ),
    tags=["telephony"],
)
@api_view(["POST"])
@authentication_classes([ApiKeyAuthentication])
@permission_classes([TelephonyAccess])
def telephony_refer(request: Request) -> Response:
    access = api_access(request)
    assert access is not None  # TelephonyAccess ran first
    serializer = ReferRequestSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    try:
        target, destination = resolve_refer(access.center, serializer.validated_data["refer_to"])
    except ReferToError as exc:
        return _refused(exc)
    body: dict[str, Any] = {"sip_status": 202, "destination": destination.as_dict()}
    if target.replaces is not None:
        body["replaces"] = asdict(target.replaces)
    return Response(body)
