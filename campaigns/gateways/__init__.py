"""Origination gateways: how a dialer worker places a call. One interface, several ways.

- `simulator`: no network; plays the callee and the SIP layer, reporting to the events API.
- `http`: POSTs a signed origination request to the switch, which reports through the events API.

Both hand back nothing but success or `OriginationError`: what happens to the call arrives later
as events, which ingestion turns into the attempt's outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class OriginationError(Exception):
    """The gateway could not place the call (after its own retries)."""


@dataclass(frozen=True, slots=True)
class Origination:
    """One call to place: the lead's number, dialled from a caller ID, answered by the bot."""

    call_id: str
    contact_center_id: str
    sip_domain: str
    campaign_id: str
    lead_id: str
    attempt_id: str
    to: str
    caller_id: str
    virtual_agent_id: str
    bot_sip_uri: str
    handoff_extension: str | None = None  # the campaign's handoff queue, for the simulator's bot
    handoff_agents: tuple[str, ...] = ()  # its members' extensions: who answers there in the simulator
    headers: dict[str, str] = field(default_factory=dict)


class Gateway(Protocol):
    def originate(self, origination: Origination) -> None: ...

    def close(self) -> None: ...


def origination_headers(origination_fields: dict[str, str], context: dict[str, str]) -> dict[str, str]:
    """The INVITE's X- headers: ours first, then the lead's context (which cannot overwrite ours)."""
    headers = {key: value for key, value in context.items() if key.lower() not in _OURS}
    headers.update(origination_fields)
    return headers


_OURS = {"x-voiso-call-id", "x-voiso-campaign-id", "x-voiso-lead-id"}
