"""ElevenLabs Agents (ConvAI) as SPEC.md §1 and §5.1 describe it."""

from __future__ import annotations

import copy
import re
from typing import Any

from elevenlabs.conversational_ai.agents.client import AgentsClient
from elevenlabs.conversational_ai.phone_numbers.client import PhoneNumbersClient
from elevenlabs.conversational_ai.phone_numbers.types import PhoneNumbersCreateRequestBody

from tests.virtual_agents.fake_providers.definitions import sdk_body
from tests.virtual_agents.fake_providers.server import (
    FakeProvider,
    RecordedRequest,
    Reply,
    Route,
    check,
    deep_merge,
    is_ip_or_cidr,
    need,
    optional,
    route,
)

# The one subtree our PATCHes may write; anything beside it would clobber the customer's agent.
OUR_SUBTREE = ("conversation_config", "agent", "prompt", "built_in_tools", "transfer_to_number")
MEDIA_ENCRYPTION = {"disabled", "allowed", "required"}


class ElevenLabsFake(FakeProvider):
    provider = "elevenlabs"

    AGENTS = (
        ("agent_01", "Sales bot"),
        ("agent_02", "Support bot"),
        ("agent_03", "Billing bot"),
        ("agent_04", "Returns bot"),
        ("agent_05", "Night shift bot"),
    )
    # Has a transfer_to_number tool in the deprecated prompt.tools list.
    LEGACY_AGENT = "agent_05"

    def seed(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {}
        for index, (agent_id, name) in enumerate(self.AGENTS):
            self.agents[agent_id] = _agent(agent_id, name, created=1_760_000_000 - index * 3600)
        self.agents[self.LEGACY_AGENT]["conversation_config"]["agent"]["prompt"]["tools"] = [
            {
                "type": "system",
                "name": "transfer_to_number",
                "description": "",
                "params": {"system_tool_type": "transfer_to_number", "transfers": []},
            }
        ]
        self.phone_numbers: dict[str, dict[str, Any]] = {}
        # When set, every agent PATCH also rewrites the prompt (a PATCH that hit another branch).
        self.prompt_drift: str | None = None

    def routes(self) -> list[Route]:
        agent = r"/v1/convai/agents/([^/]+)"
        number = r"/v1/convai/phone-numbers/([^/]+)"
        return [
            route(
                "GET",
                r"/v1/convai/agents",
                self.list_agents,
                query={"page_size", "cursor", "search", "sort_by", "sort_direction"},
            ),
            route("GET", agent, self.get_agent),
            # Bodies as elevenlabs 2.78.0 declares them (definitions.py).
            route("PATCH", agent, self.update_agent, body=sdk_body(AgentsClient.update)),
            route(
                "POST",
                r"/v1/convai/phone-numbers",
                self.create_phone_number,
                body=PhoneNumbersCreateRequestBody,
            ),
            route("PATCH", number, self.update_phone_number, body=sdk_body(PhoneNumbersClient.update)),
            route("DELETE", number, self.delete_phone_number),
        ]

    def check_auth(self, headers: dict[str, str]) -> None:
        key = headers.get("xi-api-key")
        if key is None:
            self.violations.append("xi-api-key header missing")
        if key != self.api_key:
            raise self.refuse(401, "Invalid API key")

    def error_body(self, status: int, message: str) -> Any:
        if status in (400, 422):
            return {"detail": [{"loc": ["body"], "msg": message, "type": "value_error"}]}
        return {"detail": {"status": re.sub(r"\W+", "_", message.lower()), "message": message}}

    # --- agents ------------------------------------------------------------------------

    def list_agents(self, request: RecordedRequest) -> Any:
        size = request.query.get("page_size", "30")
        check(size.isdigit() and 1 <= int(size) <= 100, f"page_size must be 1..100, not {size!r}")
        ordered = sorted(self.agents.values(), key=lambda a: -a["created_at_unix_secs"])
        start = 0
        if "cursor" in request.query:
            cursor = request.query["cursor"]
            check(re.fullmatch(r"cur_\d+", cursor), f"cursor {cursor!r} was never handed out")
            start = int(cursor.removeprefix("cur_"))
        page = ordered[start : start + int(size)]
        has_more = start + int(size) < len(ordered)
        return {
            "agents": [{k: a[k] for k in ("agent_id", "name", "tags", "created_at_unix_secs")} for a in page],
            "has_more": has_more,
            "next_cursor": f"cur_{start + int(size)}" if has_more else None,
        }

    def get_agent(self, request: RecordedRequest, agent_id: str) -> Any:
        return copy.deepcopy(self._agent(agent_id))

    def update_agent(self, request: RecordedRequest, agent_id: str) -> Any:
        agent = self._agent(agent_id)
        node: Any = request.json
        for depth, key in enumerate(OUR_SUBTREE):
            check(isinstance(node, dict) and key in node, f"{'.'.join(OUR_SUBTREE[: depth + 1])} is required")
            others = sorted(set(node) - {key})
            where = ".".join(OUR_SUBTREE[:depth])
            check(not others, f"writes outside our subtree: {where + '.' if where else ''}{others}")
            node = node[key]
        if node is not None:
            self._check_transfer_tool(node)
        deep_merge(agent, request.json)
        if self.prompt_drift is not None:
            agent["conversation_config"]["agent"]["prompt"]["prompt"] = self.prompt_drift
        return copy.deepcopy(agent)

    def _check_transfer_tool(self, tool: Any) -> None:
        need(tool, "name", str)
        need(tool, "params.system_tool_type", equals="transfer_to_number")
        transfers = need(tool, "params.transfers", list)
        for index, transfer in enumerate(transfers):
            where = f"params.transfers.{index}"
            need(transfer, "transfer_destination.type", equals="sip_uri")
            self.sip_uri(need(transfer, "transfer_destination.sip_uri", str), f"{where}.sip_uri")
            check(need(transfer, "condition", str).strip(), f"{where}.condition is empty")
            # Only a SIP REFER can reach a sip_uri destination (SPEC §1.4).
            need(transfer, "transfer_type", equals="sip_refer")

    def _agent(self, agent_id: str) -> dict[str, Any]:
        if agent_id not in self.agents:
            raise self.missing(f"Agent {agent_id}")
        return self.agents[agent_id]

    # --- phone numbers -----------------------------------------------------------------

    def create_phone_number(self, request: RecordedRequest) -> Any:
        body = request.json
        need(body, "provider", equals="sip_trunk")
        number = need(body, "phone_number", str)
        check(re.fullmatch(r"\+?[A-Za-z0-9]+", number), f"phone_number {number!r} is not an identifier")
        need(body, "label", str)
        address = need(body, "outbound_trunk_config.address", str)
        check(address == self.sip_domain, f"outbound address must be the host {self.sip_domain}: {address!r}")
        optional(body, "outbound_trunk_config.transport", {"auto", "udp", "tcp", "tls"})
        need(body, "outbound_trunk_config.transport", str)
        optional(body, "outbound_trunk_config.media_encryption", MEDIA_ENCRYPTION)
        allowed = need(body, "inbound_trunk_config.allowed_addresses", list)
        check(all(is_ip_or_cidr(a) for a in allowed), f"allowed_addresses must be IPs or CIDRs: {allowed}")
        optional(body, "inbound_trunk_config.media_encryption", MEDIA_ENCRYPTION)
        if any(n["phone_number"] == number for n in self.phone_numbers.values()):
            raise self.refuse(400, f"Phone number {number} already exists")
        phone_number_id = self.new_id("phnum_")
        self.phone_numbers[phone_number_id] = {
            "phone_number_id": phone_number_id,
            "phone_number": number,
            "label": body["label"],
            "provider": "sip_trunk",
            "inbound_trunk_config": body.get("inbound_trunk_config"),
            "outbound_trunk_config": body["outbound_trunk_config"],
            "assigned_agent": None,
        }
        return {"phone_number_id": phone_number_id}

    def update_phone_number(self, request: RecordedRequest, phone_number_id: str) -> Any:
        number = self._phone_number(phone_number_id)
        body = request.json
        unknown = sorted(set(body) - {"agent_id", "label", "inbound_trunk_config", "outbound_trunk_config"})
        check(not unknown, f"unknown fields {unknown}")
        if "agent_id" in body:
            agent_id = body["agent_id"]
            check(agent_id is None or isinstance(agent_id, str), "agent_id must be a string or null")
            if agent_id is not None:
                agent = self._agent(agent_id)
                number["assigned_agent"] = {"agent_id": agent_id, "agent_name": agent["name"]}
            else:
                number["assigned_agent"] = None
        if "label" in body:
            number["label"] = body["label"]
        return copy.deepcopy(number)

    def delete_phone_number(self, request: RecordedRequest, phone_number_id: str) -> Reply:
        self._phone_number(phone_number_id)
        del self.phone_numbers[phone_number_id]
        return Reply(200, raw=b"")  # "200, the body may be empty" (SPEC §1.5)

    def _phone_number(self, phone_number_id: str) -> dict[str, Any]:
        if phone_number_id not in self.phone_numbers:
            raise self.missing(f"Phone number {phone_number_id}")
        return self.phone_numbers[phone_number_id]


def _agent(agent_id: str, name: str, *, created: int) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "name": name,
        "tags": ["voice"],
        "created_at_unix_secs": created,
        "conversation_config": {
            "agent": {
                "first_message": f"Hello, this is the {name}.",
                "language": "en",
                "prompt": {
                    "prompt": f"You are the {name} of Acme. Be brief and kind.",
                    "llm": "gemini-2.0-flash",
                    "tool_ids": ["tool_crm_lookup", "tool_order_status"],
                    "built_in_tools": {
                        "end_call": {
                            "name": "end_call",
                            "description": "",
                            "params": {"system_tool_type": "end_call"},
                        },
                        "language_detection": {
                            "name": "language_detection",
                            "description": "",
                            "params": {"system_tool_type": "language_detection"},
                        },
                    },
                },
            },
            "tts": {"voice_id": "21m00Tcm4TlvDq8ikWAM"},
        },
        "platform_settings": {"widget": {"variant": "compact"}},
    }
