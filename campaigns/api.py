"""REST endpoints of campaigns: campaigns (with start / pause / stop), their leads, do-not-call lists.

Readers as everywhere (voiso_byob.authentication.ConfigurationAccess): administrators' and
supervisors' sessions and `read`/`admin` keys; writers: administrators and `admin` keys. Every
write goes through campaigns.services, which audits it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import asdict
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from campaigns import services
from campaigns.batches import ShapeErrors, do_not_call_rows, lead_rows
from campaigns.models import E164_REGEX, Campaign, DoNotCall, Lead
from campaigns.progress import campaign_progress
from campaigns.serializers import (
    CampaignSerializer,
    DoNotCallBulkResultSerializer,
    DoNotCallBulkSerializer,
    DoNotCallFilterSerializer,
    DoNotCallSerializer,
    LeadFilterSerializer,
    LeadImportResultSerializer,
    LeadImportSerializer,
    LeadPageSerializer,
    LeadSerializer,
    campaign_service_kwargs,
)
from voiso_byob.api import CenterScopedViewSet
from voiso_byob.api_errors import error_body
from voiso_byob.authentication import ApiAccess, api_access

LEAD_PAGE_SIZE = 50
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-]+$")
_E164 = re.compile(E164_REGEX)

CLOSED = OpenApiResponse(description="`campaign_closed`: a stopped or completed campaign cannot change.")


def _transition_refused(codes: str) -> OpenApiResponse:
    return OpenApiResponse(description=f"{codes}: not from the campaign's current status.")


def _shape_refused(exc: ShapeErrors, *, code: str, what: str) -> Response:
    """All or nothing: every bad item by index, `{"error": {code, message, errors: [{index, fields}]}}`."""
    if not exc.problems:
        return Response(error_body("invalid_body", exc.message), status=status.HTTP_400_BAD_REQUEST)
    errors = [{"index": index, "fields": fields} for index, fields in sorted(exc.problems.items())]
    first = errors[0]
    name, messages = next(iter(first["fields"].items()))
    message = (
        f"{len(errors)} of {exc.total} {what} are invalid; nothing was stored "
        f"(first: item {first['index']}, {name}: {messages[0]})"
    )
    return Response(error_body(code, message, errors=errors), status=status.HTTP_400_BAD_REQUEST)


def _fragment(text: str) -> str:
    """A phone-like search loses its separators ("555 12-34" → "5551234")."""
    text = text.strip()
    return re.sub(r"[\s().\-]", "", text) if _PHONE_LIKE.match(text) else text


# --- campaigns ------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List campaigns, with their progress"),
    create=extend_schema(summary="Create a campaign (draft)"),
    update=extend_schema(summary="Replace a campaign", responses={200: CampaignSerializer, 409: CLOSED}),
    partial_update=extend_schema(
        summary="Change part of a campaign", responses={200: CampaignSerializer, 409: CLOSED}
    ),
    destroy=extend_schema(
        summary="Delete a draft, stopped or completed campaign, with its leads",
        responses={
            204: None,
            409: OpenApiResponse(description="`campaign_running`: stop the campaign first."),
        },
    ),
)
class CampaignViewSet(CenterScopedViewSet):
    serializer_class = CampaignSerializer

    def get_queryset(self) -> QuerySet[Campaign]:
        if getattr(self, "swagger_fake_view", False):
            return Campaign.objects.none()
        return Campaign.objects.for_center(self.access.center).prefetch_related(
            "virtual_agents", "caller_ids"
        )

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["center"] = self.access.center
        return context

    def _answer(self, campaign: Campaign, *, status_code: int = status.HTTP_200_OK) -> Response:
        context = self.get_serializer_context()
        context["progress"] = campaign_progress([campaign], center=self.access.center)
        return Response(CampaignSerializer(campaign, context=context).data, status=status_code)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        context = self.get_serializer_context()
        # Progress of the whole page in two grouped queries, not a few per campaign.
        context["progress"] = campaign_progress(page, center=self.access.center)
        return self.get_paginated_response(CampaignSerializer(page, many=True, context=context).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._answer(self.get_object())

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = services.create_campaign(
            center=self.access.center, by=self.access.by, **campaign_service_kwargs(serializer.validated_data)
        )
        return self._answer(campaign, status_code=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # PUT: the serializer's defaults fill every unsent optional field (a full replacement);
        # PATCH: only the fields sent reach the service.
        partial = kwargs.pop("partial", False)
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        campaign = services.update_campaign(
            campaign=serializer.instance,
            by=self.access.by,
            **campaign_service_kwargs(serializer.validated_data),
        )
        return self._answer(campaign)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_campaign(campaign=self.get_object(), by=self.access.by)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={
            200: CampaignSerializer,
            409: _transition_refused("`invalid_transition`, `no_leads` or `no_virtual_agent`"),
        },
        summary="Start (or resume) dialling",
        description="From draft or paused. Needs an enabled virtual agent and an active lead left to dial.",
    )
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        return self._answer(services.start_campaign(campaign=self.get_object(), by=self.access.by))

    @extend_schema(
        request=None,
        responses={200: CampaignSerializer, 409: _transition_refused("`invalid_transition`")},
        summary="Pause dialling",
        description=(
            "From active or auto-paused. No new call after the current tick; calls in progress finish."
        ),
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        return self._answer(services.pause_campaign(campaign=self.get_object(), by=self.access.by))

    @extend_schema(
        request=None,
        responses={200: CampaignSerializer, 409: _transition_refused("`invalid_transition`")},
        summary="Stop for good",
        description=(
            "From active, paused or auto-paused. Calls in progress finish; the campaign cannot restart."
        ),
    )
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str | None = None) -> Response:
        return self._answer(services.stop_campaign(campaign=self.get_object(), by=self.access.by))

    @extend_schema(
        methods=["GET"],
        parameters=[LeadFilterSerializer],
        responses=LeadPageSerializer,
        summary="List a campaign's leads",
        description="In number order. Follow `next` for more.",
    )
    @extend_schema(
        methods=["POST"],
        request=LeadImportSerializer,
        responses={
            201: LeadImportResultSerializer,
            400: OpenApiResponse(
                description=(
                    "`invalid_leads` (with `errors: [{index, fields}]`), `invalid_body` or `parse_error`; "
                    "nothing stored."
                )
            ),
            409: CLOSED,
        },
        summary="Import leads",
        description=(
            "A JSON array of 1 to 10,000 leads. All or nothing for shape: any item of the wrong shape "
            "refuses the request, with each bad item's errors by index. Otherwise every usable number "
            "goes in; unusable ones (`invalid_number`, `dnc`, `not_dialable`) are `rejected`, numbers "
            "already in the campaign (or earlier in the array) are `duplicates`: a retried request "
            "adds nothing twice."
        ),
    )
    @action(detail=True, methods=["get", "post"])
    def leads(self, request: Request, pk: str | None = None) -> Response:
        campaign = self.get_object()
        if request.method == "POST":
            return self._import_leads(campaign, request)
        return self._lead_page(campaign, request)

    def _import_leads(self, campaign: Campaign, request: Request) -> Response:
        data = request.data
        try:
            rows = lead_rows(data)
        except ShapeErrors as exc:
            return _shape_refused(exc, code="invalid_leads", what="lead(s)")
        result = services.import_leads(campaign=campaign, rows=rows, by=self.access.by)
        return Response(asdict(result), status=status.HTTP_201_CREATED)

    def _lead_page(self, campaign: Campaign, request: Request) -> Response:
        filters = LeadFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        given = filters.validated_data
        leads = Lead.objects.filter(campaign=campaign)
        if "status" in given:
            leads = leads.filter(status=given["status"])
        if "active" in given:
            leads = leads.filter(is_active=given["active"] == "true")
        fragment = _fragment(given.get("q", ""))
        if fragment:
            leads = leads.filter(Q(phone__contains=fragment) | Q(name__icontains=fragment))
        after = _decode_cursor(given.get("after", ""))
        if after:
            leads = leads.filter(phone__gt=after)
        size = given.get("page_size") or LEAD_PAGE_SIZE
        # Keyset on the phone: the (campaign, phone) unique index walks it, whatever the depth.
        rows = list(leads.order_by("phone")[: size + 1])
        next_url = None
        if len(rows) > size:
            rows = rows[:size]
            next_url = replace_query_param(
                request.build_absolute_uri(), "after", _encode_cursor(rows[-1].phone)
            )
        return Response({"next": next_url, "results": LeadSerializer(rows, many=True).data})


def _encode_cursor(phone: str) -> str:
    return base64.urlsafe_b64encode(phone.encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> str:
    if not token:
        return ""
    try:
        phone = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        phone = ""
    if not _E164.match(phone):
        raise ValidationError({"after": [ErrorDetail("This page link is not valid.", code="invalid_cursor")]})
    return phone


# --- do not call ----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List do-not-call entries", parameters=[DoNotCallFilterSerializer]),
    create=extend_schema(
        summary="Add a number to the center's or a campaign's do-not-call list",
        description=(
            "Idempotent: a number already on that list answers 200 with the existing entry; a new "
            "one 201. The number's waiting leads (all campaigns for the center-wide list) stop being dialled."
        ),
        responses={201: DoNotCallSerializer, 200: DoNotCallSerializer},
    ),
    destroy=extend_schema(summary="Remove a number from its do-not-call list"),
)
class DoNotCallViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = DoNotCallSerializer

    @property
    def access(self) -> ApiAccess:
        access = api_access(self.request)
        assert access is not None  # ConfigurationAccess ran first
        return access

    def get_queryset(self) -> QuerySet[DoNotCall]:
        if getattr(self, "swagger_fake_view", False):
            return DoNotCall.objects.none()
        return DoNotCall.objects.filter(contact_center=self.access.center).order_by("phone", "id")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["center"] = self.access.center
        return context

    def filter_queryset(self, queryset: QuerySet[DoNotCall]) -> QuerySet[DoNotCall]:
        if self.action != "list":
            return queryset
        filters = DoNotCallFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        given = filters.validated_data
        if "campaign" in given:
            if not Campaign.objects.for_center(self.access.center).filter(pk=given["campaign"]).exists():
                raise ValidationError({"campaign": ["No such campaign in this contact center."]})
            queryset = queryset.filter(campaign_id=given["campaign"])
        fragment = _fragment(given.get("q", ""))
        if fragment:
            queryset = queryset.filter(Q(phone__contains=fragment) | Q(reason__icontains=fragment))
        return queryset

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        asked_at = timezone.now()
        entry = services.add_do_not_call(
            center=self.access.center,
            phone=data["phone"],
            by=self.access.by,
            reason=data.get("reason", ""),
            campaign=data.get("campaign"),
        )
        # Idempotent: an entry made before this request was already there (200), else it is new (201).
        is_new = entry.created >= asked_at
        return Response(
            self.get_serializer(entry).data, status=status.HTTP_201_CREATED if is_new else status.HTTP_200_OK
        )

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.remove_do_not_call(entry=self.get_object(), by=self.access.by)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=DoNotCallBulkSerializer,
        responses={
            201: DoNotCallBulkResultSerializer,
            400: OpenApiResponse(
                description=(
                    "`invalid_numbers` (with `errors: [{index, fields}]`), `invalid_body` or `parse_error`; "
                    "nothing stored."
                )
            ),
        },
        summary="Add many numbers",
        description=(
            "A JSON array of 1 to 10,000 `{phone, reason?, campaign?}`. All or nothing for shape; an "
            "unreadable number is `rejected`, one already listed is `existing` (idempotent)."
        ),
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        data = request.data
        campaigns = {
            str(campaign.pk): campaign for campaign in Campaign.objects.for_center(self.access.center)
        }
        try:
            rows = do_not_call_rows(data, campaigns=campaigns)
        except ShapeErrors as exc:
            return _shape_refused(exc, code="invalid_numbers", what="number(s)")
        result = services.add_do_not_call_many(center=self.access.center, rows=rows, by=self.access.by)
        return Response(asdict(result), status=status.HTTP_201_CREATED)
