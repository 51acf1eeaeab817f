"""Retell AI as SPEC.md §3 and §5.3 describe it."""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import quote

from retell.types import AgentListParams, LlmUpdateParams, PhoneNumberImportParams, PhoneNumberUpdateParams

from tests.virtual_agents.fake_providers.definitions import _typeddict_fields, only
from tests.virtual_agents.fake_providers.server import (
    FakeProvider,
    RecordedRequest,
    Reply,
    Route,
    check,
    get,
    need,
    optional,
    route,
)

TOOL_PREFIX = "voiso_transfer_"
AGENT_FIELDS = {"inbound_agents", "outbound_agents", "nickname", "inbound_webhook_url"}


class RetellFake(FakeProvider):
    provider = "retell"

    # (agent_id, agent_name, channel, llm_id or None for a conversation-flow agent)
    AGENTS = (
        ("agent_01", "Sales bot", "voice", "llm_01"),
        ("agent_02", "Support bot", "voice", "llm_02"),
        ("agent_03", None, "voice", "llm_03"),  # unnamed: listed under its id
        ("agent_04", "Billing bot", "voice", "llm_04"),
        ("agent_05", "Flow bot", "voice", None),
        ("agent_06", "Chat bot", "chat", "llm_06"),
    )
    FLOW_AGENT = "agent_05"
    # How a second import of the same number is refused (UNCONFIRMED, SPEC §5.4).
    duplicate_status = 409

    def seed(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {}
        self.llms: dict[str, dict[str, Any]] = {}
        for index, (agent_id, name, channel, llm_id) in enumerate(self.AGENTS):
            engine = (
                {"type": "retell-llm", "llm_id": llm_id, "version": 0}
                if llm_id
                else {"type": "conversation-flow", "conversation_flow_id": f"flow_{agent_id}", "version": 0}
            )
            self.agents[agent_id] = {
                "agent_id": agent_id,
                "agent_name": name,
                "channel": channel,
                "version": 0,
                "response_engine": engine,
                "voice_id": "11labs-Adrian",
                "last_modification_timestamp": 1_760_000_000_000 - index,
            }
            if llm_id:
                self.llms[llm_id] = {
                    "llm_id": llm_id,
                    "version": 0,
                    "model": "gpt-4.1",
                    "general_prompt": f"You are {name or 'a bot'} at Acme.",
                    "general_tools": [
                        {"type": "end_call", "name": "end_call", "description": "End the call politely."},
                        {
                            "type": "custom",
                            "name": "lookup_order",
                            "description": "Look up an order by number.",
                            "url": "https://crm.acme.example/orders",
                            "speak_during_execution": True,
                            "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
                        },
                    ],
                    "last_modification_timestamp": 1_760_000_000_000,
                }
        self.phone_numbers: dict[str, dict[str, Any]] = {}

    def routes(self) -> list[Route]:
        return [
            route("GET", r"/get-concurrency", self.get_concurrency),
            # Bodies as retell-sdk 6.2.13 declares them (definitions.py); its params types hold
            # the query parameters too, which are left out of the body here.
            route(
                "POST",
                r"/v2/list-agents",
                self.list_agents,
                query={"limit", "pagination_key", "sort_order"},
                body=only(_typeddict_fields(AgentListParams), "filter_criteria"),
            ),
            route("GET", r"/get-agent/([^/]+)", self.get_agent),
            route("GET", r"/get-retell-llm/([^/]+)", self.get_llm),
            route(
                "PATCH",
                r"/update-retell-llm/([^/]+)",
                self.update_llm,
                query={"version"},
                body={k: v for k, v in _typeddict_fields(LlmUpdateParams).items() if k != "version"},
            ),
            route("POST", r"/import-phone-number", self.import_phone_number, body=PhoneNumberImportParams),
            route(
                "PATCH",
                r"/update-phone-number/([^/]+)",
                self.update_phone_number,
                body=PhoneNumberUpdateParams,
            ),
            route("DELETE", r"/delete-phone-number/([^/]+)", self.delete_phone_number),
        ]

    def check_auth(self, headers: dict[str, str]) -> None:
        self.bearer(headers)

    def error_body(self, status: int, message: str) -> Any:
        return {"status": "error", "message": message}

    def get_concurrency(self, request: RecordedRequest) -> Any:
        return {"current_concurrency": 0, "concurrency_limit": 20, "base_concurrency": 20}

    # --- agents ------------------------------------------------------------------------

    def list_agents(self, request: RecordedRequest) -> Any:
        body = request.json
        need(body, "filter_criteria.channel.op", equals="eq")
        need(body, "filter_criteria.channel.type", equals="string")
        channel = need(body, "filter_criteria.channel.value", str)
        # Paging is query only (retell-sdk `agent.list`); the body type above refuses it there.
        limit = request.query.get("limit", "1000")
        check(limit.isdigit() and 1 <= int(limit) <= 1000, f"limit is {limit!r}")
        rows = [
            a for a in sorted(self.agents.values(), key=lambda a: a["agent_id"]) if a["channel"] == channel
        ]
        key = request.query.get("pagination_key")
        if key is not None:
            ids = [row["agent_id"] for row in rows]
            check(key in ids, f"pagination_key {key!r} was never handed out")
            rows = rows[ids.index(key) + 1 :]
        page = rows[: int(limit)]
        fields = ("agent_id", "agent_name", "channel", "version", "last_modification_timestamp")
        return {
            "items": [{f: row[f] for f in fields} for row in page],
            "has_more": len(rows) > len(page),
            "pagination_key": page[-1]["agent_id"] if page else None,
        }

    def get_agent(self, request: RecordedRequest, agent_id: str) -> Any:
        return copy.deepcopy(self._agent(agent_id))

    def _agent(self, agent_id: str) -> dict[str, Any]:
        if agent_id not in self.agents:
            raise self.missing(f"Agent {agent_id}")
        return self.agents[agent_id]

    # --- LLMs --------------------------------------------------------------------------

    def get_llm(self, request: RecordedRequest, llm_id: str) -> Any:
        return copy.deepcopy(self._llm(llm_id))

    def update_llm(self, request: RecordedRequest, llm_id: str) -> Any:
        llm = self._llm(llm_id)
        body = request.json
        check(set(body) == {"general_tools"}, f"update writes more than general_tools: {sorted(body)}")
        tools = need(body, "general_tools", list)
        names = [need(tool, "name", str) for tool in tools]
        for name in names:
            check(
                re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name), f"tool name {name!r} is not [a-zA-Z0-9_-]{{1,64}}"
            )
        check(len(set(names)) == len(names), f"tool names are not unique: {names}")
        # The PATCH replaces general_tools whole: every tool that is not ours must come back as it was.
        for tool in llm["general_tools"]:
            if not tool["name"].startswith(TOOL_PREFIX):
                check(tool in tools, f"general_tools dropped or changed the customer's tool {tool['name']!r}")
        for index, tool in enumerate(tools):
            if tool["name"].startswith(TOOL_PREFIX):
                self._check_transfer_tool(tool, f"general_tools.{index}")
        llm["general_tools"] = copy.deepcopy(tools)
        llm["version"] += 1
        return copy.deepcopy(llm)

    def _check_transfer_tool(self, tool: dict[str, Any], where: str) -> None:
        check(get(tool, "type") == "transfer_call", f"{where}.type must be 'transfer_call'")
        check(get(tool, "transfer_destination.type") == "predefined", f"{where}: destination not predefined")
        self.sip_uri(need(tool, "transfer_destination.number", str), f"{where}.transfer_destination.number")
        # Cold SIP REFER only: warm modes make Retell dial out itself.
        need(tool, "transfer_option.type", equals="cold_transfer")
        need(tool, "transfer_option.cold_transfer_mode", equals="sip_refer")

    def _llm(self, llm_id: str) -> dict[str, Any]:
        if llm_id not in self.llms:
            raise self.missing(f"Retell LLM {llm_id}")
        return self.llms[llm_id]

    # --- phone numbers -----------------------------------------------------------------

    def import_phone_number(self, request: RecordedRequest) -> Any:
        body = request.json
        number = need(body, "phone_number", str)
        check(re.fullmatch(r"\+?[0-9A-Za-z]+", number), f"phone_number {number!r} is not an identifier")
        uri = need(body, "termination_uri", str)
        check(uri == self.sip_domain, f"termination_uri must be {self.sip_domain}, not {uri!r}")
        need(body, "transport", str)
        optional(body, "transport", {"TLS", "TCP", "UDP"})
        need(body, "inbound_agents.0.agent_id", str)
        need(body, "outbound_agents.0.agent_id", str)
        self._check_agent_fields(body)
        if number in self.phone_numbers:
            raise self.refuse(self.duplicate_status, f"Phone number {number} already exists")
        self.phone_numbers[number] = {
            "phone_number": number,
            "phone_number_type": "custom",
            "termination_uri": uri,
            "transport": body["transport"],
            **{key: copy.deepcopy(body[key]) for key in AGENT_FIELDS if key in body},
        }
        return copy.deepcopy(self.phone_numbers[number])

    def update_phone_number(self, request: RecordedRequest, number: str) -> Any:
        self._check_encoded(request, number)
        stored = self._phone_number(number)
        unknown = sorted(set(request.json) - AGENT_FIELDS)
        check(not unknown, f"unknown fields {unknown}")
        self._check_agent_fields(request.json)
        stored.update(copy.deepcopy(request.json))
        return copy.deepcopy(stored)

    def delete_phone_number(self, request: RecordedRequest, number: str) -> Reply:
        self._check_encoded(request, number)
        self._phone_number(number)
        del self.phone_numbers[number]
        return Reply(204)

    def _check_agent_fields(self, body: dict[str, Any]) -> None:
        for key in ("inbound_agents", "outbound_agents"):
            if key not in body:
                continue
            agents = need(body, key, list)
            for index, item in enumerate(agents):
                agent_id = need(item, "agent_id", str)
                if agent_id not in self.agents:
                    raise self.refuse(422, f"{key}.{index}.agent_id: agent {agent_id} not found")
            weights = [item.get("weight", 1) for item in agents]
            check(abs(sum(weights) - 1) < 1e-9, f"{key} weights must sum to 1, not {weights}")

    def _check_encoded(self, request: RecordedRequest, number: str) -> None:
        raw = request.path.rsplit("/", 1)[1]
        # As retell-sdk encodes a path segment (RFC 3986): `+` as is, `/`, `?`, `#`, `%` and spaces escaped.
        check(
            raw == quote(number, safe="!$&'()*+,;=:@"),
            f"the number in the path is not encoded as the SDK does: {raw!r}",
        )

    def _phone_number(self, number: str) -> dict[str, Any]:
        if number not in self.phone_numbers:
            raise self.missing(f"Phone number {number}")
        return self.phone_numbers[number]
