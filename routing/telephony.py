"""The SIP layer's routing endpoints: `POST /api/v1/telephony/route` and `/telephony/refer`.

They answer every call setup and every REFER, so each is at most one SQL query, usually none
(routing.hotpath: the query, and the memory checked against the telephony generation), served
by a plain Django view (voiso_byob.plain_api) — same contract, error shape and OpenAPI
description as the rest of the API, without DRF's per-request machinery.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from routing import hotpath, menu_state
from routing.refer import destination_for
from routing.route import MENU_STATE_SECONDS, RouteRefused, dialled_number, route_call
from routing.serializers import (
    ReferRequestSerializer,
    ReferResponseSerializer,
    RouteRequestSerializer,
    RouteResponseSerializer,
)
from voiso_byob import rate_limits
from voiso_byob.api_key_cache import touch_api_key_id
from voiso_byob.cache import CACHE_DOWN, TELEPHONY_GENERATION_KEY, cache_answered, cache_unavailable
from voiso_byob.errors import DomainError
from voiso_byob.models import ApiKey, ApiKeyScope
from voiso_byob.plain_api import ApiError, Fields, bearer_token, json_object, json_response, plain_api_view
from voiso_byob.sip import REFER_TO_MAX_LENGTH, ReferTo, ReferToError, parse_refer_to

_DIGITS = re.compile(r"^[0-9*#]?$")


class RouteSchema(APIView):
    """Never served: lends `telephony_route` its OpenAPI description."""

    @extend_schema(
        request=RouteRequestSerializer,
        responses={
            200: RouteResponseSerializer,
            404: OpenApiResponse(description="`unknown_number`: not a number of this contact center."),
            409: OpenApiResponse(description="`unknown_call` or `no_published_flow`."),
        },
        summary="Where does this call go?",
        description=(
            "Runs the published flow of the dialled number and returns the verbs the switch executes "
            "(`play`, `gather`, `dial`, `voicemail`, `hangup`). A menu is answered by posting again with "
            "the same `call_id` and `digits`. Unknown number → 404 `unknown_number`; digits for a call not "
            "waiting at a menu → 409 `unknown_call`; a number without a published flow → 409 "
            "`no_published_flow`. Every refusal carries `error.sip_status`, what the switch answers the "
            "call's INVITE with: 404 `unknown_number`, 481 `unknown_call`, 480 `no_published_flow`, 400 a "
            "validation error, 500 a key or request the endpoint does not take (401, 403, 405, 415), 503 "
            "(with the answer's `Retry-After`) a key over its rate limit (429 `rate_limited`). "
            "Needs an API key with scope `telephony`."
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
        responses={
            200: ReferResponseSerializer,
            **{
                status: OpenApiResponse(description="Refused; answer the REFER with `error.sip_status`.")
                for status in (400, 403, 404, 409)
            },
        },
        summary="Is this REFER target valid, and where does it go?",
        description=(
            "Parses `refer_to` (RFC 3261/3515/3966, name-addr or addr-spec, `Replaces`) and resolves it in "
            "the key's contact center. Every refusal is a 4xx whose `error.sip_status` the switch answers "
            "the REFER with. 400 (SIP 400): what does not parse — `malformed_uri`, `unsupported_scheme`, "
            "`multiple_values`, `credentials_in_uri`, `malformed_replaces`, `invalid_number` (a local "
            "number without phone-context), `too_long` and request `validation_error` (empty or over "
            f"{REFER_TO_MAX_LENGTH} characters). 403 (SIP 403): `foreign_domain`, `external_not_allowed`, "
            "`destination_denied` (the center's toll-fraud guard: a country or prefix it does not allow, "
            "a denied number type such as premium rate, or not one of its bots' configured targets), "
            "`header_not_allowed` (a URI header we will not honour, e.g. Route or Call-ID; harmless ones "
            "such as Subject or Priority are ignored), `unsupported_method` (a `method` URI parameter "
            "other than INVITE). 404 (SIP 404): `unknown_extension`, `unknown_number` (a local number "
            "that is not an extension of this center), `invalid_number` (a well-formed number no "
            "numbering plan assigns). HTTP 409: `invalid_number` with SIP 484 (digits missing), "
            "`target_unavailable` with SIP 480 (a disabled or disconnected virtual agent). A key or "
            "request the endpoint does not take (401, 403 `permission_denied`, 405, 415) has SIP 500; a key "
            "over its rate limit (429 `rate_limited`) has SIP 503, with the answer's `Retry-After`. "
            "An external number's `;ext=` and `;isub=` are carried as `destination.extension` and "
            "`destination.subaddress`. Needs an API key with scope `telephony`."
        ),
        tags=["telephony"],
        operation_id="telephony_refer",
    )
    def post(self, request: Any) -> Any:  # pragma: no cover - schema only
        raise NotImplementedError


def _unknown_key() -> ApiError:
    return ApiError(401, "invalid_api_key", "Invalid API key.")


def _stale(inputs: hotpath.Inputs, generation: Any) -> bool:
    return inputs.from_memory and generation != inputs.generation


# --- route -------------------------------------------------------------------------------


@plain_api_view(schema=RouteSchema, answers_sip=True)
def telephony_route(request: HttpRequest) -> HttpResponse:
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
    prefix = ApiKey.prefix_of(raw_key)
    call = _Call(raw_key, fields, call_id, to, number, caller, at or timezone.now(), digits)
    remembered = hotpath.remembered("route", prefix, number or "")
    if remembered is not None:
        try:
            body = _route(remembered, call)
        except (ApiError, DomainError):
            body = None  # decided on remembered inputs: decide again on fresh ones
        if body is not None:
            return json_response(body)
        hotpath.forget("route", prefix, number or "")
        if call.digits is None and call.call_id:
            # A stale attempt may have stored a menu state; the fresh answer decides again.
            menu_state.clear(remembered.center.pk, call.call_id)
    inputs = hotpath.fresh_route(prefix, number or "")
    if inputs is None:
        raise _unknown_key()
    body = _route(inputs, call)
    assert body is not None  # fresh inputs are never stale
    return json_response(body)


@dataclass(slots=True)
class _Call:
    raw_key: str
    fields: Fields
    call_id: str | None
    to: str | None
    number: str | None
    caller: str | None
    at: datetime
    digits: str | None
    is_charged: bool = False  # took its token from the key's rate-limit bucket (never twice)

    def take(self, key_id: Any) -> rate_limits.Take | None:
        """The token to take with the request's one Redis round trip; None: taken, or no limit."""
        if self.is_charged:
            return None
        self.is_charged = True
        return rate_limits.token_for_round_trip(key_id, ApiKeyScope.TELEPHONY)

    def charge(self, key_id: Any) -> None:
        """On the rare path that reads the database: a round trip of its own."""
        if not self.is_charged:
            self.is_charged = True
            rate_limits.check(key_id, ApiKeyScope.TELEPHONY)


def _route(inputs: hotpath.Inputs, call: _Call) -> dict[str, Any] | None:
    """The answer, or None when remembered inputs turned out stale (nothing was stored then)."""
    # Authentication first: a stranger learns nothing about the request's validity.
    inputs.key.check_telephony(call.raw_key)
    touch_api_key_id(inputs.key.id)
    if not inputs.from_memory:
        call.charge(inputs.key.id)
    # From memory, the token is taken in the request's one Redis round trip below; a request refused
    # before it (400, 404, 409) is decided again on fresh inputs, which take it then.
    call.fields.raise_if_any()
    assert call.call_id is not None and call.to is not None and call.caller is not None
    state_key = menu_state.key(inputs.center.pk, call.call_id)
    stored = None
    try:
        if call.digits is not None:
            if inputs.from_memory:
                try:
                    generation, stored = cache.get_then_write(
                        [TELEPHONY_GENERATION_KEY, state_key], take=call.take(inputs.key.id)
                    )
                except CACHE_DOWN as exc:
                    cache_unavailable("telephony generation not checked", exc)
                    return None  # memory cannot be checked: answer from the database
                if _stale(inputs, generation):
                    return None
                if stored is None:
                    stored = menu_state.take_saved(inputs.center.pk, call.call_id)
            else:
                stored = menu_state.load(inputs.center.pk, call.call_id)
        answer = route_call(
            center=inputs.center,
            number=call.number or call.to,
            line=inputs.answer if call.number else None,
            call_id=call.call_id,
            caller=call.caller,
            at=call.at,
            digits=call.digits,
            stored_state=stored,
        )
    except DomainError as exc:
        # A RouteRefused names its SIP answer; any other refusal gets plain_api's default.
        sip = {"sip_status": exc.sip_status} if isinstance(exc, RouteRefused) else {}
        raise ApiError(exc.status_code, exc.code, exc.message, **sip) from None
    if inputs.from_memory and call.digits is None:
        # The one round trip this request makes: check the generation, store the menu state.
        try:
            generation, *_ = cache.get_then_write(
                [TELEPHONY_GENERATION_KEY],
                set_items={state_key: answer.menu_state} if answer.menu_state is not None else None,
                timeout=MENU_STATE_SECONDS,
                take=call.take(inputs.key.id),
            )
        except CACHE_DOWN as exc:
            cache_unavailable("telephony generation not checked", exc)
            return None  # nothing was stored: answer again from the database
        if _stale(inputs, generation):
            return None
    else:
        answer.save_state()
    body: dict[str, Any] = {"call_id": call.call_id, "instructions": answer.instructions}
    if answer.destination is not None:
        body["destination"] = answer.destination
    return body


# --- refer -------------------------------------------------------------------------------


@plain_api_view(schema=ReferSchema, answers_sip=True)
def telephony_refer(request: HttpRequest) -> HttpResponse:
    raw_key = bearer_token(request)
    fields = Fields(json_object(request))
    fields.text("call_id", max_length=256)
    refer_to = fields.text("refer_to", max_length=REFER_TO_MAX_LENGTH, trim=False)
    fields.text("referred_by", max_length=1024, required=False, allow_blank=True)
    fields.string_map("headers", max_items=50, max_length=1024)
    target: ReferTo | None = None
    refused: ReferToError | None = None
    if refer_to is not None:
        try:
            target = parse_refer_to(refer_to)
        except ReferToError as exc:
            refused = exc
    digits = target.extension if target is not None else None
    prefix = ApiKey.prefix_of(raw_key)
    is_charged = False
    inputs = hotpath.remembered("refer", prefix, digits)
    if inputs is not None and not _is_key_of(inputs, raw_key):
        inputs = None  # decided again on fresh inputs
    if inputs is not None:
        # The key is checked before its bucket is charged: a stranger cannot drain it. One round
        # trip: the token, and the generation that says whether the memory is still good.
        generation, is_charged = _generation_taking(inputs.key.id)
        if _stale(inputs, generation):
            inputs = None
    if inputs is None:
        hotpath.forget("refer", prefix, digits)
        inputs = hotpath.fresh_refer(prefix, digits)
        if inputs is None:
            raise _unknown_key()
        inputs.key.check_telephony(raw_key)
    touch_api_key_id(inputs.key.id)
    if not is_charged:
        rate_limits.check(inputs.key.id, ApiKeyScope.TELEPHONY)
    fields.raise_if_any()
    try:
        if refused is not None:
            raise refused
        assert target is not None
        destination = destination_for(inputs.center, target, inputs.answer)
    except ReferToError as exc:
        # HTTP carries the refusal; `sip_status` is what the switch answers the REFER with.
        http_status = exc.sip_status if exc.sip_status in (400, 403, 404) else 409
        raise ApiError(http_status, exc.code, exc.message, sip_status=exc.sip_status) from None
    body: dict[str, Any] = {"sip_status": 202, "destination": destination.as_dict()}
    if target.replaces is not None:
        body["replaces"] = asdict(target.replaces)
    return json_response(body)


def _is_key_of(inputs: hotpath.Inputs, raw_key: str) -> bool:
    try:
        inputs.key.check_telephony(raw_key)
    except ApiError:
        return False
    return True


def _generation_taking(key_id: Any) -> tuple[Any, bool]:
    """(the telephony generation, whether the key's token was taken with it); RateLimited."""
    take = rate_limits.token_for_round_trip(key_id, ApiKeyScope.TELEPHONY)
    try:
        if take is None:
            return cache.get(TELEPHONY_GENERATION_KEY), True
        (generation,) = cache.get_then_write([TELEPHONY_GENERATION_KEY], take=take)
    except CACHE_DOWN as exc:
        cache_unavailable("telephony generation not read", exc)
        # Never equal to a remembered generation: read the database (and take the token then,
        # unless it was taken already).
        return _UNKNOWN, take is None
    cache_answered()
    return generation, True


_UNKNOWN = object()
