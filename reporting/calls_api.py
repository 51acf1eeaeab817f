"""`GET /api/v1/calls/` (filtered, keyset-paginated) and `GET /api/v1/calls/<call_id>/`.

Readers as for every other read endpoint (voiso_byob.authentication.ConfigurationAccess):
administrators' and supervisors' sessions and API keys with scope `read` or `admin`;
telephony keys and agents are refused (403). The filters are the calls page's own form, so
the page, its export and the API can never disagree on what a filter means.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.forms import Form
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, viewsets
from rest_framework.exceptions import ErrorDetail
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from reporting.forms import CallFilterForm
from reporting.models import CallEvent, CallRecord
from reporting.queries import filtered_calls, keyset_page
from reporting.serializers import (
    CallDetailExtrasSerializer,
    CallDetailSerializer,
    CallFilterQuerySerializer,
    CallPageSerializer,
    CallRecordSerializer,
)
from voiso_byob.authentication import ApiAccess, api_access


def form_validation_error(form: Form) -> exceptions.ValidationError:
    """A Django form's errors as DRF's, codes kept, so they take the API's one error shape."""
    return exceptions.ValidationError(
        {
            field: [
                ErrorDetail(message, code=error.code or "invalid") for error in errors for message in error
            ]
            for field, errors in form.errors.as_data().items()
        }
    )


class CallDetailSchema(OpenApiSerializerExtension):
    """The detail is the list row (by reference) plus its extras: allOf, not a copy of every field.

    A copy would put the record's `status` enum in two components, which drf-spectacular can
    then only name with a hash (a W001 warning that `check --deploy` treats as a failure).
    """

    target_class = "reporting.serializers.CallDetailSerializer"

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        row = auto_schema.resolve_serializer(CallRecordSerializer, direction)
        extras = auto_schema._map_basic_serializer(CallDetailExtrasSerializer(), direction)
        return {"allOf": [row.ref, extras]}


CALL_ID_PARAMETER = OpenApiParameter(
    "call_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The SIP layer's call id, percent-encoded.",
)


class CallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    lookup_field = "call_id"
    # A SIP Call-ID may contain '/', '@', ';' …: the rest of the path up to the final slash.
    lookup_value_regex = ".+"
    pagination_class = None  # keyset pagination, below
    serializer_class = CallRecordSerializer

    @property
    def access(self) -> ApiAccess:
        access = api_access(self.request)
        assert access is not None  # ConfigurationAccess ran first
        return access

    def get_queryset(self) -> QuerySet[CallRecord]:
        if getattr(self, "swagger_fake_view", False):
            return CallRecord.objects.none()
        records = CallRecord.objects.for_center(self.access.center)
        if self.action == "retrieve":
            records = records.prefetch_related("handoffs", "provider_reports")
        return records.select_related("virtual_agent", "queue", "answered_by__user")

    def get_serializer_class(self) -> type[CallRecordSerializer]:
        return CallDetailSerializer if self.action == "retrieve" else CallRecordSerializer

    @extend_schema(
        summary="List call records", parameters=[CallFilterQuerySerializer], responses=CallPageSerializer
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Newest first; records whose start was not reported yet come last. Follow `next` for more."""
        center = self.access.center
        form = CallFilterForm(request.query_params, center=center)
        if not form.is_valid():
            raise form_validation_error(form)
        records = filtered_calls(center, form.filters()).select_related(
            "virtual_agent", "queue", "answered_by__user"
        )
        page = keyset_page(records, after=form.cursor, size=form.rows_per_page)
        url = request.build_absolute_uri()
        next_url = replace_query_param(url, "after", page.next_cursor) if page.next_cursor else None
        serializer = self.get_serializer(page.records, many=True)
        return Response({"next": next_url, "results": serializer.data})

    @extend_schema(
        summary="One call: the record, its handoffs, events and the bot's reports",
        parameters=[CALL_ID_PARAMETER],
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        record = self.get_object()
        record.timeline = list(CallEvent.objects.for_call(self.access.center, record.call_id))
        return Response(self.get_serializer(record).data)
