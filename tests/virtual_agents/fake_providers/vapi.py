"""Vapi as SPEC.md §2 and §5.2 describe it."""

from __future__ import annotations

import copy
import ipaddress
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from vapi.assistants.client import AssistantsClient
from vapi.phone_numbers.types import CreatePhoneNumbersRequest
from vapi.tools.types import CreateToolsRequest, UpdateToolsRequestBody
from vapi.types.assistant_credentials_item import AssistantCredentialsItem_ByoSipTrunk

from tests.virtual_agents.fake_providers.definitions import camel, sdk_body
from tests.virtual_agents.fake_providers.server import (
    FakeProvider,
    RecordedRequest,
    Route,
    Violation,
    check,
    get,
    need,
    optional,
    route,
)

SEEDED_AT = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
DATE_FILTERS = {f"{field}{op}" for field in ("createdAt", "updatedAt") for op in ("Gt", "Lt", "Ge", "Le")}


class VapiFake(FakeProvider):
    provider = "vapi"

    ASSISTANTS = (
        ("asst-01", "Sales bot"),
        ("asst-02", "Support bot"),
        ("asst-03", None),  # unnamed: listed under its id
        ("asst-04", "Billing bot"),
        ("asst-05", "Night shift bot"),
    )
    # The customer's own tools, attached to every assistant; ours must never displace them.
    CUSTOMER_TOOLS = ("tool-crm", "tool-end-call")

    def seed(self) -> None:
        self._clock = SEEDED_AT
        self.tools: dict[str, dict[str, Any]] = {
            "tool-crm": {
                "id": "tool-crm",
                "type": "function",
                "function": {"name": "lookup_customer", "parameters": {"type": "object"}},
                "createdAt": _iso(SEEDED_AT),
            },
            "tool-end-call": {"id": "tool-end-call", "type": "endCall", "createdAt": _iso(SEEDED_AT)},
        }
        self.assistants: dict[str, dict[str, Any]] = {}
        for index, (assistant_id, name) in enumerate(self.ASSISTANTS):
            created = _iso(SEEDED_AT - timedelta(hours=index))
            self.assistants[assistant_id] = {
                "id": assistant_id,
                "orgId": "org-acme",
                "name": name,
                "createdAt": created,
                "updatedAt": created,
                "firstMessage": "Hello!",
                "model": {
                    "provider": "openai",
                    "model": "gpt-4o",
                    "temperature": 0.3,
                    "messages": [{"role": "system", "content": f"You are {name or 'a bot'} at Acme."}],
                    "toolIds": list(self.CUSTOMER_TOOLS),
                },
                "voice": {"provider": "11labs", "voiceId": "burt"},
            }
        self.credentials: dict[str, dict[str, Any]] = {}
        self.phone_numbers: dict[str, dict[str, Any]] = {}

    def routes(self) -> list[Route]:
        return [
            route("GET", r"/assistant", self.list_assistants, query={"limit", *DATE_FILTERS}),
            route("GET", r"/assistant/([^/]+)", self.get_assistant),
            # Bodies as vapi_server_sdk 3.0.0 declares them (definitions.py). The SDK has no
            # credentials client; its create-credential type is the union member of
            # `credentials` that carries the `provider` discriminant.
            route(
                "PATCH",
                r"/assistant/([^/]+)",
                self.update_assistant,
                body=camel(sdk_body(AssistantsClient.update)),
            ),
            route("POST", r"/credential", self.create_credential, body=AssistantCredentialsItem_ByoSipTrunk),
            route("DELETE", r"/credential/([^/]+)", self.delete_credential),
            route("POST", r"/phone-number", self.create_phone_number, body=CreatePhoneNumbersRequest),
            route("DELETE", r"/phone-number/([^/]+)", self.delete_phone_number),
            route("POST", r"/tool", self.create_tool, body=CreateToolsRequest),
            route("GET", r"/tool/([^/]+)", self.get_tool),
            route("PATCH", r"/tool/([^/]+)", self.update_tool, body=UpdateToolsRequestBody),
            route("DELETE", r"/tool/([^/]+)", self.delete_tool),
        ]

    def check_auth(self, headers: dict[str, str]) -> None:
        self.bearer(headers)

    def error_body(self, status: int, message: str) -> Any:
        phrases = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
        # NestJS style; validation errors carry a list of messages.
        return {
            "message": [message] if status == 400 else message,
            "error": phrases.get(status, "Error"),
            "statusCode": status,
        }

    def now(self) -> str:
        self._clock += timedelta(seconds=1)
        return _iso(self._clock)

    # --- assistants --------------------------------------------------------------------

    def list_assistants(self, request: RecordedRequest) -> Any:
        limit = request.query.get("limit", "100")
        check(limit.isdigit() and int(limit) <= 1000, f"limit must be 0..1000, not {limit!r}")
        rows = sorted(self.assistants.values(), key=lambda a: a["createdAt"], reverse=True)
        for name, value in request.query.items():
            if name in DATE_FILTERS:
                bound = _parse(value, name)
                field, op = name[:-2], name[-2:]
                compare = {
                    "Gt": lambda a, b: a > b,
                    "Lt": lambda a, b: a < b,
                    "Ge": lambda a, b: a >= b,
                    "Le": lambda a, b: a <= b,
                }[op]
                rows = [row for row in rows if compare(_parse(row[field], field), bound)]
        return copy.deepcopy(rows[: int(limit)])

    def get_assistant(self, request: RecordedRequest, assistant_id: str) -> Any:
        return copy.deepcopy(self._assistant(assistant_id))

    def update_assistant(self, request: RecordedRequest, assistant_id: str) -> Any:
        assistant = self._assistant(assistant_id)
        body = request.json
        if "model" in body:
            # PATCH replaces `model` whole, and a model without provider/model is refused (SPEC §2.4).
            model = need(body, "model", dict)
            need(body, "model.provider", str)
            need(body, "model.model", str)
            tool_ids = need(body, "model.toolIds", list)
            for tool_id in tool_ids:
                check(tool_id in self.tools, f"model.toolIds holds unknown tool {tool_id!r}")
            check(len(set(tool_ids)) == len(tool_ids), f"model.toolIds has duplicates: {tool_ids}")
            before = assistant["model"]
            for key, value in before.items():
                if key != "toolIds":
                    check(
                        model.get(key) == value, f"model.{key} was dropped or changed (send the whole model)"
                    )
            for tool_id in before.get("toolIds", []):
                if self.tools.get(tool_id, {}).get("type") != "transferCall":
                    check(tool_id in tool_ids, f"model.toolIds dropped the customer's tool {tool_id!r}")
        assistant.update(copy.deepcopy(body))
        assistant["updatedAt"] = self.now()
        return copy.deepcopy(assistant)

    def _assistant(self, assistant_id: str) -> dict[str, Any]:
        if assistant_id not in self.assistants:
            raise self.missing(f"Couldn't Get Assistant. `assistant` {assistant_id}")
        return self.assistants[assistant_id]

    # --- SIP trunk credential and phone number -----------------------------------------

    def create_credential(self, request: RecordedRequest) -> Any:
        body = request.json
        need(body, "provider", equals="byo-sip-trunk")
        name = need(body, "name", str)
        check(1 <= len(name) <= 40, f"name must be 1..40 characters, not {len(name)}")
        gateways = need(body, "gateways", list)
        check(gateways, "gateways must not be empty")
        for index, gateway in enumerate(gateways):
            ip = need(gateway, "ip", str)
            if "port" in gateway:
                # A JSON number: the SDK types it as a float and sends 5060.0.
                port = need(gateway, "port", (int, float))
                check(port == int(port) and 1 <= port <= 65535, f"gateways.{index}.port {port} out of range")
            optional(gateway, "outboundProtocol", {"udp", "tcp", "tls", "tls/srtp"})
            # SDK defaults: both directions enabled, so an outbound-only gateway must say so.
            if gateway.get("inboundEnabled", True):
                check(
                    _is_ipv4(ip), f"gateways.{index}: an inbound gateway must be an IPv4 address, not {ip!r}"
                )
                netmask = gateway.get("netmask", 32)
                check(
                    isinstance(netmask, int | float) and netmask == int(netmask) and 24 <= netmask <= 32,
                    f"gateways.{index}.netmask must be 24..32, not {netmask!r}",
                )
        check(any(g.get("inboundEnabled", True) for g in gateways), "no inbound gateway for our SIP proxy")
        check(
            any(g.get("outboundEnabled", True) and g["ip"] == self.sip_domain for g in gateways),
            f"no outbound gateway to {self.sip_domain}",
        )
        credential_id = self.new_id("cred-")
        self.credentials[credential_id] = {
            **copy.deepcopy(body),
            "id": credential_id,
            "orgId": "org-acme",
            "createdAt": self.now(),
        }
        return copy.deepcopy(self.credentials[credential_id])

    def delete_credential(self, request: RecordedRequest, credential_id: str) -> Any:
        if credential_id not in self.credentials:
            raise self.missing(f"Credential {credential_id}")
        users = [n["id"] for n in self.phone_numbers.values() if n["credentialId"] == credential_id]
        check(not users, f"credential still used by phone numbers {users}; delete those first")
        return self.credentials.pop(credential_id)

    def create_phone_number(self, request: RecordedRequest) -> Any:
        body = request.json
        need(body, "provider", equals="byo-phone-number")
        number = need(body, "number", str)
        need(body, "numberE164CheckEnabled", equals=False)
        check(
            re.fullmatch(r"\+?[a-zA-Z0-9]+", number), f"number {number!r} does not match ^\\+?[a-zA-Z0-9]+$"
        )
        credential_id = need(body, "credentialId", str)
        check(credential_id in self.credentials, f"credentialId {credential_id!r} does not exist")
        assistant_id = need(body, "assistantId", str)
        if "name" in body:
            check(len(need(body, "name", str)) <= 40, "name is longer than 40 characters")
        if assistant_id not in self.assistants:
            raise self.refuse(400, f"assistantId {assistant_id} not found")
        if any(n["number"] == number for n in self.phone_numbers.values()):
            raise self.refuse(400, f"Number {number} already exists")
        phone_number_id = self.new_id("pn-")
        self.phone_numbers[phone_number_id] = {
            **copy.deepcopy(body),
            "id": phone_number_id,
            "orgId": "org-acme",
            "status": "active",
            "createdAt": self.now(),
        }
        return copy.deepcopy(self.phone_numbers[phone_number_id])

    def delete_phone_number(self, request: RecordedRequest, phone_number_id: str) -> Any:
        if phone_number_id not in self.phone_numbers:
            raise self.missing(f"Phone number {phone_number_id}")
        return self.phone_numbers.pop(phone_number_id)

    # --- tools -------------------------------------------------------------------------

    def create_tool(self, request: RecordedRequest) -> Any:
        body = request.json
        need(body, "type", equals="transferCall")
        self._check_destinations(body)
        tool_id = self.new_id("tool-")
        self.tools[tool_id] = {
            **copy.deepcopy(body),
            "id": tool_id,
            "orgId": "org-acme",
            "createdAt": self.now(),
        }
        return copy.deepcopy(self.tools[tool_id])

    def get_tool(self, request: RecordedRequest, tool_id: str) -> Any:
        return copy.deepcopy(self._tool(tool_id))

    def update_tool(self, request: RecordedRequest, tool_id: str) -> Any:
        tool = self._tool(tool_id)
        # The PATCH body is a oneOf discriminated by type: the SDK always sends it, and it must
        # name the tool's own type.
        need(request.json, "type", equals=tool["type"])
        self._check_destinations(request.json)
        tool.update(copy.deepcopy(request.json))
        return copy.deepcopy(tool)

    def delete_tool(self, request: RecordedRequest, tool_id: str) -> Any:
        self._tool(tool_id)
        users = [a["id"] for a in self.assistants.values() if tool_id in a["model"].get("toolIds", [])]
        check(not users, f"tool still attached to {users}; detach it first")
        return self.tools.pop(tool_id)

    def _check_destinations(self, body: dict[str, Any]) -> None:
        destinations = need(body, "destinations", list)
        for index, destination in enumerate(destinations):
            where = f"destinations.{index}"
            check(get(destination, "type") == "sip", f"{where}.type must be 'sip'")
            self.sip_uri(need(destination, "sipUri", str), f"{where}.sipUri")
            # A blind REFER: warm modes and "dial" would make Vapi dial out itself.
            need(destination, "transferPlan.mode", equals="blind-transfer")
            # sipVerb is an object in the spec (the SDK types it as one) and defaults to REFER:
            # a string there is refused by the type check, and leaving it out means REFER.

    def _tool(self, tool_id: str) -> dict[str, Any]:
        if tool_id not in self.tools:
            raise self.missing(f"Tool {tool_id}")
        return self.tools[tool_id]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise Violation(f"{name} is not an ISO-8601 date: {value!r}") from None


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True
