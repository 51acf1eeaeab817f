"""`?limit=&offset=` paging of the API's lists, validated: a bad value is a 400, never a default.

DRF's LimitOffsetPagination falls back to its default on anything it cannot read (`?offset=null`
is page one) and passes any limit to the database (`?limit=9223372036854775808` overflowed
PostgreSQL's bigint and SQLite's integer: a 500). Here both are whole numbers in a declared
range, and the schema says so.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import pagination
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.request import Request

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Past the last row a page is simply empty; the bound keeps the number inside every database's integer.
MAX_OFFSET = 2**31 - 1

_WHOLE_NUMBER = re.compile(r"[0-9]{1,64}")  # any length up to absurd: the range check words it


def paging_number(request: Request, name: str, *, minimum: int, maximum: int, default: int) -> int:
    """The query parameter `name` as a whole number in [minimum, maximum]; absent or empty → default."""
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return default
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise ValidationError({name: [ErrorDetail("A valid integer is required.", code="invalid")]})
    value = int(raw)
    if value < minimum:
        message = f"Ensure this value is greater than or equal to {minimum}."
        raise ValidationError({name: [ErrorDetail(message, code="min_value")]})
    if value > maximum:
        message = f"Ensure this value is less than or equal to {maximum}."
        raise ValidationError({name: [ErrorDetail(message, code="max_value")]})
    return value


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    default_limit = DEFAULT_LIMIT
    max_limit = MAX_LIMIT

    def get_limit(self, request: Request) -> int:
        return paging_number(request, "limit", minimum=1, maximum=MAX_LIMIT, default=DEFAULT_LIMIT)

    def get_offset(self, request: Request) -> int:
        return paging_number(request, "offset", minimum=0, maximum=MAX_OFFSET, default=0)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        ranges = {
            "limit": {"minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            "offset": {"minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        }
        for parameter in parameters:
            parameter["schema"].update(ranges.get(parameter["name"], {}))
        return parameters
