"""Vapi. Facts and their sources: SPEC.md §2."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import urlsplit

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
# Vapi refuses a gateway netmask outside 24..32 (vapi_server_sdk 3.0 `SipTrunkGateway.netmask`).
MIN_NETMASK = 24
US_SIP_HOST = "sip.vapi.ai"
EU_SIP_HOST = "sip.eu.vapi.ai"


class VapiAdapter(ProviderAdapter):
    name = "Vapi"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    @property
    def sip_host(self) -> str:
        """An account on the EU API (VAPI_API_URL = https://api.eu.vapi.ai) takes calls in the EU."""
        host = urlsplit(self.base_url).hostname or ""
        return EU_SIP_HOST if host == "api.eu.vapi.ai" or host.endswith(".eu.vapi.ai") else US_SIP_HOST

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
            sip_uri=f"sip:{identifier}@{credential_id}.{self.sip_host}",
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
                # No sipVerb: the spec types it as an object whose default is REFER, and the
                # string "refer" is not a value it defines (SPEC §2.4).
                "transferPlan": {"mode": "blind-transfer"},
            }
            for target in targets
        ]
        tool_id = state.get("tool_id")
        if not targets:
            # A transferCall tool with nowhere to go is useless to the bot: take it away.
            if tool_id:
                self._set_tool_attached(agent_id, str(tool_id), attached=False)
                left = self._delete_tool(str(tool_id))
                if left:
                    logger.warning("Vapi: %s", left)
            kept = {key: value for key, value in state.items() if key != "tool_id"}
            return {**kept, "transfers": []}
        if tool_id:
            try:
                # The PATCH body is a oneOf discriminated by `type`: it is sent, as the SDK does.
                self.request(
                    "PATCH",
                    f"/tool/{tool_id}",
                    json={"type": "transferCall", "destinations": destinations},
                    what="the transfer tool",
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

    def disconnect(self, *, agent_id: str, state: dict[str, Any]) -> list[str]:
        left: list[str] = []
        if state.get("tool_id"):
            self._set_tool_attached(agent_id, state["tool_id"], attached=False)
            # A pinned tool stays; the number and credential must go all the same, or the bot
            # would still answer our old identifier.
            refused = self._delete_tool(str(state["tool_id"]))
            if refused:
                left.append(refused)
        if state.get("phone_number_id"):
            self.request("DELETE", f"/phone-number/{state['phone_number_id']}", ok_missing=True)
        if state.get("credential_id"):
            self.request("DELETE", f"/credential/{state['credential_id']}", ok_missing=True)
        return left

    def _delete_tool(self, tool_id: str) -> str:
        """Delete our transfer tool; '' when gone, else what is left at Vapi, in plain words.

        Vapi answers 409 `tool_pinned` for a tool pinned to a published assistant version.
        """
        try:
            self.request("DELETE", f"/tool/{tool_id}", what="the transfer tool", ok_missing=True)
        except ProviderError as exc:
            if exc.status != 409:
                raise
            return (
                f"Vapi kept the transfer tool {tool_id} ({exc.message}). It is detached from the "
                "assistant's current configuration but may still be pinned to a published version; "
                "delete it in the Vapi dashboard (Tools) once nothing pins it."
            )
        return ""

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
        if network.prefixlen < MIN_NETMASK:
            raise ProviderError(
                "not_configured",
                f"Vapi takes SIP proxy networks of /{MIN_NETMASK} to /32 only (SIP_PROXY_ADDRESSES has "
                f"{address!r}); list the proxy's addresses or smaller networks.",
            )
        networks.append(network)
    return networks
