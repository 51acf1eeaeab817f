"""REST endpoints of the core: members and their invitations."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from voiso_byob import services
from voiso_byob.authentication import ApiAccess, api_access
from voiso_byob.models import Invitation, Membership
from voiso_byob.serializers import InvitationSerializer, InviteSerializer, MemberSerializer


class CenterScopedViewSet(viewsets.ModelViewSet):
    """Every query goes through the caller's contact center: another center's object is a 404."""

    @property
    def access(self) -> ApiAccess:
        access = api_access(self.request)
        assert access is not None  # ConfigurationAccess ran first
        return access


INVITE_DESCRIPTION = (
    "E-mails the address a link to join this contact center; the person becomes a member when "
    "they accept it (an address without an account chooses its name and password then). The "
    "answer is the same whether or not the address has an account. Inviting an address with an "
    "open invitation here refreshes that one (role, new link, new expiry; 200 instead of 201)."
)
INVITE_RESPONSES = {
    201: InvitationSerializer,
    200: OpenApiResponse(InvitationSerializer, description="The open invitation of this address, refreshed."),
}


def invite(view: CenterScopedViewSet | InvitationViewSet, request: Request) -> Response:
    body = InviteSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    invitation, is_new = services.invite_member(
        center=view.access.center,
        email=body.validated_data["email"],
        role=body.validated_data["role"],
        by=view.access.by,
        portal_url=services.portal_url_for(request),
    )
    headers = {"Location": f"/api/v1/invitations/{invitation.pk}/"}
    code = status.HTTP_201_CREATED if is_new else status.HTTP_200_OK
    return Response(InvitationSerializer(invitation).data, status=code, headers=headers)


@extend_schema_view(
    list=extend_schema(summary="List members"),
    create=extend_schema(
        summary="Invite a member by email",
        description=INVITE_DESCRIPTION,
        request=InviteSerializer,
        responses=INVITE_RESPONSES,
    ),
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

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return invite(self, request)

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


@extend_schema_view(
    list=extend_schema(summary="List open invitations (pending and expired)"),
    retrieve=extend_schema(summary="An open invitation"),
    create=extend_schema(
        summary="Invite a member by email",
        description=INVITE_DESCRIPTION,
        request=InviteSerializer,
        responses=INVITE_RESPONSES,
    ),
    destroy=extend_schema(
        summary="Revoke an invitation (its link stops working)",
        responses={
            204: None,
            409: OpenApiResponse(description="Accepted meanwhile: remove the member instead."),
        },
    ),
    resend=extend_schema(
        summary="Send an invitation again (a new link; the old one stops working; a new expiry)",
        request=None,
        responses={
            200: InvitationSerializer,
            409: OpenApiResponse(description="Already accepted or revoked."),
        },
    ),
)
class InvitationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Accepted and revoked invitations are history (the audit log keeps them): 404 here."""

    serializer_class = InvitationSerializer

    @property
    def access(self) -> ApiAccess:
        access = api_access(self.request)
        assert access is not None  # ConfigurationAccess ran first
        return access

    def get_queryset(self) -> QuerySet[Invitation]:
        if getattr(self, "swagger_fake_view", False):
            return Invitation.objects.none()
        return Invitation.objects.for_center(self.access.center).open().select_related("invited_by")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return invite(self, request)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.revoke_invitation(invitation=self.get_object(), by=self.access.by)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def resend(self, request: Request, pk: str | None = None) -> Response:
        invitation = services.resend_invitation(
            invitation=self.get_object(), by=self.access.by, portal_url=services.portal_url_for(request)
        )
        return Response(InvitationSerializer(invitation).data)
