"""The OpenAPI schema declares what the API really answers (issue #12, item 8)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

ERROR_REF = {"$ref": "#/components/schemas/Error"}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict[str, Any]):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def ok_schema(schema: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    responses = schema["paths"][path][method]["responses"]
    ok = next(code for code in responses if code.startswith("2"))
    return responses[ok]["content"]["application/json"]["schema"]


def test_the_calls_list_is_one_keyset_page(schema: dict[str, Any]) -> None:
    assert ok_schema(schema, "/api/v1/calls/", "get") == {"$ref": "#/components/schemas/CallPage"}
    page = schema["components"]["schemas"]["CallPage"]
    assert set(page["properties"]) == {"next", "results"}
    assert page["properties"]["results"]["type"] == "array"


@pytest.mark.parametrize(
    ("path", "method", "item"),
    [
        ("/api/v1/flows/{id}/versions/", "get", "FlowVersion"),
        ("/api/v1/integrations/{id}/agents/", "get", "ProviderAgent"),
        ("/api/v1/virtual-agents/{id}/check_handoffs/", "get", "HandoffCheckRow"),
        ("/api/v1/flows/{id}/simulate/", "post", "SimulationStep"),
        ("/api/v1/flows/{id}/validate/", "post", "Problem"),
    ],
)
def test_actions_answering_a_whole_array_are_not_declared_paginated(
    schema: dict[str, Any], path: str, method: str, item: str
) -> None:
    assert ok_schema(schema, path, method) == {
        "type": "array",
        "items": {"$ref": f"#/components/schemas/{item}"},
    }
    names = {p["name"] for p in schema["paths"][path][method].get("parameters", [])}
    assert not names & {"limit", "offset"}


def test_lists_declare_their_paging_bounds(schema: dict[str, Any]) -> None:
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/queues/"]["get"]["parameters"]}
    assert parameters["limit"] == {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}
    assert parameters["offset"]["minimum"] == 0 and parameters["offset"]["maximum"] == 2**31 - 1


def test_request_bodies_are_json_only(schema: dict[str, Any]) -> None:
    for path, method, operation in operations(schema):
        if "requestBody" in operation:
            assert set(operation["requestBody"]["content"]) == {"application/json"}, (method, path)


def test_every_operation_declares_its_refusals_in_the_error_shape(schema: dict[str, Any]) -> None:
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        expected = {"503"}  # the database restarting (voiso_byob.db_outage)
        if operation.get("security") and any(operation["security"]):
            expected |= {"401", "403"}
        if "{" in path:
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"400", "415"}
        assert expected <= set(responses), (method, path, sorted(responses))
        for code, response in responses.items():
            if code >= "400":
                assert response["content"]["application/json"]["schema"] == ERROR_REF, (method, path, code)
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    detail = schema["components"]["schemas"][error["properties"]["error"]["$ref"].rsplit("/", 1)[1]]
    assert set(detail["required"]) == {"code", "message"}


def test_the_telephony_endpoints_declare_the_refusals_a_switch_acts_on(schema: dict[str, Any]) -> None:
    route = schema["paths"]["/api/v1/telephony/route"]["post"]["responses"]
    refer = schema["paths"]["/api/v1/telephony/refer"]["post"]["responses"]
    events = schema["paths"]["/api/v1/telephony/events"]["post"]["responses"]
    assert {"400", "401", "403", "404", "409", "415"} <= set(route)
    assert {"400", "401", "403", "404", "409", "415"} <= set(refer)
    assert {"400", "401", "403", "413", "415"} <= set(events)
