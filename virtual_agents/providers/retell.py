"""Retell AI. Facts and their sources: SPEC.md §3."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from virtual_agents.providers.base import (
    Connection,
    ProviderAdapter,
    ProviderAgent,
    ProviderError,
    TransferTarget,
)

SIP_HOST = "sip.retellai.com"
TOOL_PREFIX = "voiso_transfer_"
# The number in a path is percent-encoded as retell-sdk does (RFC 3986 segment: `+` stays as is).
PATH_SAFE = "!$&'()*+,;=:@"
PAGE_SIZE = 1000
MAX_PAGES = 50


class RetellAdapter(ProviderAdapter):
    name = "Retell AI"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    def verify(self) -> None:
        self.request("GET", "/get-concurrency")

    def list_agents(self) -> list[ProviderAgent]:
        seen: dict[str, ProviderAgent] = {}
        # The filter is the body; paging is query only (retell-sdk 6.2 `agent.list`, SPEC §3.2).
        body = {"filter_criteria": {"channel": {"op": "eq", "type": "string", "value": "voice"}}}
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        for _ in range(MAX_PAGES):
            page = self.as_object(self.request("POST", "/v2/list-agents", json=body, params=params))
            for item in page.get("items") or []:
                if isinstance(item, dict) and item.get("agent_id"):
                    agent_id = str(item["agent_id"])
                    seen.setdefault(
                        agent_id, ProviderAgent(id=agent_id, name=str(item.get("agent_name") or agent_id))
                    )
            if not page.get("has_more") or not page.get("pagination_key"):
                break
            params = {"limit": PAGE_SIZE, "pagination_key": str(page["pagination_key"])}
        return list(seen.values())

    def connect(
        self, *, agent_id: str, identifier: str, sip_domain: str, name: str, proxy_addresses: list[str]
    ) -> Connection:
        binding = {
            "inbound_agents": [{"agent_id": agent_id, "weight": 1}],
            "outbound_agents": [{"agent_id": agent_id, "weight": 1}],
            "nickname": name[:100],
        }
        try:
            created = self.request(
                "POST",
                "/import-phone-number",
                json={
                    "phone_number": identifier,
                    "termination_uri": sip_domain,
                    "transport": "TLS",
                    **binding,
                    "ignore_e164_validation": True,
                },
                what="the agent",
            )
        except ProviderError as exc:
            if exc.code != "rejected":
                raise
            # Retell keys numbers by phone_number, so a re-run's import is refused (SPEC §4):
            # re-point the existing number. If there is none, the refusal was about something else.
            created = self.request(
                "PATCH",
                f"/update-phone-number/{quote(identifier, safe=PATH_SAFE)}",
                json=binding,
                what="the agent",
                ok_missing=True,
            )
            if created is None:
                raise exc from None
        number = str(self.as_object(created).get("phone_number") or identifier)
        return Connection(sip_uri=f"sip:{number}@{SIP_HOST};transport=tcp", state={"phone_number": number})

    def _llm_id(self, agent_id: str) -> str:
        agent = self.as_object(self.request("GET", f"/get-agent/{agent_id}", what="the agent"))
        engine = agent.get("response_engine") or {}
        if engine.get("type") != "retell-llm" or not engine.get("llm_id"):
            raise ProviderError(
                "unsupported_agent_type",
                "This Retell agent is not a Retell LLM agent; "
                "add the transfer to its conversation flow by hand.",
            )
        return str(engine["llm_id"])

    def _tools(self, llm_id: str) -> list[dict[str, Any]]:
        llm = self.as_object(self.request("GET", f"/get-retell-llm/{llm_id}", what="the agent's LLM"))
        return [tool for tool in llm.get("general_tools") or [] if isinstance(tool, dict)]

    def configure_transfers(
        self, *, agent_id: str, state: dict[str, Any], targets: list[TransferTarget]
    ) -> dict[str, Any]:
        llm_id = state.get("llm_id") or self._llm_id(agent_id)
        # The PATCH replaces general_tools whole: keep every tool that is not ours.
        others = [
            tool for tool in self._tools(llm_id) if not str(tool.get("name", "")).startswith(TOOL_PREFIX)
        ]
        ours = [
            {
                "type": "transfer_call",
                "name": _tool_name(index, target),
                "description": f"Transfer the caller to {target.label}.",
                "transfer_destination": {"type": "predefined", "number": target.sip_uri},
                "transfer_option": {"type": "cold_transfer", "cold_transfer_mode": "sip_refer"},
                "speak_during_execution": False,
                # Our targets are sip: URIs (`;user=phone` for externals), outside Retell's E.164
                # check; the SDK documents this flag for custom telephony (SPEC §3.4).
                "ignore_e164_validation": True,
            }
            for index, target in enumerate(targets)
        ]
        self.request(
            "PATCH",
            f"/update-retell-llm/{llm_id}",
            json={"general_tools": others + ours},
            what="the agent's LLM",
        )
        return {**state, "llm_id": llm_id, "transfers": [t.sip_uri for t in targets]}

    def configured_transfers(self, *, agent_id: str, state: dict[str, Any]) -> list[str]:
        llm_id = state.get("llm_id") or self._llm_id(agent_id)
        return [
            str((tool.get("transfer_destination") or {}).get("number") or "")
            for tool in self._tools(llm_id)
            if str(tool.get("name", "")).startswith(TOOL_PREFIX)
        ]

    def disconnect(self, *, agent_id: str, state: dict[str, Any]) -> list[str]:
        llm_id = state.get("llm_id")
        if llm_id:
            tools = self.request("GET", f"/get-retell-llm/{llm_id}", ok_missing=True)
            if tools is not None:
                kept = [
                    tool
                    for tool in self.as_object(tools).get("general_tools") or []
                    if isinstance(tool, dict) and not str(tool.get("name", "")).startswith(TOOL_PREFIX)
                ]
                self.request(
                    "PATCH", f"/update-retell-llm/{llm_id}", json={"general_tools": kept}, ok_missing=True
                )
        if state.get("phone_number"):
            self.request(
                "DELETE",
                f"/delete-phone-number/{quote(state['phone_number'], safe=PATH_SAFE)}",
                ok_missing=True,
            )
        return []


def _tool_name(index: int, target: TransferTarget) -> str:
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "_", target.label).strip("_").lower()[:40] or "target"
    return f"{TOOL_PREFIX}{index + 1}_{slug}"
