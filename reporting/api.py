"""`POST /api/v1/telephony/events`: the SIP layer reports what happened on calls."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from reporting.events import MAX_BATCH, EventsRejected, parse_body, validate_events
from reporting.ingest import ingest_events
from reporting.models import CALL_ID_MAX, EVENT_ID_MAX, EventType
from voiso_byob.authentication import ApiKeyAuthentication, TelephonyAccess, api_access

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
            "handoff.completed {answered_by?} · handoff.failed {reason, sip_status?} · agent.connected "
            "{extension} · call.ended {end_reason, hangup_by?: caller|bot|agent|system} · recording.ready "
            "{url}. Other keys are kept as received."
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
@api_view(["POST"])
@authentication_classes([ApiKeyAuthentication])
@permission_classes([TelephonyAccess])
def telephony_events(request: Request) -> Response:
    access = api_access(request)
    assert access is not None  # TelephonyAccess ran first
    try:
        if request.content_type.split(";")[0].strip().lower() != "application/json":
            raise EventsRejected(
                "unsupported_media_type",
                "Send the events as application/json.",
                status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            )
        try:
            raw = request.body
        except RequestDataTooBig:
            raise EventsRejected(
                "request_too_large", "The request body is too large; send smaller batches.", status=413
            ) from None
        events, agents = validate_events(access.center, parse_body(raw))
    except EventsRejected as exc:
        return Response(exc.body(), status=exc.status)
    result = ingest_events(center=access.center, events=events, agents=agents)
    return Response(
        {"accepted": result.accepted, "duplicates": result.duplicates}, status=status.HTTP_202_ACCEPTED
    )
