"""Any SIP bot: no provider API. The administrator types the bot's SIP URI and pastes the
handoff URIs into the bot's own settings; nothing is pushed anywhere."""

from __future__ import annotations

from typing import Any

from virtual_agents.providers.base import Connection, ProviderAdapter, ProviderAgent, TransferTarget


class GenericSipAdapter(ProviderAdapter):
    name = "SIP bot"
    has_api = False

    def auth_headers(self) -> dict[str, str]:
        return {}

    def verify(self) -> None:
        return None

    def list_agents(self) -> list[ProviderAgent]:
        return []

    def connect(
        self, *, agent_id: str, identifier: str, sip_domain: str, name: str, proxy_addresses: list[str]
    ) -> Connection:
        raise NotImplementedError("A generic SIP bot is connected by typing its SIP URI.")

    def configure_transfers(
        self, *, agent_id: str, state: dict[str, Any], targets: list[TransferTarget]
    ) -> dict[str, Any]:
        # Nothing to push: the page shows the URIs to paste. Remember them for the handoff check.
        return {**state, "transfers": [t.sip_uri for t in targets]}

    def configured_transfers(self, *, agent_id: str, state: dict[str, Any]) -> list[str]:
        return list(state.get("transfers") or [])

    def disconnect(self, *, agent_id: str, state: dict[str, Any]) -> list[str]:
        return []
