"""Folding a call's events into its record and handoffs. Pure: no database, no clock.

`assemble()` takes *all* stored events of one call, each with the `refs` ingestion resolved
when it stored the event (`Refs`: the virtual agent, the Refer-To target, the answering
agent's membership, the dialled number), and returns the record's fields and the handoffs.
Events are first put in one fixed
total order, `(occurred_at, TYPE_RANK[type], event_id)`, and duplicates (same event id) are
dropped, so the result depends only on the *set* of events: any arrival order, re-sent events
or a call split across requests give the same record. Ingestion re-folds a call whenever new
events for it arrive (reporting.ingest).

Rules, in that order:
- `call.started`, `bot.connected`, `agent.connected`, `call.ended`: the first one sets its
  fields (a call starts and ends once; a late duplicate with another id does not move it).
  `recording.ready`: the last one wins (a re-recorded call has a newer URL).
- One `Handoff` per `handoff.requested`, numbered 1..n in the order above. `handoff.accepted`
  / `completed` / `failed` apply to the latest handoff requested at or before them (ties at the
  same instant: the type rank puts `requested` first); one with no earlier request is kept in
  the event log but changes no handoff. There is no explicit handoff reference in the contract:
  a bot has at most one REFER outstanding, so "the latest before" is the one it answers.
  A handoff's state follows its events in order, except that `accepted` never undoes
  `completed` or `failed`.
- The record's virtual agent is the first bot that connected (else the bot of the first REFER);
  its queue is the queue the call entered last: a `queue.entered` (the switch dialled a queue
  the flow routed to) or a handoff that resolved to a queue, whichever came later in the order
  above; `answered_by` is the membership owning the extension of the first `agent.connected`.

Durations, in seconds (None when a bounding event is missing):
- total_seconds      = ended_at - started_at.
- bot_seconds        = (completed_at of the first completed handoff, else ended_at) - bot_connected_at:
                       the time the caller spent with the bot.
- queue_wait_seconds = for a call that entered a queue: from the last time it did (a
                       queue.entered, or the completion of a handoff to a queue) to the first
                       agent.connected at or after it, else to ended_at (the caller gave up waiting).
- human_seconds      = ended_at - agent_connected_at.

Queue entry (the reports' queue figures): `queue_entered_at` is the moment the wait above starts
(the call's last entry into a queue), `queue_answered_at` the agent.connected that ended it
(None when the caller left or is still waiting).

Bot outcome (design.md "Metrics"), for calls that reached a bot (bot.connected or a REFER):
handed_off when ≥ 1 handoff was requested; else, once the call has ended, abandoned_in_bot
when the caller hung up within `bot_abandon_seconds` of the bot connecting, contained
otherwise; blank while undecided or for calls that never reached a bot.

`active_virtual_agent_id` is the bot the call is on now, for routing's capacity counters: set
by `bot.connected`, cleared by a completed handoff to anything but that bot; none once the call
has ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reporting.events import AgentInfo, QueueInfo

TYPE_RANK = {
    "call.started": 0,
    "bot.connected": 1,
    "handoff.requested": 2,
    "handoff.accepted": 3,
    "handoff.failed": 4,
    "handoff.completed": 5,
    "queue.entered": 6,  # a queue is entered after a handoff to it completes, before an agent answers
    "agent.connected": 7,
    "call.ended": 8,
    "recording.ready": 9,
}


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event_id: str
    type: str
    occurred_at: datetime
    data: Mapping[str, Any]
    refs: Mapping[str, Any] = field(default_factory=dict)  # see `refs_for()`
    cursor: int = 0  # the CallEvent pk (feed messages); never part of the fold


def order_key(event: StoredEvent) -> tuple[datetime, int, str]:
    return (event.occurred_at, TYPE_RANK[event.type], event.event_id)


@dataclass(frozen=True, slots=True)
class Target:
    """A Refer-To resolved in the contact center, or why not (`error`: the refer API's code)."""

    type: str = ""  # TargetType
    ref: str = ""  # queue / membership / virtual agent id, or the E.164 number
    extension: str = ""
    name: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class Number:
    phone_number_id: str
    flow_id: str | None


def refs_for(
    *,
    agent: AgentInfo | None = None,
    target: Target | None = None,
    membership_id: str | None = None,
    number: Number | None = None,
    queue: QueueInfo | None = None,
) -> dict[str, Any]:
    """An event's `refs` (JSON): what its names resolved to in the contact center when stored.

    {"virtual_agent": {"id", "name", "extension"}}   bot.connected, handoff.requested
    {"target": {"type", "ref", "extension", "name", "error"}}   handoff.requested
    {"membership_id": "<uuid>"}   agent.connected, when the extension is an agent's
    {"phone_number_id": "<uuid>", "flow_id": "<uuid>" | null}   inbound call.started to our number
    {"queue": {"id", "name", "extension"}}   queue.entered
    """
    refs: dict[str, Any] = {}
    if agent is not None:
        refs["virtual_agent"] = {"id": agent.id, "name": agent.name, "extension": agent.extension}
    if target is not None:
        refs["target"] = {
            "type": target.type,
            "ref": target.ref,
            "extension": target.extension,
            "name": target.name,
            "error": target.error,
        }
    if membership_id is not None:
        refs["membership_id"] = membership_id
    if number is not None:
        refs["phone_number_id"], refs["flow_id"] = number.phone_number_id, number.flow_id
    if queue is not None:
        refs["queue"] = {"id": queue.id, "name": queue.name, "extension": queue.extension}
    return refs


@dataclass(frozen=True, slots=True)
class FoldSettings:
    bot_abandon_seconds: float = 10.0  # settings.BOT_ABANDON_SECONDS


# The name reporting.live first used for the fold's second argument (then a table of lookups).
Lookups = FoldSettings


def _agent_of(event: StoredEvent) -> AgentInfo | None:
    agent = event.refs.get("virtual_agent")
    return AgentInfo(agent["id"], agent["name"], agent["extension"]) if agent else None


@dataclass(slots=True)
class HandoffFields:
    sequence: int
    virtual_agent_id: str | None = None
    refer_to: str = ""
    referred_by: str = ""
    context: dict[str, str] = field(default_factory=dict)
    target_type: str = ""
    target_ref: str = ""
    target_extension: str = ""
    target_name: str = ""
    target_error: str = ""
    state: str = "requested"
    requested_at: datetime | None = None
    accepted_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    sip_status: int | None = None
    failure_reason: str = ""
    answered_by: str = ""


@dataclass(slots=True)
class RecordFields:
    status: str = "in_progress"
    direction: str = ""
    from_number: str = ""
    to_number: str = ""
    phone_number_id: str | None = None
    flow_id: str | None = None
    virtual_agent_id: str | None = None
    active_virtual_agent_id: str | None = None
    queue_id: str | None = None
    answered_by_id: str | None = None
    answered_extension: str = ""
    campaign_ref: str = ""
    lead_ref: str = ""
    provider_call_id: str = ""
    started_at: datetime | None = None
    bot_connected_at: datetime | None = None
    handoff_requested_at: datetime | None = None
    agent_connected_at: datetime | None = None
    ended_at: datetime | None = None
    total_seconds: float | None = None
    bot_seconds: float | None = None
    queue_wait_seconds: float | None = None
    human_seconds: float | None = None
    queue_entered_at: datetime | None = None
    queue_answered_at: datetime | None = None
    end_reason: str = ""
    hangup_by: str = ""
    recording_url: str = ""
    bot_outcome: str = ""
    handoff_count: int = 0
    event_count: int = 0
    last_event_at: datetime | None = None


RECORD_FIELDS = tuple(RecordFields.__dataclass_fields__)
HANDOFF_FIELDS = tuple(HandoffFields.__dataclass_fields__)


@dataclass(slots=True)
class Assembly:
    record: RecordFields
    handoffs: list[HandoffFields]
    # event id → the handoff sequence a handoff.* event applied to (feed messages).
    handoff_of_event: dict[str, int]
    agents: dict[str, AgentInfo]  # the virtual agents the events named, by id (feed messages)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def _ref_text(value: Any) -> str:
    return str(value) if value is not None else ""


def assemble(events: Iterable[StoredEvent], fold: FoldSettings | None = None) -> Assembly:
    """The record and handoffs of one call from all its events (see the module docstring)."""
    unique: dict[str, StoredEvent] = {}
    for event in sorted(events, key=order_key):
        unique.setdefault(event.event_id, event)
    ordered = list(unique.values())

    record = RecordFields(event_count=len(ordered))
    handoffs: list[HandoffFields] = []
    handoff_of_event: dict[str, int] = {}
    agents: dict[str, AgentInfo] = {}
    first_handoff_agent: str | None = None
    active: str | None = None
    last_queue: str | None = None  # the queue the call entered last (queue.entered or a handoff)
    entered_queue_at: datetime | None = None  # when it last entered one (see _durations)

    for event in ordered:
        data = event.data
        kind = event.type
        record.last_event_at = event.occurred_at  # ordered: the last one is the latest
        if kind == "call.started":
            if record.started_at is None:
                record.started_at = event.occurred_at
                record.direction = data.get("direction", "")
                record.from_number = data.get("from") or ""
                record.to_number = data.get("to") or ""
                record.campaign_ref = _ref_text(data.get("campaign_id"))
                record.lead_ref = _ref_text(data.get("lead_id"))
                record.phone_number_id = event.refs.get("phone_number_id")
                record.flow_id = event.refs.get("flow_id")
        elif kind == "bot.connected":
            agent = _agent_of(event)
            if agent is not None:
                agents[agent.id] = agent
            if record.bot_connected_at is None:
                record.bot_connected_at = event.occurred_at
                record.virtual_agent_id = agent.id if agent else None
            if not record.provider_call_id and data.get("provider_call_id"):
                record.provider_call_id = data["provider_call_id"]
            if agent is not None:
                active = agent.id
        elif kind == "handoff.requested":
            agent = _agent_of(event)
            if agent is not None:
                agents[agent.id] = agent
            refer_to = data.get("refer_to") or ""
            target = Target(**event.refs.get("target", {"error": "unresolved"}))
            handoff = HandoffFields(
                sequence=len(handoffs) + 1,
                virtual_agent_id=agent.id if agent else None,
                refer_to=refer_to,
                referred_by=data.get("referred_by") or "",
                context=dict(data.get("headers") or {}),
                target_type=target.type,
                target_ref=target.ref,
                target_extension=target.extension,
                target_name=target.name,
                target_error=target.error,
                requested_at=event.occurred_at,
            )
            handoffs.append(handoff)
            handoff_of_event[event.event_id] = handoff.sequence
            if target.type == "queue":
                last_queue = target.ref
            if record.handoff_requested_at is None:
                record.handoff_requested_at = event.occurred_at
                first_handoff_agent = handoff.virtual_agent_id
        elif kind in ("handoff.accepted", "handoff.completed", "handoff.failed"):
            if not handoffs:
                continue  # no REFER before it: kept in the log, applies to nothing
            handoff = handoffs[-1]
            handoff_of_event[event.event_id] = handoff.sequence
            if kind == "handoff.accepted":
                handoff.accepted_at = handoff.accepted_at or event.occurred_at
                handoff.sip_status = data.get("sip_status", handoff.sip_status)
                if handoff.state == "requested":
                    handoff.state = "accepted"
            elif kind == "handoff.completed":
                handoff.completed_at = handoff.completed_at or event.occurred_at
                handoff.answered_by = data.get("answered_by") or handoff.answered_by
                handoff.state = "completed"
                if handoff.target_type == "queue":
                    entered_queue_at = handoff.completed_at  # the caller is in the queue now
                if not (handoff.target_type == "virtual_agent" and handoff.target_ref == active):
                    active = None  # the call left the bot
            else:
                handoff.failed_at = handoff.failed_at or event.occurred_at
                handoff.failure_reason = data.get("reason") or ""
                if data.get("sip_status") is not None:
                    handoff.sip_status = data["sip_status"]
                handoff.state = "failed"
        elif kind == "queue.entered":
            queue = event.refs.get("queue")
            if queue:
                last_queue = queue["id"]
            entered_queue_at = event.occurred_at
        elif kind == "agent.connected":
            if record.agent_connected_at is None:
                record.agent_connected_at = event.occurred_at
                record.answered_extension = data.get("extension") or ""
                record.answered_by_id = event.refs.get("membership_id")
        elif kind == "call.ended":
            if record.ended_at is None:
                record.ended_at = event.occurred_at
                record.end_reason = data.get("end_reason") or ""
                record.hangup_by = data.get("hangup_by") or ""
                record.status = "ended"
            active = None
        elif kind == "recording.ready":
            record.recording_url = data.get("url") or record.recording_url

    if record.virtual_agent_id is None:
        record.virtual_agent_id = first_handoff_agent
    # An ended call is on no bot, even when a skewed clock dates a bot.connected after the end.
    record.active_virtual_agent_id = active if record.ended_at is None else None
    record.handoff_count = len(handoffs)
    record.queue_id = last_queue
    _durations(record, handoffs, ordered, entered_queue_at)
    record.bot_outcome = _bot_outcome(record, (fold or FoldSettings()).bot_abandon_seconds)
    return Assembly(record, handoffs, handoff_of_event, agents)


def _durations(
    record: RecordFields,
    handoffs: list[HandoffFields],
    ordered: list[StoredEvent],
    entered: datetime | None,
) -> None:
    record.total_seconds = _seconds(record.started_at, record.ended_at)
    left_bot = next((h.completed_at for h in handoffs if h.completed_at is not None), None)
    record.bot_seconds = _seconds(record.bot_connected_at, left_bot or record.ended_at)
    record.human_seconds = _seconds(record.agent_connected_at, record.ended_at)
    if entered is not None:
        answered = next(
            (e.occurred_at for e in ordered if e.type == "agent.connected" and e.occurred_at >= entered), None
        )
        record.queue_wait_seconds = _seconds(entered, answered or record.ended_at)
        record.queue_entered_at, record.queue_answered_at = entered, answered


def _bot_outcome(record: RecordFields, abandon_seconds: float) -> str:
    if record.bot_connected_at is None and record.handoff_count == 0:
        return ""
    if record.handoff_count:
        return "handed_off"
    if record.ended_at is None:
        return ""
    in_bot = _seconds(record.bot_connected_at, record.ended_at)
    if record.hangup_by == "caller" and in_bot is not None and in_bot <= abandon_seconds:
        return "abandoned_in_bot"
    return "contained"
