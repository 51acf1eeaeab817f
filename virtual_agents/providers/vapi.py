"""Vapi. Facts and their sources: SPEC.md §2."""

from __future__ import annotations

import ipaddress
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

PAGE_SIZE = 100
MAX_PAGES = 50


class VapiAdapter(ProviderAdapter):
    name = "Vapi"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    def verify(self) -> None:
        self.as_list(self.request("GET", "/assistant", params={"limit": 1}))

    def list_agents(self) -> list[ProviderAgent]:
        seen: dict[str, ProviderAgent] = {}
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        for _ in range(MAX_PAGES):
            page = self.as_list(self.request("GET", "/assistant", params=params))
            for item in page:
                if isinstance(item, dict) and item.get("id"):
                    seen.setdefault(
                        str(item["id"]),
                        ProviderAgent(id=str(item["id"]), name=str(item.get("name") or item["id"])),
                    )
            # No cursor: the next page is what was created before the oldest seen.
            created = [
                str(item["createdAt"]) for item in page if isinstance(item, dict) and item.get("createdAt")
            ]
            if len(page) < PAGE_SIZE or not created:
                break
            params = {"limit": PAGE_SIZE, "createdAtLt": min(created)}
        return list(seen.values())

    def connect(
        self, *, agent_id: str, identifier: str, sip_domain: str, name: str, proxy_addresses: list[str]
    ) -> Connection:
        if not proxy_addresses:
            raise ProviderError(
                "not_configured", "Vapi needs the SIP proxy's IPv4 address (setting SIP_PROXY_ADDRESSES)."
            )
        gateways: list[dict[str, Any]] = [
            {
                "ip": str(network.network_address),
                "port": 5060,
                "netmask": network.prefixlen,
                "inboundEnabled": True,
                "outboundEnabled": False,
            }
            for network in _inbound_networks(proxy_addresses)
        ]
        gateways.append(
            {
                "ip": sip_domain,
                "port": 5061,
                "inboundEnabled": False,
                "outboundEnabled": True,
                "outboundProtocol": "tls",
            }
        )
        credential = self.as_object(
            self.request(
                "POST",
                "/credential",
                json={"provider": "byo-sip-trunk", "name": name[:40], "gateways": gateways},
            )
        )
        credential_id = credential.get("id")
        if not credential_id:
            raise ProviderError("bad_response", "Vapi did not return the SIP trunk credential's id.")
        try:
            number = self.as_object(
                self.request(
                    "POST",
                    "/phone-number",
                    json={
                        "provider": "byo-phone-number",
                        "number": identifier,
                        "numberE164CheckEnabled": False,
                        "credentialId": credential_id,
                        "assistantId": agent_id,
                        "name": name[:40],
                    },
                    what="the assistant",
                )
            )
            if not number.get("id"):
                raise ProviderError("bad_response", "Vapi did not return the phone number's id.")
        except ProviderError:
            # Undo the half: a credential with no number is clutter in the customer's account.
            try:
                self.request("DELETE", f"/credential/{credential_id}", ok_missing=True)
            except ProviderError:
                logger.warning("Vapi: could not delete credential %s after a failed connect", credential_id)
            raise
        return Connection(
            sip_uri=f"sip:{identifier}@{credential_id}.sip.vapi.ai",
            state={"credential_id": str(credential_id), "phone_number_id": str(number["id"])},
        )

    def configure_transfers(
        self, *, agent_id: str, state: dict[str, Any], targets: list[TransferTarget]
    ) -> dict[str, Any]:
        destinations = [
            {
                "type": "sip",
                "sipUri": target.sip_uri,
                "description": f"Hand the caller to {target.label}.",
                "message": "",
                "transferPlan": {"mode": "blind-transfer", "sipVerb": "refer"},
            }
            for target in targets
        ]
        tool_id = state.get("tool_id")
        if not targets:
            # A transferCall tool with nowhere to go is useless to the bot: take it away.
            if tool_id:
                self._set_tool_attached(agent_id, str(tool_id), attached=False)
                self.request("DELETE", f"/tool/{tool_id}", ok_missing=True)
            kept = {key: value for key, value in state.items() if key != "tool_id"}
            return {**kept, "transfers": []}
        if tool_id:
            try:
                self.request(
                    "PATCH", f"/tool/{tool_id}", json={"destinations": destinations}, what="the transfer tool"
                )
            except ProviderError as exc:
                if exc.code != "not_found":
                    raise
                tool_id = None  # deleted at Vapi since: make a new one (SPEC §4)
        is_new = not tool_id
        if is_new:
            tool = self.as_object(
                self.request("POST", "/tool", json={"type": "transferCall", "destinations": destinations})
            )
            tool_id = tool.get("id")
            if not tool_id:
                raise ProviderError("bad_response", "Vapi did not return the transfer tool's id.")
        try:
            self._set_tool_attached(agent_id, str(tool_id), attached=True)
        except ProviderError:
            # The caller never learns a new tool's id from a failure, so nothing could clean it up later.
            if is_new:
                try:
                    self.request("DELETE", f"/tool/{tool_id}", ok_missing=True)
                except ProviderError:
                    logger.warning("Vapi: could not delete tool %s after a failed attach", tool_id)
            raise
        return {**state, "tool_id": str(tool_id), "transfers": [t.sip_uri for t in targets]}

    def configured_transfers(self, *, agent_id: str, state: dict[str, Any]) -> list[str]:
        tool_id = state.get("tool_id")
        if not tool_id:
            return []
        # What the bot can use: the tool must exist and be attached to the assistant.
        assistant = self.as_object(self.request("GET", f"/assistant/{agent_id}", what="the assistant"))
        if str(tool_id) not in [str(t) for t in (assistant.get("model") or {}).get("toolIds") or []]:
            return []
        tool = self.request("GET", f"/tool/{tool_id}", what="the transfer tool", ok_missing=True)
        if tool is None:
            return []
        return [
            str(item.get("sipUri") or item.get("number") or "")
            for item in self.as_object(tool).get("destinations") or []
            if isinstance(item, dict)
        ]

    def disconnect(self, *, agent_id: str, state: dict[str, Any]) -> None:
        if state.get("tool_id"):
            self._set_tool_attached(agent_id, state["tool_id"], attached=False)
            self.request("DELETE", f"/tool/{state['tool_id']}", ok_missing=True)
        if state.get("phone_number_id"):
            self.request("DELETE", f"/phone-number/{state['phone_number_id']}", ok_missing=True)
        if state.get("credential_id"):
            self.request("DELETE", f"/credential/{state['credential_id']}", ok_missing=True)

    def _set_tool_attached(self, agent_id: str, tool_id: str, *, attached: bool) -> None:
        """Add or remove our tool id in the assistant's model.toolIds, keeping every other tool.

        PATCH replaces `model` whole, so it is read, changed and written back.
        """
        assistant = self.request(
            "GET", f"/assistant/{agent_id}", what="the assistant", ok_missing=not attached
        )
        if assistant is None:
            return
        model = dict(self.as_object(assistant).get("model") or {})
        tool_ids = [str(t) for t in model.get("toolIds") or []]
        if (tool_id in tool_ids) == attached:
            return
        model["toolIds"] = [*tool_ids, tool_id] if attached else [t for t in tool_ids if t != tool_id]
        self.request("PATCH", f"/assistant/{agent_id}", json={"model": model}, what="the assistant")


def _inbound_networks(addresses: list[str]) -> list[ipaddress.IPv4Network]:
    """Our proxy's egress addresses as Vapi inbound gateways, which must be IPv4 (SPEC §2.3)."""
    networks = []
    for address in addresses:
        try:
            network = ipaddress.ip_network(address.strip(), strict=False)
        except ValueError:
            network = None
        if not isinstance(network, ipaddress.IPv4Network):
            raise ProviderError(
                "not_configured",
                f"Vapi needs IPv4 addresses for the SIP proxy (SIP_PROXY_ADDRESSES), not {address!r}.",
            )
        networks.append(network)
    return networks
