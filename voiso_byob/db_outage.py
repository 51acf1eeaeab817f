"""The database out of reach (restarting, unreachable, out of connections): 503 with Retry-After.

A request that meets a dead database connection raises Django's OperationalError or InterfaceError
(psycopg's, wrapped). Left alone that is a 500 with a traceback in the log, which tells the SIP layer
nothing useful. Instead the API answers 503 `database_unavailable` in its error shape with a
`Retry-After`, the portal a plain 503 page, and the log gets one line per request (voiso_byob.log_filters).
Nothing half-done survives: event batches are one transaction each, and a retry of the same batch
counts the ids that did get stored as duplicates. Django checks a kept connection before reusing
it (settings: CONN_HEALTH_CHECKS), so workers reconnect by themselves once the database is back.

`DatabaseUnavailableMiddleware` answers for a view's exception; `voiso_byob.api_errors.handler500`
for one raised outside the view (a middleware reading the session, say).
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

from voiso_byob.api_errors import error_body, is_api_path

# A PostgreSQL restart takes a second or two; a client that waits this long usually gets through.
RETRY_AFTER_SECONDS = 2


def is_database_unavailable(exc: BaseException | None) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)


def reason(exc: BaseException) -> str:
    """The exception's class and first line: what the log keeps instead of a traceback."""
    cause = exc.__cause__ or exc
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first}"[:300]


def unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    # The log filter reads this to write the request's line with its reason, without a traceback.
    request.database_unavailable = reason(exc)  # type: ignore[attr-defined]
    if is_api_path(request):
        response: HttpResponse = JsonResponse(
            error_body(
                "database_unavailable",
                f"The database is not answering; send the same request again in {RETRY_AFTER_SECONDS} s. "
                "Event ids already stored count as duplicates.",
                retry_after=RETRY_AFTER_SECONDS,
            ),
            status=503,
        )
    else:
        # No request context: its processors read the database.
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_unavailable(exception):
            return None
        return unavailable_response(request, exception)
