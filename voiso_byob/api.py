"""REST endpoints of the core: members."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from voiso_byob import services
from voiso_byob.authentication import ApiAccess, api_access
from voiso_byob.models import Membership
from voiso_byob.serializers import MemberSerializer


class CenterScopedViewSet(viewsets.ModelViewSet):
    """Every query goes through the caller's contact center: another center's object is a 404."""

    @property
    def access(self) -> ApiAccess:
        access = api_access(self.request)
        assert access is not None  # ConfigurationAccess ran first
        return access


@extend_schema_view(
    list=extend_schema(summary="List members"),
    create=extend_schema(summary="Add a member (creates the account if the email is new)"),
)
class MemberViewSet(CenterScopedViewSet):
    serializer_class = MemberSerializer
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Membership]:
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return (
            Membership.objects.for_center(self.access.center)
            .select_related("user", "extension")
            .order_by("user__email")
        )

    def perform_create(self, serializer: MemberSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.add_member(
            center=self.access.center,
            email=data["user"]["email"],
            full_name=data.get("user", {}).get("full_name", ""),
            role=data["role"],
            extension=(data.get("extension") or {}).get("digits"),
            password=data.get("password") or None,
            by=self.access.by,
        )

    def perform_update(self, serializer: MemberSerializer) -> None:
        data = serializer.validated_data
        kwargs: dict[str, Any] = {}
        if "role" in data:
            kwargs["role"] = data["role"]
        if "extension" in data:
            kwargs["extension"] = (data["extension"] or {}).get("digits")
        if "full_name" in data.get("user", {}):
            kwargs["full_name"] = data["user"]["full_name"]
        serializer.instance = services.update_member(
            membership=serializer.instance, by=self.access.by, **kwargs
        )

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.remove_member(membership=self.get_object(), by=self.access.by)
        return Response(status=status.HTTP_204_NO_CONTENT)
