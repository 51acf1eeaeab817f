"""The SIP layer's routing endpoints: `POST /api/v1/telephony/route` and `/telephony/refer`.

They answer every call setup and every REFER, so each is one SQL query (routing.hotpath)
served by a plain Django view (voiso_byob.plain_api) — same contract, error shape and
OpenAPI description as the rest of the API, without DRF's per-request machinery.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from routing.hotpath import refer_lookup, route_lookup
from routing.refer import destination_for
from routing.route import dialled_number, route_call
from routing.serializers import (
    ReferRequestSerializer,
    ReferResponseSerializer,
    RouteRequestSerializer,
    RouteResponseSerializer,
)
from voiso_byob.api_key_cache import touch_api_key_id
from voiso_byob.errors import DomainError
from voiso_byob.models import ApiKey
from voiso_byob.plain_api import ApiError, Fields, bearer_token, json_object, plain_api_view
from voiso_byob.sip import ReferToError, parse_refer_to

_DIGITS = re.compile(r"^[0-9*#]?$")


class RouteSchema(APIView):
    """Never served: lends `telephony_route` its OpenAPI description."""

    @extend_schema(
        request=RouteRequestSerializer,
        responses={200: RouteResponseSerializer},
        summary="Where does this call go?",
        description=(
            "Runs the published flow of the dialled number and returns the verbs the switch executes "
            "(`play`, `gather`, `dial`, `voicemail`, `hangup`). A menu is answered by posting again with "
            "the same `call_id` and `digits`. Unknown number → 404 `unknown_number`; digits for a call not "
            "waiting at a menu → 409 `unknown_call`; a number without a published flow → 409 "
            "`no_published_flow`. Needs an API key with scope `telephony`."
        ),
        tags=["telephony"],
        operation_id="telephony_route",
    )
    def post(self, request: Any) -> Any:  # pragma: no cover - schema only
        raise NotImplementedError


class ReferSchema(APIView):
    """Never served: lends `telephony_refer` its OpenAPI description."""

    @extend_schema(
        request=ReferRequestSerializer,
        responses={200: ReferResponseSerializer},
        summary="Is this REFER target valid, and where does it go?",
        description=(
            "Parses `refer_to` (RFC 3261/3515/3966, name-addr or addr-spec, `Replaces`) and resolves it in "
            "the key's contact center. A refusal is a 4xx whose `error.sip_status` the switch answers the "
            "REFER with: 400 malformed, 403 foreign domain or external transfers not allowed, 404 unknown "
            "extension, 480 (HTTP 409) a disabled or disconnected virtual agent. Needs an API key with "
            "scope `telephony`."
        ),
        tags=["telephony"],
        operation_id="telephony_refer",
    )
    def post(self, request: Any) -> Any:  # pragma: no cover - schema only
        raise NotImplementedError


def _unknown_key() -> ApiError:
    return ApiError(401, "invalid_api_key", "Invalid API key.")


@plain_api_view(schema=RouteSchema)
def telephony_route(request: HttpRequest) -> JsonResponse:
    raw_key = bearer_token(request)
    fields = Fields(json_object(request))
    call_id = fields.text("call_id", max_length=256)
    to = fields.text("to", max_length=32)
    caller = fields.text("from", max_length=64)
    at = fields.datetime("at")
    digits = fields.text("digits", max_length=1, required=False, allow_blank=True)
    if digits is not None and not _DIGITS.match(digits):
        fields.errors.setdefault("digits", []).append("One key: 0-9, * or #; empty for a timeout.")
    number = dialled_number(to) if to else None
    # Authentication first: a stranger learns nothing about the request's validity.
    found = route_lookup(ApiKey.prefix_of(raw_key), number or "")
    if found is None:
        raise _unknown_key()
    key, center, line = found
    key.check_telephony(raw_key)
    touch_api_key_id(key.id)
    fields.raise_if_any()
    assert call_id is not None and to is not None and caller is not None  # validated above
    try:
        answer = route_call(
            center=center,
            number=number or to,
            line=line if number else None,
            call_id=call_id,
            caller=caller,
            at=at or timezone.now(),
            digits=digits,
        )
    except DomainError as exc:
        raise ApiError(exc.status_code, exc.code, exc.message) from None
    body: dict[str, Any] = {"call_id": call_id, "instructions": answer.instructions}
    if answer.destination is not None:
        body["destination"] = answer.destination
    return JsonResponse(body)


@plain_api_view(schema=ReferSchema)
def telephony_refer(request: HttpRequest) -> JsonResponse:
    raw_key = bearer_token(request)
    fields = Fields(json_object(request))
    fields.text("call_id", max_length=256)
    refer_to = fields.text("refer_to", max_length=4096, trim=False)
    fields.text("referred_by", max_length=1024, required=False, allow_blank=True)
    fields.string_map("headers", max_items=50, max_length=1024)
    target = refused = None
    if refer_to is not None:
        try:
            target = parse_refer_to(refer_to)
        except ReferToError as exc:
            refused = exc
    digits = target.extension if target is not None else None
    found = refer_lookup(ApiKey.prefix_of(raw_key), digits)
    if found is None:
        raise _unknown_key()
    key, center, owner = found
    key.check_telephony(raw_key)
    touch_api_key_id(key.id)
    fields.raise_if_any()
    try:
        if refused is not None:
            raise refused
        assert target is not None
        destination = destination_for(center, target, owner)
    except ReferToError as exc:
        # HTTP carries the refusal; `sip_status` is what the switch answers the REFER with.
        http_status = exc.sip_status if exc.sip_status in (400, 403, 404) else 409
        raise ApiError(http_status, exc.code, exc.message, sip_status=exc.sip_status) from None
    body: dict[str, Any] = {"sip_status": 202, "destination": destination.as_dict()}
    if target.replaces is not None:
        body["replaces"] = asdict(target.replaces)
    return JsonResponse(body)
