"""Plain Django views for the SIP layer's hot endpoints, with the REST API's error shape.

The telephony endpoints answer every call setup and every REFER, so they skip DRF's request
wrapping, content negotiation and serializers (a third of their time when measured) and
validate their few fields here. Everything a client sees stays the same as on the rest of
the API: `{"error": {"code", "message", "fields"?}}`, the same codes and statuses, and the
endpoints are still in the OpenAPI schema (`documented_by` lends them a DRF view's schema).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.views import APIView

from voiso_byob import rate_limits
from voiso_byob.jsontext import dumps_native
from voiso_byob.models import ApiKeyScope, hash_api_key
from voiso_byob.rate_limits import RateLimited

PlainView = Callable[[HttpRequest], HttpResponse]


class ApiError(Exception):
    """An answer in the API's error shape, raised from anywhere inside a plain view."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> JsonResponse:
        body = {"error": {"code": self.code, "message": self.message, **self.extra}}
        response = JsonResponse(body, status=self.status)
        if self.status == 401:
            response["WWW-Authenticate"] = "Bearer"
        return response


def json_response(body: dict[str, Any], status: int = 200) -> HttpResponse:
    """`body` as an application/json answer, encoded by the json module's C encoder built once
    (voiso_byob.jsontext). JsonResponse builds a DjangoJSONEncoder per answer: measured, a tenth
    of a telephony route answer's CPU. The hot endpoints' answers hold only JSON's own types; any
    other value goes through JsonResponse, so it is written exactly as before."""
    try:
        content = dumps_native(body)
    except (TypeError, ValueError):
        return JsonResponse(body, status=status)
    return HttpResponse(content.encode(), content_type="application/json", status=status)


def sip_status_for(http_status: int) -> int:
    """What the switch answers the SIP request with when a telephony refusal names no SIP status.

    400 and 404 describe the SIP request the switch relays (a Refer-To that does not parse, a
    number we do not have). Anything else (a key that is wrong, revoked or of another scope, a
    method or a content type the endpoint does not take) is the switch's set-up failing, not the
    caller's request: 500 Server Internal Error, which no UA reads as "fix your request".
    """
    return http_status if http_status in (400, 404) else 500


def plain_api_view(
    *, schema: type[APIView], answers_sip: bool = False
) -> Callable[[Callable[..., HttpResponse]], PlainView]:
    """POST-only, CSRF-exempt (API keys, no cookies), ApiError → its JSON answer, RateLimited →
    429 `rate_limited` with `Retry-After` (and `sip_status` 503 with `answers_sip`).

    `schema` is a DRF view that carries the endpoint's drf-spectacular description; the
    schema generator reads `view.cls`, so the endpoint is documented without being served by DRF.
    With `answers_sip`, every refusal carries `error.sip_status`, what the switch answers the SIP
    request with: the view's own where it set one, else `sip_status_for` the HTTP status.
    """

    def decorate(view: Callable[..., HttpResponse]) -> PlainView:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest) -> HttpResponse:
            headers: dict[str, str] = {}
            try:
                try:
                    if request.method != "POST":
                        headers["Allow"] = "POST, OPTIONS"
                        raise ApiError(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
                    return view(request)
                except RateLimited as limited:
                    headers["Retry-After"] = str(limited.retry_after)
                    # The switch answers with 503 Service Unavailable and the same Retry-After.
                    sip = {"sip_status": rate_limits.SIP_STATUS} if answers_sip else {}
                    raise ApiError(
                        429, rate_limits.CODE, str(limited), retry_after=limited.retry_after, **sip
                    ) from None
            except ApiError as exc:
                if answers_sip:
                    exc.extra.setdefault("sip_status", sip_status_for(exc.status))
                response = exc.response()
                for name, value in headers.items():
                    response[name] = value
                return response

        wrapper.cls = schema  # type: ignore[attr-defined]
        wrapper.initkwargs = {}  # type: ignore[attr-defined]
        return wrapper

    return decorate


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object, or the same 415/400 answers DRF's parser gives."""
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", f'Unsupported media type "{content_type}" in request.')
    if not request.body:
        return {}  # as DRF: an empty body is an empty object, and its fields are then missing
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "parse_error", f"JSON parse error - {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "invalid",
            "Invalid data. Expected a dictionary.",
            fields={"non_field_errors": ["Invalid data. Expected a dictionary."]},
        )
    return data


# --- API key (telephony scope), from a row the endpoint's own query returned -----------


def bearer_token(request: HttpRequest) -> str:
    """The raw key of `Authorization: Bearer <key>`, with ApiKeyAuthentication's answers."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    parts = header.split()
    if not parts or parts[0].lower() != "bearer":
        raise ApiError(401, "not_authenticated", "Authentication credentials were not provided.")
    if len(parts) != 2:
        raise ApiError(401, "invalid_api_key", "Authorization header must be 'Bearer <api key>'.")
    if not parts[1].isascii():
        raise ApiError(401, "invalid_api_key", "Invalid API key.")
    return parts[1]


@dataclass(frozen=True, slots=True)
class KeyRow:
    """The columns of an API key the telephony query returns beside its answer."""

    id: Any
    hashed_key: str
    scope: str
    is_revoked: bool

    def check_telephony(self, raw: str) -> None:
        """Same answers as ApiKeyAuthentication + TelephonyAccess."""
        if not secrets.compare_digest(self.hashed_key, hash_api_key(raw)):
            raise ApiError(401, "invalid_api_key", "Invalid API key.")
        if self.is_revoked:
            raise ApiError(401, "revoked_api_key", "This API key has been revoked.")
        if self.scope != ApiKeyScope.TELEPHONY:
            raise ApiError(403, "permission_denied", "This endpoint needs an API key with scope 'telephony'.")


# --- fields --------------------------------------------------------------------------


class Fields:
    """Collects field errors the way DRF words them; `raise_if_any()` answers 400 with all of them."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.errors: dict[str, list[str]] = {}

    def _fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def text(
        self,
        name: str,
        *,
        max_length: int,
        required: bool = True,
        allow_blank: bool = False,
        trim: bool = True,
    ) -> str | None:
        if name not in self.data:
            if required:
                self._fail(name, "This field is required.")
            return None
        value = self.data[name]
        if value is None:
            self._fail(name, "This field may not be null.")
            return None
        if not isinstance(value, str):
            self._fail(name, "Not a valid string.")
            return None
        if trim:
            value = value.strip()
        if not value and not allow_blank:
            self._fail(name, "This field may not be blank.")
            return None
        if len(value) > max_length:
            self._fail(name, f"Ensure this field has no more than {max_length} characters.")
            return None
        return value

    def datetime(self, name: str) -> datetime | None:
        """RFC 3339; without an offset it is taken as UTC (the API's time zone)."""
        value = self.data.get(name)
        if value is None:
            return None
        parsed: datetime | None = None
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                parsed = None
        if parsed is None:
            self._fail(name, "Datetime has wrong format. Use one of these formats instead: RFC 3339.")
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

    def string_map(self, name: str, *, max_items: int, max_length: int) -> dict[str, str] | None:
        if name not in self.data:
            return None
        value = self.data[name]
        if not isinstance(value, dict):
            self._fail(name, f'Expected a dictionary of items but got type "{type(value).__name__}".')
            return None
        if len(value) > max_items:
            self._fail(name, f"At most {max_items} headers.")
            return None
        result: dict[str, str] = {}
        for key, item in value.items():
            # As DRF's CharField child: numbers become text, anything else is refused.
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self._fail(name, f"{key}: Not a valid string.")
                continue
            text = str(item).strip()
            if len(text) > max_length:
                self._fail(name, f"{key}: Ensure this field has no more than {max_length} characters.")
                continue
            result[str(key)] = text
        return result

    def raise_if_any(self) -> None:
        if self.errors:
            first = next(iter(self.errors.values()))[0]
            raise ApiError(400, "validation_error", first, fields=self.errors)
