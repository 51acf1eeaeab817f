"""OpenAPI description: our authentication, and the error answers every operation can give.

`ApiAutoSchema` (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS) adds to each operation the refusals it
can answer, all in the one error shape (voiso_byob.api_errors), so a view declares only what is
particular to it. A response a view declares without a body (a description of its codes) gets
the error shape as its body.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `validation_error` or a specific code, with `fields` (name → messages).",
    "401": "No, unknown or revoked API key (or no session).",
    "403": "Not allowed: the role or the key's scope, or BYOB is not enabled for the contact center.",
    "404": "No such object in this contact center.",
    "409": "Conflicts with the current state.",
    "413": "The body is too large.",
    "415": "The body is not application/json.",
    "429": (
        "`rate_limited`: this API key's requests exceed its scope's limit (a token bucket per key); "
        "nothing changed. `Retry-After` and `error.retry_after` say in how many seconds to try again."
    ),
    "502": "The bot provider failed or could not be reached; nothing changed.",
    "503": (
        "`database_unavailable`: the database is not answering (a restart); send the same request "
        "again after the `Retry-After` seconds (also in `error.retry_after`)."
    ),
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable: `not_found`, `validation_error`, …")
    message = serializers.CharField(help_text="For people; may change.")
    fields = serializers.DictField(
        required=False, help_text="Per input field (or `non_field_errors`): a list of messages."
    )
    retry_after = serializers.IntegerField(
        required=False, min_value=1, help_text="With 429 `rate_limited`: seconds to wait, as `Retry-After`."
    )


class ErrorSerializer(serializers.Serializer):
    """Every refusal: `{"error": {"code", "message", "fields"?, …}}`; some endpoints add keys."""

    error = ErrorDetailSerializer()


class ApiAutoSchema(AutoSchema):
    def _get_paginator(self) -> Any:
        # Only a viewset's `list` pages; its other actions (a flow's versions, an integration's
        # agents, a simulation's steps…) answer with the whole array.
        if getattr(self.view, "action", "list") != "list":
            return None
        return super()._get_paginator()

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        error = {"application/json": {"schema": self.resolve_serializer(ErrorSerializer, "response").ref}}
        responses = operation["responses"]
        for status in self._error_statuses(operation):
            responses.setdefault(status, {"description": ERROR_DESCRIPTIONS[status]})
        for status, response in responses.items():
            if status >= "400" and "content" not in response:
                response["content"] = error
        if "429" in responses:
            responses["429"].setdefault("headers", {})["Retry-After"] = {
                "description": "Seconds to wait before the next request (a whole number, rounded up).",
                "schema": {"type": "integer", "minimum": 1},
            }
        return operation

    def _error_statuses(self, operation: dict[str, Any]) -> list[str]:
        statuses = []
        has_body = "requestBody" in operation
        parameters = operation.get("parameters", [])
        if has_body or self.method != "GET" or any(p["in"] == "query" for p in parameters):
            statuses.append("400")
        if any(requirement for requirement in operation.get("security", [])):
            statuses += ["401", "403"]
            if any("ApiKey" in requirement for requirement in operation["security"]):
                statuses.append("429")
        if any(p["in"] == "path" for p in parameters):
            statuses.append("404")
        if has_body:
            statuses.append("415")
        if getattr(self.view, "calls_provider", False) and getattr(self.view, "action", None) not in {
            "list",
            "retrieve",
        }:
            statuses.append("502")
        statuses.append("503")  # every operation reads the database (voiso_byob.db_outage)
        return statuses


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "voiso_byob.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key of this contact center: `Authorization: Bearer vbk_…`",
        }
