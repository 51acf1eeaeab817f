"""The database out of reach during a request (voiso_byob.db_outage): 503 with Retry-After, one log line.

Here the outage is a view's query raising what Django raises when PostgreSQL is down; the real
restart, under load, is tests/faults/test_faults.py.
"""

from __future__ import annotations

import logging
from unittest import mock

import pytest
from django.db import InterfaceError, OperationalError
from django.test import Client

from tests.conftest import bearer, error_code
from voiso_byob.db_outage import RETRY_AFTER_SECONDS, DatabaseUnavailableMiddleware
from voiso_byob.log_filters import RefusedRequestOneLine

REFUSED = OperationalError(
    'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?"
)


def down(target: str, exc: Exception = REFUSED) -> mock._patch:
    return mock.patch(target, side_effect=exc)


def request_lines(caplog) -> list[logging.LogRecord]:
    """django.request's records as the console handler prints them (after its filter)."""
    records = [r for r in caplog.records if r.name == "django.request"]
    for record in records:
        RefusedRequestOneLine().filter(record)
    return records


def test_the_events_api_answers_503_in_the_error_shape(acme, api_keys, caplog) -> None:
    switch = Client(raise_request_exception=False, **bearer(api_keys["telephony"]))
    with down("reporting.api.remembered_api_key"):
        response = switch.post("/api/v1/telephony/events", {"events": []}, content_type="application/json")
    assert response.status_code == 503 and response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert error_code(response) == "database_unavailable"
    assert response.json()["error"]["retry_after"] == RETRY_AFTER_SECONDS
    [line] = request_lines(caplog)
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert line.getMessage() == (
        "Service Unavailable: /api/v1/telephony/events (database unavailable: OperationalError: "
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused)'
    )


@pytest.mark.parametrize("path", ["/api/v1/telephony/route", "/api/v1/telephony/refer"])
def test_route_and_refer_answer_503(acme, api_keys, path: str) -> None:
    switch = Client(raise_request_exception=False, **bearer(api_keys["telephony"]))
    with down("routing.hotpath._fetch", InterfaceError("connection already closed")):
        response = switch.post(
            path,
            {"call_id": "c-1", "to": "+442079460018", "from": "+442079460999", "refer_to": "<sip:4323@acme>"},
            content_type="application/json",
        )
    assert response.status_code == 503 and error_code(response) == "database_unavailable"
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)


def test_a_drf_endpoint_answers_503(acme, api_keys) -> None:
    client = Client(raise_request_exception=False, **bearer(api_keys["admin"]))
    with down("voiso_byob.authentication.ApiKeyAuthentication.authenticate"):
        response = client.get("/api/v1/queues/")
    assert response.status_code == 503 and error_code(response) == "database_unavailable"


def test_a_portal_page_answers_a_plain_503_page(admin) -> None:
    admin.client.raise_request_exception = False
    with down(
        "voiso_byob.views.paginate", OperationalError("terminating connection due to administrator command")
    ):
        response = admin.client.get("/members/")
    assert response.status_code == 503 and response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response["Content-Type"].startswith("text/html") and b"Back in a moment" in response.content


def test_outside_the_view_the_error_handler_answers_503(acme, api_keys, caplog) -> None:
    switch = Client(raise_request_exception=False, **bearer(api_keys["telephony"]))
    # As if raised where the middleware does not look (another middleware): Django's handler500.
    with (
        mock.patch.object(DatabaseUnavailableMiddleware, "process_exception", return_value=None),
        down("reporting.api.remembered_api_key"),
    ):
        response = switch.post("/api/v1/telephony/events", {"events": []}, content_type="application/json")
    assert response.status_code == 503 and error_code(response) == "database_unavailable"
    [line] = request_lines(caplog)
    assert line.exc_info is None and "database unavailable: OperationalError" in line.getMessage()


def test_other_faults_stay_500_with_their_traceback(acme, api_keys, caplog) -> None:
    switch = Client(raise_request_exception=False, **bearer(api_keys["telephony"]))
    with down("reporting.api.remembered_api_key", RuntimeError("a real fault")):
        response = switch.post("/api/v1/telephony/events", {"events": []}, content_type="application/json")
    assert response.status_code == 500 and error_code(response) == "server_error"
    [line] = request_lines(caplog)
    assert line.levelno == logging.ERROR and line.exc_info is not None
