"""ElevenLabs Agents Platform (ConvAI). Facts and their sources: SPEC.md §1."""

from __future__ import annotations

import logging
from typing import Any

from virtual_agents.providers.base import (
    Connection,
    ProviderAdapter,
    ProviderAgent,
    ProviderError,
    TransferTarget,
)

logger = logging.getLogger(__name__)

SIP_HOST = "sip.rtc.elevenlabs.io"
PAGE_SIZE = 100
MAX_PAGES = 50


class ElevenLabsAdapter(ProviderAdapter):
    name = "ElevenLabs"

    def auth_headers(self) -> dict[str, str]:
        return {"xi-api-key": self.secret}

    def verify(self) -> None:
        self.request("GET", "/v1/convai/agents", params={"page_size": 1})

    def list_agents(self) -> list[ProviderAgent]:
        agents: list[ProviderAgent] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"page_size": PAGE_SIZE}
            if cursor:
                params["cursor"] = cursor
            page = self.as_object(self.request("GET", "/v1/convai/agents", params=params))
            for item in page.get("agents") or []:
                if isinstance(item, dict) and item.get("agent_id"):
                    agents.append(
                        ProviderAgent(
                            id=str(item["agent_id"]), name=str(item.get("name") or item["agent_id"])
                        )
                    )
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                break
        return agents

    def connect(
        self, *, agent_id: str, identifier: str, sip_domain: str, name: str, proxy_addresses: list[str]
    ) -> Connection:
        created = self.as_object(
            self.request(
                "POST",
                "/v1/convai/phone-numbers",
                json={
                    "provider": "sip_trunk",
                    "phone_number": identifier,
                    "label": name[:100],
                    "inbound_trunk_config": {
                        "allowed_addresses": proxy_addresses,
                        "media_encryption": "allowed",
                        "remote_domains": [sip_domain],
                    },
                    "outbound_trunk_config": {
                        "address": sip_domain,
                        "transport": "tls",
                        "media_encryption": "allowed",
                    },
                },
            )
        )
        phone_number_id = created.get("phone_number_id")
        if not phone_number_id:
            raise ProviderError("bad_response", "ElevenLabs did not return the imported number's id.")
        state = {"phone_number_id": str(phone_number_id)}
        try:
            self.request(
                "PATCH",
                f"/v1/convai/phone-numbers/{phone_number_id}",
                json={"agent_id": agent_id},
                what="the agent",
            )
        except ProviderError:
            # Undo the import so a retry starts clean; the binding failure is what the admin must see.
            try:
                self.request("DELETE", f"/v1/convai/phone-numbers/{phone_number_id}", ok_missing=True)
            except ProviderError:
                logger.warning(
                    "ElevenLabs: could not delete imported number %s after a failed bind", phone_number_id
                )
            raise
        return Connection(sip_uri=f"sip:{identifier}@{SIP_HOST}:5061;transport=tls", state=state)

    def configure_transfers(
        self, *, agent_id: str, state: dict[str, Any], targets: list[TransferTarget]
    ) -> dict[str, Any]:
        before = self._prompt(agent_id)
        if any(_is_transfer_tool(tool) for tool in before.get("tools") or []):
            # Unknown how the API treats a legacy tool and a built-in one together (SPEC §1.4).
            raise ProviderError(
                "conflict",
                "This ElevenLabs agent already has a transfer_to_number tool in its legacy tools list. "
                "Remove it in ElevenLabs, then try again.",
            )
        tool: dict[str, Any] | None = None
        if targets:
            tool = {
                "name": "transfer_to_number",
                "description": "",
                "params": {
                    "system_tool_type": "transfer_to_number",
                    "enable_client_message": True,
                    "transfers": [
                        {
                            "transfer_destination": {"type": "sip_uri", "sip_uri": target.sip_uri},
                            "condition": f"The caller should be handed to {target.label}.",
                            "transfer_type": "sip_refer",
                            # The REFER lands in our contact center, which plays its own ringback
                            # or queue audio: a dial tone from ElevenLabs first would be noise.
                            "sip_refer_play_dialtone": False,
                        }
                        for target in targets
                    ],
                },
            }
        # Only our subtree: the prompt, tool_ids and other built-in tools are left as they are.
        self.request(
            "PATCH",
            f"/v1/convai/agents/{agent_id}",
            json={
                "conversation_config": {"agent": {"prompt": {"built_in_tools": {"transfer_to_number": tool}}}}
            },
            what="the agent",
        )
        # Safety net (SPEC §1.4): deep merge is unconfirmed, and a PATCH may land on another branch.
        after = self._prompt(agent_id)
        if any(before.get(key) != after.get(key) for key in ("prompt", "tool_ids")):
            logger.warning(
                "ElevenLabs agent %s: the prompt or tool_ids changed across the transfer update; "
                "check the agent's versions in ElevenLabs",
                agent_id,
            )
        return {**state, "transfers": [t.sip_uri for t in targets]}

    def configured_transfers(self, *, agent_id: str, state: dict[str, Any]) -> list[str]:
        prompt = self._prompt(agent_id)
        tool = (prompt.get("built_in_tools") or {}).get("transfer_to_number") or {}
        transfers = (tool.get("params") or {}).get("transfers") or []
        return [
            str(
                (item.get("transfer_destination") or {}).get("sip_uri")
                or (item.get("transfer_destination") or {}).get("phone_number")
                or ""
            )
            for item in transfers
            if isinstance(item, dict)
        ]

    def disconnect(self, *, agent_id: str, state: dict[str, Any]) -> list[str]:
        self.request(
            "PATCH",
            f"/v1/convai/agents/{agent_id}",
            json={
                "conversation_config": {"agent": {"prompt": {"built_in_tools": {"transfer_to_number": None}}}}
            },
            ok_missing=True,
        )
        if state.get("phone_number_id"):
            self.request("DELETE", f"/v1/convai/phone-numbers/{state['phone_number_id']}", ok_missing=True)
        return []

    def _prompt(self, agent_id: str) -> dict[str, Any]:
        agent = self.as_object(self.request("GET", f"/v1/convai/agents/{agent_id}", what="the agent"))
        prompt = ((agent.get("conversation_config") or {}).get("agent") or {}).get("prompt")
        return prompt if isinstance(prompt, dict) else {}


def _is_transfer_tool(tool: Any) -> bool:
    return (
        isinstance(tool, dict)
        and tool.get("type") == "system"
        and (tool.get("params") or {}).get("system_tool_type") == "transfer_to_number"
    )
