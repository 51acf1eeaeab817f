"""One error shape for the whole API: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from voiso_byob import rate_limits
from voiso_byob.errors import DomainError

# Field-level codes raised by validators that deserve to be the top-level code.
_GENERIC_CODES = {
    "invalid",
    "required",
    "null",
    "blank",
    "max_length",
    "min_length",
    "does_not_exist",
    "incorrect_type",
    "invalid_choice",
    "not_a_list",
    "max_value",
    "min_value",
    "unique",
    "max_string_length",
    "max_digits",
    "empty",
    "max_decimal_places",
    "date",
    "datetime",
    "parse_error",
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _leaf_errors(detail: Any) -> list[ErrorDetail]:
    """Every error message in `detail` (nested dicts and lists), in order."""
    if isinstance(detail, dict):
        return [leaf for value in detail.values() for leaf in _leaf_errors(value)]
    if isinstance(detail, list):
        return [leaf for value in detail for leaf in _leaf_errors(value)]
    return [detail] if isinstance(detail, ErrorDetail) else []


def _headline(detail: Any) -> tuple[str, str]:
    """The top-level code and message: the first error with a specific code, else the first error.

    Code and message come from the same error, so a client reading `message` learns what `code`
    names (they used to come from different fields: a bad `queue` filter beside a bad cursor
    answered `invalid_cursor` with the queue's message).
    """
    leaves = _leaf_errors(detail)
    for leaf in leaves:
        if leaf.code and leaf.code not in _GENERIC_CODES:
            return str(leaf.code), str(leaf)
    return "validation_error", (str(leaves[0]) if leaves else "Invalid input.")


def _flatten_messages(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _flatten_messages(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten_messages(value) for value in detail]
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        fields = {exc.field: [exc.message]} if exc.field else None
        body = error_body(exc.code, exc.message, **({"fields": fields} if fields else {}))
        return Response(body, status=exc.status_code)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        code, message = _headline(detail)
        response.data = error_body(code, message, fields=_flatten_messages(detail))
        return response
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        # DRF has set Retry-After to the same whole seconds (ceil).
        response.data = error_body(rate_limits.CODE, rate_limits.message(exc.wait), retry_after=exc.wait)
        return response
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = error_body(code, str(exc.detail))
    return response


# --- Django's own error pages, for requests under /api/ ----------------------------------------
# A URL that matches no pattern (`/api/v1/webhooks/vapi/not-a-uuid/`), a request Django refuses
# before any view (a malformed multipart body) or an unhandled exception never reaches DRF's
# handler above; under /api/ they still answer in the error shape, elsewhere with the portal's pages.


def is_api_path(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request):
        return _json_error(400, "bad_request", "The request could not be read.")
    return defaults.bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request):
        return _json_error(403, "permission_denied", "You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request):
        return _json_error(404, "not_found", "Not found.")
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    # Called while the exception is being handled: the database out of reach is a 503 (db_outage).
    from voiso_byob import db_outage

    exc = sys.exc_info()[1]
    if db_outage.is_database_unavailable(exc):
        assert exc is not None
        return db_outage.unavailable_response(request, exc)
    if is_api_path(request):
        return _json_error(500, "server_error", "Server error.")
    return defaults.server_error(request)
