"""One error shape for the whole API: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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


def _first_code(codes: Any) -> str | None:
    if isinstance(codes, dict):
        for value in codes.values():
            found = _first_code(value)
            if found:
                return found
    elif isinstance(codes, list):
        for value in codes:
            found = _first_code(value)
            if found:
                return found
    elif isinstance(codes, str) and codes not in _GENERIC_CODES:
        return codes
    return None


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
        code = _first_code(exc.get_codes()) or "validation_error"
        fields = _flatten_messages(detail)
        first = next(iter(fields.values()), ["Invalid input."])
        is_message_list = isinstance(first, list) and first and isinstance(first[0], str)
        message = first[0] if is_message_list else "Invalid input."
        response.data = error_body(code, message, fields=fields)
        return response
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = error_body(code, str(exc.detail))
    return response
