"""`POST /api/v1/telephony/events`: the SIP layer reports what happened on calls.

A plain Django view like the routing endpoints (voiso_byob.plain_api): every call sends several
events, and DRF's request wrapping, negotiation and rendering measured a tenth of the request. The
API key is remembered per process for a few seconds and confirmed active by the very statement
that stores the events (reporting.ingest_sql.store_and_lock), so the key costs no round trip.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.views import APIView

from reporting.events import MAX_BATCH, AgentInfo, EventIn, EventsRejected, parse_body, validate_events
from reporting.ingest import KeyRevoked, ingest_events
from reporting.models import CALL_ID_MAX, EVENT_ID_MAX, EventType
from voiso_byob import rate_limits
from voiso_byob.api_key_cache import (
    forget_remembered_api_key,
    is_still_active,
    remembered_api_key,
    touch_api_key,
)
from voiso_byob.models import ApiKey, ApiKeyScope, ContactCenter
from voiso_byob.plain_api import ApiError, bearer_token, json_response, plain_api_view

# --- schema only: the request is validated by reporting.events --------------------------------


class EventSerializer(serializers.Serializer):
    id = serializers.CharField(
        max_length=EVENT_ID_MAX, help_text="Unique per contact center; re-sent ids are duplicates."
    )
    type = serializers.ChoiceField(choices=EventType.choices)
    call_id = serializers.CharField(max_length=CALL_ID_MAX)
    occurred_at = serializers.DateTimeField(
        help_text="RFC 3339 with an offset (Z or ±hh:mm); naive times are refused."
    )
    data = serializers.DictField(
        required=False,
        help_text=(
            "Per type: call.started {direction: inbound|outbound, from, to, campaign_id?, lead_id?} · "
            "bot.connected {virtual_agent (id or extension), provider_call_id?} · handoff.requested "
            "{virtual_agent, refer_to, referred_by?, headers? (name → text)} · "
            "handoff.accepted {sip_status} · "
            "handoff.completed {answered_by?} · handoff.failed {reason, sip_status?} · queue.entered "
            "{queue (a queue's id — the X-Voiso-Target-Id of a route answer's dial — or its extension)} · "
            "agent.connected {extension} · call.ended {end_reason, hangup_by?: caller|bot|agent|system} · "
            "recording.ready {url}. Other keys are kept as received."
        ),
    )


class EventBatchSerializer(serializers.Serializer):
    events = EventSerializer(many=True, min_length=1, max_length=MAX_BATCH)


_EXAMPLE_EVENT = {
    "id": "evt-0001",
    "type": "handoff.requested",
    "call_id": "a84b4c76e66710@pbx-1",
    "occurred_at": "2026-05-01T09:30:12.250Z",
    "data": {
        "virtual_agent": "7001",
        "refer_to": "<sip:4323@acme.voiso.com>",
        "headers": {"X-Intent": "billing", "X-Customer-Id": "C-1881"},
    },
}


class EventsSchema(APIView):
    """Never served: lends `telephony_events` its OpenAPI description."""

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="TelephonyEventsRequest",
            serializers=[EventSerializer, EventBatchSerializer],
            resource_type_field_name=None,
        ),
        responses={
            202: inline_serializer(
                "TelephonyEventsAccepted",
                {"accepted": serializers.IntegerField(), "duplicates": serializers.IntegerField()},
            ),
            400: OpenApiResponse(
                description=(
                    "`invalid_events` (with `errors: [{index, fields}]`; nothing stored), `parse_error`, "
                    "`invalid_body`, `empty_batch` or `batch_too_large`."
                )
            ),
            401: OpenApiResponse(description="No, unknown or revoked API key."),
            403: OpenApiResponse(description="The key's scope is not `telephony`."),
            413: OpenApiResponse(description="`request_too_large`: send smaller batches."),
        },
        examples=[
            OpenApiExample("One event", value=_EXAMPLE_EVENT, request_only=True),
            OpenApiExample(
                "A batch",
                value={
                    "events": [
                        {
                            "id": "evt-0000",
                            "type": "call.started",
                            "call_id": "a84b4c76e66710@pbx-1",
                            "occurred_at": "2026-05-01T09:30:00Z",
                            "data": {"direction": "inbound", "from": "+442079460999", "to": "+442079460018"},
                        },
                        _EXAMPLE_EVENT,
                    ]
                },
                request_only=True,
            ),
            OpenApiExample(
                "Accepted", value={"accepted": 2, "duplicates": 0}, response_only=True, status_codes=["202"]
            ),
            OpenApiExample(
                "Refused batch",
                value={
                    "error": {
                        "code": "invalid_events",
                        "message": "1 of 2 event(s) are invalid; nothing was stored "
                        "(first: event 1, data.sip_status: This field is required.)",
                        "errors": [{"index": 1, "fields": {"data.sip_status": ["This field is required."]}}],
                    }
                },
                response_only=True,
                status_codes=["400"],
            ),
        ],
        summary="Report call events",
        description=(
            'One event, or `{"events": [...]}` with 1 to 1000. A batch is all or nothing: any invalid event '
            "refuses the request with each bad event's errors by index, and nothing is stored. Events are "
            "idempotent by `id` within the contact center: a re-sent id counts as a duplicate and changes "
            "nothing. Call records and handoffs are assembled from all of a call's events whatever order "
            "they arrive in. Needs an API key with scope `telephony`."
        ),
        tags=["telephony"],
        operation_id="telephony_events",
    )
    def post(self, request: Any) -> Any:  # pragma: no cover - schema only
        raise NotImplementedError


@plain_api_view(schema=EventsSchema)
def telephony_events(request: HttpRequest) -> HttpResponse:
    """A plain Django view (voiso_byob.plain_api): the SIP layer posts every call event here."""
    raw_key = bearer_token(request)
    prefix = ApiKey.prefix_of(raw_key)
    key, from_memory = remembered_api_key(prefix)
    if key is None or not key.matches(raw_key):
        raise ApiError(401, "invalid_api_key", "Invalid API key.")
    try:
        if not key.is_active:
            raise ApiError(401, "revoked_api_key", "This API key has been revoked.")
        if key.scope != ApiKeyScope.TELEPHONY:
            raise ApiError(403, "permission_denied", "This endpoint needs an API key with scope 'telephony'.")
        # A token per request, whatever the batch's size: batches are what the switch should send.
        rate_limits.check(key.pk, key.scope)
        touch_api_key(key)
        try:
            events, agents = _validated(request, key.contact_center)
        except EventsRejected as exc:
            if from_memory and not is_still_active(key):
                raise KeyRevoked from None  # a revoked key learns nothing about its request
            return JsonResponse(exc.body(), status=exc.status)
        # A remembered key is confirmed active by the statement that stores the events.
        result = ingest_events(
            center=key.contact_center, events=events, agents=agents, key_id=key.pk if from_memory else None
        )
    except KeyRevoked:
        forget_remembered_api_key(prefix)
        raise ApiError(401, "revoked_api_key", "This API key has been revoked.") from None
    return json_response({"accepted": result.accepted, "duplicates": result.duplicates}, status=202)


def _validated(request: HttpRequest, center: ContactCenter) -> tuple[list[EventIn], dict[str, AgentInfo]]:
    if (request.content_type or "").lower() != "application/json":
        raise EventsRejected("unsupported_media_type", "Send the events as application/json.", status=415)
    try:
        raw = request.body
    except RequestDataTooBig:
        raise EventsRejected(
            "request_too_large", "The request body is too large; send smaller batches.", status=413
        ) from None
    return validate_events(center, parse_body(raw))
