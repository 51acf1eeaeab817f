"""The live feed's messages: one per newly stored event, built after the batch is assembled.

Ingestion sends them with `reporting.live.publish(center_id, messages)` once the transaction has
committed, as one channel-layer message `{"type": "live.events", "messages": [...]}` per request,
messages in cursor order. Each message is JSON-safe (times are ISO 8601 strings with an offset):

    {
      "cursor": 1234,                      # the CallEvent pk: increasing, for catch-up without duplicates
      "event": {"id", "type", "call_id", "occurred_at", "data"},     # as the SIP layer sent it
      "call": {"call_id", "direction", "from", "to", "status", "bot_outcome",
               "started_at", "ended_at", "handoff_count",
               "active_virtual_agent",     # the id of the bot the call is on now, or null
               "event_count"},             # events folded: the larger, the later the snapshot
                                           # (the record after this batch)
      "virtual_agent": {"id", "name", "extension"} | null,
      "handoff": {"sequence", "state", "refer_to",
                  "target": {"type", "ref", "extension", "name", "error"},
                  "context", "sip_status", "failure_reason",
                  "requested_at", "accepted_at", "completed_at", "failed_at"} | null
    }

- `virtual_agent`: the bot the event names (bot.connected, handoff.requested), else the bot of
  the handoff the event belongs to, else the call's bot; null when the call has none yet.
- `handoff`: for handoff.* events, the handoff the event applied to (null for an accepted /
  completed / failed with no earlier REFER in the call).
- `call` and `handoff` show the state after the whole batch: a batch holding both
  handoff.requested and handoff.accepted sends two messages that both show "accepted"; the
  `event` of each says which step it reports. Events arriving late (an older occurred_at)
  still get a new, higher cursor.

The bot's summary comes later, in a provider's post-call report (reporting.provider_reports).
Once a report with a summary is matched to its call record (whichever of the two arrived
first), or a matched report's summary changes, reporting.live.publish_reports sends, after
commit, one more message of the same shape:

    {
      "cursor": null,                      # not a stored event
      "event": {"id": "report:<report id>", "type": "report.ready", "call_id",
                "occurred_at": <when the report was first received>, "data": {"provider"}},
      "call": {...}, "virtual_agent": {...} | null,   # the record and its bot, as now
      "handoff": null,
      "summary": "<the bot's summary>"     # only in report.ready messages
    }

The summary belongs to the call and so to each of its handoffs. A later summary for the same
report comes with the same event id: the page takes `summary` from every report.ready message,
even one whose id it has seen, and dedupes the rest of the message as usual.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from reporting.assemble import Assembly, HandoffFields, RecordFields
from reporting.events import AgentInfo, EventIn, agent_ref_key
from reporting.models import CallRecord, ProviderCallReport

REPORT_READY = "report.ready"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _text_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None


def call_summary(call_id: str, record: RecordFields) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "direction": record.direction,
        "from": record.from_number,
        "to": record.to_number,
        "status": record.status,
        "bot_outcome": record.bot_outcome,
        "started_at": _iso(record.started_at),
        "ended_at": _iso(record.ended_at),
        "handoff_count": record.handoff_count,
        # A CallRecord's is a UUID: text, as the channel layer's msgpack carries no UUID.
        "active_virtual_agent": _text_or_none(record.active_virtual_agent_id),
        "event_count": record.event_count,
    }


def handoff_summary(handoff: HandoffFields) -> dict[str, Any]:
    return {
        "sequence": handoff.sequence,
        "state": handoff.state,
        "refer_to": handoff.refer_to,
        "target": {
            "type": handoff.target_type,
            "ref": handoff.target_ref,
            "extension": handoff.target_extension,
            "name": handoff.target_name,
            "error": handoff.target_error,
        },
        "context": dict(handoff.context),
        "sip_status": handoff.sip_status,
        "failure_reason": handoff.failure_reason,
        "requested_at": _iso(handoff.requested_at),
        "accepted_at": _iso(handoff.accepted_at),
        "completed_at": _iso(handoff.completed_at),
        "failed_at": _iso(handoff.failed_at),
    }


def _agent(info: AgentInfo | None) -> dict[str, Any] | None:
    return {"id": info.id, "name": info.name, "extension": info.extension} if info else None


def _agent_named(event: EventIn, assembly: Assembly) -> AgentInfo | None:
    """The bot the event itself names (bot.connected, handoff.requested), as the fold resolved it."""
    ref = event.data.get("virtual_agent")
    key = agent_ref_key(ref) if isinstance(ref, str) else None
    if key is None:
        return None
    kind, value = key.split(":", 1)
    for agent in assembly.agents.values():
        if (kind == "id" and agent.id == value) or (kind == "ext" and agent.extension == value):
            return agent
    return None


def feed_messages(
    new_events: Iterable[tuple[int, EventIn]], assemblies: Mapping[str, Assembly]
) -> list[dict[str, Any]]:
    """One message per (cursor, event) pair, in the given order (see the module docstring)."""
    messages: list[dict[str, Any]] = []
    # A batch carries several events of a call: its summaries are built once and shared (the
    # messages are only serialised, never changed).
    calls: dict[str, dict[str, Any]] = {}
    handoffs: dict[tuple[str, int], dict[str, Any]] = {}
    agents: dict[AgentInfo | None, dict[str, Any] | None] = {None: None}  # as messages show them
    for cursor, event in new_events:
        assembly = assemblies[event.call_id]
        sequence = assembly.handoff_of_event.get(event.event_id)
        handoff = assembly.handoffs[sequence - 1] if sequence else None
        agent = _agent_named(event, assembly) if "virtual_agent" in event.data else None
        if agent is None:
            agent_id = (handoff.virtual_agent_id if handoff else None) or assembly.record.virtual_agent_id
            agent = assembly.agents.get(agent_id) if agent_id else None
        agent_message = agents.get(agent, agents)
        if agent_message is agents:
            agent_message = agents[agent] = _agent(agent)
        call = calls.get(event.call_id)
        if call is None:
            call = calls[event.call_id] = call_summary(event.call_id, assembly.record)
        handoff_message = None
        if handoff is not None:
            handoff_message = handoffs.get((event.call_id, handoff.sequence))
            if handoff_message is None:
                handoff_message = handoffs[(event.call_id, handoff.sequence)] = handoff_summary(handoff)
        messages.append(
            {
                "cursor": cursor,
                "event": {
                    "id": event.event_id,
                    "type": event.type,
                    "call_id": event.call_id,
                    "occurred_at": _iso(event.occurred_at),
                    "data": event.data,
                },
                "call": call,
                "virtual_agent": agent_message,
                "handoff": handoff_message,
            }
        )
    return messages


def report_message(
    report: ProviderCallReport, record: CallRecord, virtual_agent: dict[str, Any] | None
) -> dict[str, Any]:
    """The report.ready message of a matched report (see the module docstring)."""
    return {
        "cursor": None,
        "event": {
            "id": f"report:{report.pk}",
            "type": REPORT_READY,
            "call_id": record.call_id,
            "occurred_at": _iso(report.received_at),
            "data": {"provider": report.provider},
        },
        "call": call_summary(record.call_id, record),  # type: ignore[arg-type]
        "virtual_agent": virtual_agent,
        "handoff": None,
        "summary": report.summary,
    }
