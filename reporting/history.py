"""Call history for demos and benchmarks: days of realistic calls, told as the SIP layer tells them.

`generate()` plays calls offline, in start order, through what a contact center has: its numbers'
published flows (the real flow engine, `routing.route.compiled`), its bots and their transfer
tools, its queues and their members, and its campaigns' bots and leads. Each call's choices are the
traffic simulator's (`reporting.simulator.plan_call`: menu key, bot outcome, handoff target, X-Reason,
handoff fate, waits), and a campaign call's story is the dialer's simulator gateway's
(`campaigns.gateways.simulator.story`, the callee played by the number's last digit), so the history
looks like what `make run` produces live. What a live run would ask the server, this asks the same code
in process: the flow engine for routes, `routing.refer.resolve_refer` for REFERs.

Arrivals follow a day and week shape in the center's time zone (busy business hours, quiet nights
and weekends, ±15 % day to day), over UTC hours, so DST days have their 23 or 25 hours. Bots have
their capacity: a caller whose bot is full goes where the flow sends busy calls (its queue).
Everything comes from `seed`: the same seed, center and window give the same calls, ids included.

Two ways into the database, one result (tests/reporting/test_generate_calls.py proves it):
- `ingest_calls()`: the events API's own path, `validate_events` + `ingest_events`, in batches of
  whole calls: events, records, handoffs, the live feed. For demos (thousands of calls).
- `bulk_write()`: the records and handoffs ingestion would fold (the same `resolve_refs` and
  `assemble`), written with bulk_create, or COPY on PostgreSQL; no events (80 M event rows are
  not what a report benchmark needs). Millions of calls.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils.text import slugify

from campaigns.gateways import Origination
from campaigns.gateways.simulator import story
from campaigns.models import Campaign
from reporting import rollups
from reporting.assemble import (
    HANDOFF_FIELDS,
    RECORD_FIELDS,
    Assembly,
    FoldSettings,
    StoredEvent,
    assemble,
)
from reporting.events import EventIn, validate_events
from reporting.ingest import ingest_events, resolve_refs
from reporting.models import CallRecord, Handoff
from reporting.simulator import (
    MAX_MENUS,
    CallPlan,
    ReferTarget,
    SimulatorConfig,
    choose_target,
    menu_digits,
    plan_call,
)
from routing.flows.calls import CallInput, RunResult, RunState
from routing.flows.engine import CompiledFlow
from routing.flows.fetch import FetchError, HttpReply, HttpRequest
from routing.models import PhoneNumber, Queue
from routing.refer import resolve_refer
from routing.route import compiled
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter, Membership, Role
from voiso_byob.sip import ReferToError

# Bots mostly hand callers to queues; now and then to a named person (as simulate_calls does).
QUEUE_WEIGHT, USER_WEIGHT = 4.0, 1.0
# Besides its transfer tool's targets, a bot of the history now and then sends a caller who asks for
# someone to that agent, or to a partner's number (refused, with the refer API's status, where the
# center blocks external transfers). A fictional NANP number (555-01xx).
ASKED_FOR_WEIGHT = 0.5
EXTERNAL_NUMBER = "+12125550199"
# Calls per hour of the day, center time: a contact center's day (relative weights).
HOUR_WEIGHTS = (
    0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.5, 1.5, 4.0, 7.0, 8.0, 8.0,
    7.0, 7.5, 8.0, 7.5, 6.5, 5.0, 3.0, 2.0, 1.2, 0.8, 0.5, 0.3,
)  # fmt: skip
WEEKDAY_WEIGHTS = (1.0, 1.05, 1.0, 0.95, 0.9, 0.45, 0.3)  # Monday first
DAY_NOISE = 0.15  # each day ±15 %
# Calls still talking at the window's end would end in the future: the window stops this long before.
SETTLE = timedelta(minutes=15)
CALLING_HOURS = (8, 21)  # a campaign call lands within 08:00-21:00 of the lead's zone
LEAD_TRIES = 4  # leads tried for one campaign call before it becomes an inbound one
MAX_LEADS = 10_000  # per campaign, the leads history calls are drawn from


# --- what the center has ---------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    number: str
    flow: CompiledFlow


@dataclass(frozen=True)
class Lead:
    id: str
    phone: str
    zone: ZoneInfo


@dataclass(frozen=True)
class CampaignCast:
    id: str
    bot_id: str
    bot_uri: str
    handoff_extension: str | None
    handoff_agents: tuple[str, ...]
    caller_id: str
    leads: tuple[Lead, ...]


@dataclass(frozen=True)
class Cast:
    """What calls can reach in one contact center, read once (`cast_for`)."""

    center: ContactCenter
    zone: ZoneInfo
    lines: tuple[Line, ...]
    refer_targets: tuple[ReferTarget, ...]  # queues, then people
    people: tuple[ReferTarget, ...]
    bot_targets: dict[str, tuple[ReferTarget, ...]]
    capacity: dict[str, int]  # virtual agent id → max concurrent calls
    campaigns: tuple[CampaignCast, ...]


def queue_targets(center: ContactCenter) -> list[ReferTarget]:
    """The center's queues as bots' handoff targets, with the members who answer them."""
    return [
        ReferTarget(
            queue.extension.digits,
            slugify(queue.name).replace("-", "_")[:64] or "human_requested",
            tuple(sorted(m.extension.digits for m in queue.members.all() if m.extension is not None)),
            QUEUE_WEIGHT,
        )
        for queue in Queue.objects.for_center(center)
        .select_related("extension")
        .prefetch_related("members__extension")
        .order_by("extension__digits")
    ]


def people_targets(center: ContactCenter) -> list[ReferTarget]:
    """The center's agents with an extension, as bots' handoff targets."""
    people = (
        Membership.objects.for_center(center)
        .filter(role=Role.AGENT, extension__isnull=False)
        .select_related("extension")
        .order_by("extension__digits")
    )
    return [
        ReferTarget(m.extension.digits, "human_requested", (m.extension.digits,), USER_WEIGHT) for m in people
    ]


def bot_refer_targets(
    center: ContactCenter, targets: Sequence[ReferTarget]
) -> dict[str, tuple[ReferTarget, ...]]:
    """Each bot's targets: those configured in its transfer tool, by its id and its extension."""
    by_extension = {target.extension: target for target in targets}
    bots: dict[str, tuple[ReferTarget, ...]] = {}
    agents = (
        VirtualAgent.objects.for_center(center)
        .select_related("extension")
        .prefetch_related("handoff_targets__extension")
    )
    for agent in agents:
        own = tuple(
            by_extension[t.extension.digits]
            for t in agent.handoff_targets.all()
            if t.extension is not None and t.extension.digits in by_extension
        )
        if own:
            bots[str(agent.pk)] = own
            if agent.extension is not None:
                bots[agent.extension.digits] = own
    return bots


def cast_for(center: ContactCenter) -> Cast:
    lines = []
    for number in (
        PhoneNumber.objects.for_center(center)
        .filter(flow__published_version__isnull=False)
        .select_related("flow")
        .order_by("number")
    ):
        # Business hours and after-hours flows are not followed: history runs each number's main flow.
        lines.append(Line(number.number, compiled(number.flow.published_version_id, center)))
    queues, people = queue_targets(center), people_targets(center)
    targets = [*queues, *people]
    campaigns = []
    for campaign in (
        Campaign.objects.for_center(center)
        .exclude(status="draft")
        .select_related("handoff_queue__extension")
        .prefetch_related("virtual_agents", "caller_ids", "handoff_queue__members__extension")
        .order_by("name")
    ):
        bots = sorted(campaign.virtual_agents.all(), key=lambda agent: agent.name)
        zone_name = campaign.timezone or center.timezone
        leads = tuple(
            Lead(str(pk), phone, ZoneInfo((zones or [zone_name])[0]))
            for pk, phone, zones in campaign.leads.order_by("phone").values_list("id", "phone", "timezones")[
                :MAX_LEADS
            ]
        )
        if not bots or not leads:
            continue
        queue = campaign.handoff_queue
        caller_ids = sorted(number.number for number in campaign.caller_ids.all())
        campaigns.append(
            CampaignCast(
                id=str(campaign.pk),
                bot_id=str(bots[0].pk),
                bot_uri=bots[0].sip_uri,
                handoff_extension=queue.extension.digits if queue else None,
                handoff_agents=tuple(
                    sorted(m.extension.digits for m in queue.members.all() if m.extension is not None)
                )
                if queue
                else (),
                caller_id=caller_ids[0] if caller_ids else "",
                leads=leads,
            )
        )
    return Cast(
        center=center,
        zone=ZoneInfo(center.timezone),
        lines=tuple(lines),
        refer_targets=tuple(targets),
        people=tuple(people),
        bot_targets=bot_refer_targets(center, targets),
        capacity={
            str(pk): cap
            for pk, cap in VirtualAgent.objects.for_center(center).values_list("pk", "max_concurrent_calls")
        },
        campaigns=tuple(campaigns),
    )


# --- when calls arrive -----------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    count: int
    end: datetime  # the window's end (aware); calls start before end - SETTLE
    days: float = 30.0
    seed: int = 0
    handoff_share: float = 0.3  # of bot calls (the simulator's default)
    outbound_share: float = 0.15  # of calls, when the center has campaigns

    @property
    def run(self) -> str:
        """A short tag for this history's ids: another window or seed never collides with it."""
        text = f"{self.seed}:{self.count}:{self.days}:{self.end.isoformat()}"
        return hashlib.sha256(text.encode()).hexdigest()[:8]


def hours(spec: Spec, zone: ZoneInfo) -> list[tuple[datetime, datetime, int]]:
    """The window's UTC hours with how many calls start in each: weighted by the center's local hour
    and weekday and a seeded day-to-day wobble; the counts add up to `spec.count` exactly."""
    end = (spec.end - SETTLE).astimezone(UTC)
    start = end - timedelta(days=spec.days)
    first = start.replace(minute=0, second=0, microsecond=0)
    weights: list[tuple[datetime, float]] = []
    wobble: dict[Any, float] = {}
    hour = first
    while hour < end:
        local = hour.astimezone(zone)
        day = local.date()
        if day not in wobble:
            wobble[day] = random.Random(f"{spec.seed}:day:{day.isoformat()}").uniform(  # noqa: S311
                1 - DAY_NOISE, 1 + DAY_NOISE
            )
        inside = (min(hour + timedelta(hours=1), end) - max(hour, start)) / timedelta(hours=1)
        weights.append(
            (hour, HOUR_WEIGHTS[local.hour] * WEEKDAY_WEIGHTS[local.weekday()] * wobble[day] * inside)
        )
        hour += timedelta(hours=1)
    total = sum(w for _, w in weights) or 1.0
    exact = [spec.count * w / total for _, w in weights]
    counts = [int(x) for x in exact]
    # Largest remainders get the calls left over, ties to the earlier hour.
    for i in sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))[: spec.count - sum(counts)]:
        counts[i] += 1
    return [
        (max(hour, start), min(hour + timedelta(hours=1), end), n)
        for (hour, _), n in zip(weights, counts, strict=True)
    ]


def days_of(hour_counts: list[tuple[datetime, datetime, int]]) -> list[list[tuple[datetime, datetime, int]]]:
    """The hours cut into runs of 24: the unit a worker takes, and where bot occupancy starts afresh."""
    return [hour_counts[i : i + 24] for i in range(0, len(hour_counts), 24)]


# --- the calls ---------------------------------------------------------------------------------


@dataclass
class GeneratedCall:
    call_id: str
    events: list[EventIn]


def _ms(moment: datetime) -> datetime:
    """To the millisecond: the events API's RFC 3339 text carries milliseconds (rfc3339)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _no_http(request: HttpRequest) -> HttpReply:
    raise FetchError("history generation makes no HTTP requests")  # the flow takes its failure branch


@dataclass
class _Teller:
    """Writes one call's events, with the clock moving as the story goes."""

    call_id: str
    at: datetime
    events: list[EventIn] = field(default_factory=list)
    state: RunState | None = None  # where the flow waits for the caller's key

    def tell(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append(
            EventIn(f"{self.call_id}:{len(self.events)}", kind, self.call_id, _ms(self.at), data)
        )

    def wait(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class Generator:
    """Calls of one `Spec` in one `Cast`; `calls(days)` yields them in start order per day."""

    def __init__(self, cast: Cast, spec: Spec) -> None:
        self.cast, self.spec = cast, spec
        self.domain = cast.center.sip_domain
        self.config = SimulatorConfig(
            base_url="",
            api_key="",
            sip_domain=self.domain,
            numbers=tuple(line.number for line in cast.lines) or ("",),
            refer_targets=cast.refer_targets,
            bot_targets=cast.bot_targets,
            handoff_share=spec.handoff_share,
            seed=spec.seed,
        )
        self.lines = {line.number: line for line in cast.lines}
        asked_for = (
            *(ReferTarget(t.extension, t.reason, t.agents, ASKED_FOR_WEIGHT) for t in cast.people),
            ReferTarget(EXTERNAL_NUMBER, "partner", (), ASKED_FOR_WEIGHT),
        )
        self.targets_of = {bot: (*own, *asked_for) for bot, own in cast.bot_targets.items()}
        queues = tuple(t for t in cast.refer_targets if t not in cast.people)
        self.default_targets = (*queues, *asked_for)
        self.run_tag = spec.run
        self._refers: dict[str, tuple[str, str, int] | None] = {}
        self._busy: list[tuple[datetime, str]] = []  # (leaves the bot at, bot id), a heap
        self._active: dict[str, int] = {}

    def calls(
        self, days: Sequence[list[tuple[datetime, datetime, int]]], first_index: int
    ) -> Iterator[GeneratedCall]:
        index = first_index
        for day in days:
            self._busy, self._active = [], {}
            for hour, until, count in day:
                if not count:
                    continue
                rng = random.Random(f"{self.spec.seed}:hour:{hour.isoformat()}")  # noqa: S311
                room = (until - hour).total_seconds()
                starts = sorted(rng.uniform(0, room) for _ in range(count))
                for offset in starts:
                    yield self.call(index, hour + timedelta(seconds=offset), rng)
                    index += 1

    def call(self, index: int, at: datetime, rng: random.Random) -> GeneratedCall:
        while self._busy and self._busy[0][0] <= at:
            _, bot = heapq.heappop(self._busy)
            self._active[bot] -= 1
        if self.cast.campaigns and rng.random() < self.spec.outbound_share:
            outbound = self._campaign_call(index, at, rng)
            if outbound is not None:
                return outbound
        return self._inbound(index, at)

    # Outbound: the dialer's simulator gateway plays the callee.

    def _campaign_call(self, index: int, at: datetime, rng: random.Random) -> GeneratedCall | None:
        campaign = self.cast.campaigns[rng.randrange(len(self.cast.campaigns))]
        for _ in range(LEAD_TRIES):
            lead = campaign.leads[rng.randrange(len(campaign.leads))]
            if CALLING_HOURS[0] <= at.astimezone(lead.zone).hour < CALLING_HOURS[1]:
                break
        else:
            return None
        call_id = f"dial-{uuid.UUID(int=(int(self.run_tag, 16) << 64) | index)}"
        origination = Origination(
            call_id=call_id,
            contact_center_id=str(self.cast.center.pk),
            sip_domain=self.domain,
            campaign_id=campaign.id,
            lead_id=lead.id,
            attempt_id="",
            to=lead.phone,
            caller_id=campaign.caller_id,
            virtual_agent_id=campaign.bot_id,
            bot_sip_uri=campaign.bot_uri,
            handoff_extension=campaign.handoff_extension,
            handoff_agents=campaign.handoff_agents,
        )
        events = [
            EventIn(f"{call_id}:{n}", step.type, call_id, _ms(at + timedelta(seconds=step.after)), step.data)
            for n, step in enumerate(story(origination))
        ]
        return GeneratedCall(call_id, events)

    # Inbound: reporting.simulator's call script, with the server's answers computed here.

    def _inbound(self, index: int, at: datetime) -> GeneratedCall:
        plan = plan_call(self.config, index)
        call = _Teller(f"hist-{self.run_tag}-{index}", at)
        call.tell("call.started", {"direction": "inbound", "from": plan.caller, "to": plan.number})
        line = self.lines.get(plan.number)
        if line is None:
            return self._end(call, plan, "route_failed", "system", has_media=False)
        result = self._route(line, call, plan, None)
        for _ in range(MAX_MENUS):
            gather: dict[str, Any] | None = None
            for instruction in result.instructions:
                verb = instruction.get("verb")
                if verb == "play":
                    call.wait(2)
                elif verb == "gather":
                    gather = instruction
                elif verb == "dial":
                    return self._connect(call, plan, instruction, result.destination or {})
                elif verb == "voicemail":
                    call.wait(15)
                    return self._end(call, plan, "voicemail", "caller", has_media=False)
                elif verb == "hangup":
                    reason = str(instruction.get("reason") or "flow_hangup")
                    return self._end(call, plan, reason, "system", has_media=False)
            if gather is None:
                return self._end(call, plan, "flow_ended", "system", has_media=False)
            call.wait(3)
            result = self._route(line, call, plan, menu_digits(str(gather.get("prompt", "")), plan.menu_pick))
        return self._end(call, plan, "caller_hangup", "caller", has_media=False)

    def _route(self, line: Line, call: _Teller, plan: CallPlan, digits: str | None) -> RunResult:
        result = line.flow.run(
            CallInput(
                call_id=call.call_id,
                caller=plan.caller,
                called=line.number,
                at=call.at,
                digits=digits,
                is_available=lambda bot: self._active.get(bot, 0) < self.cast.capacity.get(bot, 0),
                http=_no_http,
            ),
            call.state if digits is not None else None,
        )
        call.state = result.state
        return result

    def _connect(
        self, call: _Teller, plan: CallPlan, dial: dict[str, Any], destination: dict[str, Any]
    ) -> GeneratedCall:
        headers = dial.get("headers") or {}
        kind = headers.get("X-Voiso-Target") or destination.get("type")
        call.wait(1)  # ringing
        if kind == "virtual_agent":
            bot = headers.get("X-Voiso-Target-Id") or destination.get("extension") or ""
            return self._with_bot(call, plan, bot, str(dial.get("sip_uri") or ""))
        if kind in ("queue", "user"):
            if kind == "user":
                agent = destination.get("extension")
            else:
                target = next(
                    (t for t in self.cast.refer_targets if t.extension == destination.get("extension")), None
                )
                agent = self._agent(target, plan)
                queue = headers.get("X-Voiso-Target-Id") or destination.get("extension") or ""
                call.tell("queue.entered", {"queue": queue})
                call.wait(plan.queue_seconds)
                # Unlike the simulator, callers routed straight to a queue give up there too.
                if plan.handoff_result == "abandoned" or agent is None:
                    return self._end(call, plan, "abandoned_in_queue", "caller")
            if agent:
                call.tell("agent.connected", {"extension": agent})
        call.wait(plan.human_seconds)
        return self._end(call, plan, "completed", plan.human_hangup_by)

    def _with_bot(self, call: _Teller, plan: CallPlan, bot: str, bot_uri: str) -> GeneratedCall:
        call.tell("bot.connected", {"virtual_agent": bot})
        if bot in self.cast.capacity:
            self._active[bot] = self._active.get(bot, 0) + 1
        call.wait(plan.bot_seconds)
        if plan.outcome == "abandoned":
            return self._end(call, plan, "caller_hangup", "caller", bot=bot)
        if plan.outcome == "contained":
            return self._end(call, plan, "completed", plan.contained_hangup_by, bot=bot)
        return self._hand_off(call, plan, bot, bot_uri)

    def _hand_off(self, call: _Teller, plan: CallPlan, bot: str, bot_uri: str) -> GeneratedCall:
        targets = self.targets_of.get(bot) or self.default_targets
        if not targets:
            return self._end(call, plan, "completed", plan.contained_hangup_by, bot=bot)
        target = choose_target(targets, plan.refer_pick)
        context = {"X-Reason": target.reason, "X-Language": plan.language}
        query = "&".join(f"{name}={quote(value, safe='')}" for name, value in context.items())
        refer_to = f"<sip:{target.extension}@{self.domain}?{query}>"
        data: dict[str, Any] = {"virtual_agent": bot, "refer_to": refer_to, "headers": context}
        data["referred_by"] = f"<{bot_uri}>" if bot_uri else ""
        call.tell("handoff.requested", data)
        answer = self._refer(refer_to)
        if answer[0] == "refused":
            call.wait(0.2)
            call.tell("handoff.failed", {"reason": answer[1], "sip_status": answer[2]})
            call.wait(5)  # the bot apologises and ends the call
            return self._end(call, plan, "completed", "bot", bot=bot)
        kind, extension, _ = answer
        call.wait(0.2)
        call.tell("handoff.accepted", {"sip_status": 202})
        call.wait(plan.ring_seconds)
        if plan.handoff_result == "failed" and kind in ("queue", "user"):
            reason, status = plan.failure
            call.tell("handoff.failed", {"reason": reason, "sip_status": status})
            call.wait(5)  # the NOTIFY came back with an error: the bot takes the caller back
            return self._end(call, plan, "completed", "bot", bot=bot)
        if kind == "queue":
            call.tell("handoff.completed", {})
            self._leave_bot(bot, call.at)
            call.wait(plan.queue_seconds)
            agent = self._agent(target, plan)
            if plan.handoff_result == "abandoned" or agent is None:
                return self._end(call, plan, "abandoned_in_queue", "caller")
            call.tell("agent.connected", {"extension": agent})
        else:
            call.tell("handoff.completed", {"answered_by": extension})
            self._leave_bot(bot, call.at)
            if kind == "user" and extension:
                call.tell("agent.connected", {"extension": extension})
        call.wait(plan.human_seconds)
        return self._end(call, plan, "completed", plan.human_hangup_by)

    def _refer(self, refer_to: str) -> tuple[str, str, int]:
        """What the refer API answers: (destination type, extension, 202) or ("refused", code, SIP status)."""
        if refer_to not in self._refers:
            try:
                _, destination = resolve_refer(self.cast.center, refer_to)
            except ReferToError as exc:
                self._refers[refer_to] = ("refused", exc.code, exc.sip_status)
            else:
                self._refers[refer_to] = (destination.type, destination.extension or "", 202)
        return self._refers[refer_to]

    def _agent(self, target: ReferTarget | None, plan: CallPlan) -> str | None:
        agents = target.agents if target is not None else ()
        if not agents:
            agents = tuple(sorted({a for t in self.cast.refer_targets for a in t.agents}))
        return agents[int(plan.agent_pick * len(agents))] if agents else None

    def _leave_bot(self, bot: str, at: datetime) -> None:
        """The bot has a free line again from `at` (routing counts a bot's calls against its capacity)."""
        if bot in self.cast.capacity:
            heapq.heappush(self._busy, (at, bot))

    def _end(
        self,
        call: _Teller,
        plan: CallPlan,
        reason: str,
        hangup_by: str,
        *,
        has_media: bool = True,
        bot: str | None = None,
    ) -> GeneratedCall:
        if bot is not None:
            self._leave_bot(bot, call.at)
        call.tell("call.ended", {"end_reason": reason, "hangup_by": hangup_by})
        if has_media and plan.has_recording:
            call.wait(1)  # the media server uploads the recording after the hangup
            call.tell(
                "recording.ready", {"url": f"https://recordings.example.com/{self.domain}/{call.call_id}.mp3"}
            )
        return GeneratedCall(call.call_id, call.events)


def generate(cast: Cast, spec: Spec) -> Iterator[GeneratedCall]:
    """Every call of `spec`, in start order."""
    return Generator(cast, spec).calls(days_of(hours(spec, cast.zone)), 0)


def chunks(calls: Iterable[GeneratedCall], size: int) -> Iterator[list[GeneratedCall]]:
    batch: list[GeneratedCall] = []
    for call in calls:
        batch.append(call)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- into the database ----------------------------------------------------------------------------


def api_event(event: EventIn) -> dict[str, Any]:
    """An event as the SIP layer posts it (reporting.simulator.make_event's shape)."""
    return {
        "id": event.event_id,
        "type": event.type,
        "call_id": event.call_id,
        "occurred_at": event.occurred_at.isoformat(timespec="milliseconds"),
        "data": event.data,
    }


def ingest_calls(center: ContactCenter, calls: Iterable[GeneratedCall], *, batch_events: int = 1000) -> int:
    """Through the events API's path: each batch (whole calls, ≤ `batch_events` events) validated as
    the API validates a request body and stored by `ingest_events`. Returns the events accepted."""
    accepted = 0
    body: list[dict[str, Any]] = []

    def send() -> None:
        nonlocal accepted, body
        events, agents = validate_events(center, {"events": body})
        accepted += ingest_events(center=center, events=events, agents=agents).accepted
        body = []

    for call in calls:
        if body and len(body) + len(call.events) > batch_events:
            send()
        body.extend(api_event(event) for event in call.events)
    if body:
        send()
    return accepted


def fold(center: ContactCenter, calls: Sequence[GeneratedCall]) -> list[tuple[str, Assembly]]:
    """What ingestion would fold from these calls' events: the same refs, the same `assemble`."""
    events = [event for call in calls for event in call.events]
    refs = resolve_refs(center, events)
    settings_ = FoldSettings(bot_abandon_seconds=float(settings.BOT_ABANDON_SECONDS))
    return [
        (
            call.call_id,
            assemble(
                [
                    StoredEvent(e.event_id, e.type, e.occurred_at, e.data, refs[e.event_id])
                    for e in call.events
                ],
                settings_,
            ),
        )
        for call in calls
    ]


_FK_COLUMNS = {
    "phone_number_id",
    "flow_id",
    "virtual_agent_id",
    "active_virtual_agent_id",
    "queue_id",
    "answered_by_id",
}


def bulk_write(
    center: ContactCenter, calls: Iterable[GeneratedCall], *, chunk: int = 5000, with_rollups: bool = True
) -> int:
    """The folded records and handoffs of `calls`, written in bulk (COPY on PostgreSQL); no events.
    The rollup buckets they fall in are recomputed in the same transaction, unless `with_rollups`
    is off (a bulk load that runs `rebuild_rollups` after). Returns the records written."""
    written = 0
    updated = datetime.now(UTC)
    for batch in chunks(calls, chunk):
        folded = fold(center, batch)
        with transaction.atomic():
            if connection.vendor == "postgresql":
                _copy(center, folded, updated)
            else:
                _bulk_create(center, folded, updated)
            if with_rollups:
                rollups.recompute_buckets(
                    center.pk, rollups.stale_buckets(*(a.record.started_at for _, a in folded))
                )
        written += len(folded)
    return written


def _bulk_create(center: ContactCenter, folded: list[tuple[str, Assembly]], updated: datetime) -> None:
    records = CallRecord.objects.bulk_create(
        [
            CallRecord(
                contact_center=center,
                call_id=call_id,
                updated=updated,
                **{name: getattr(a.record, name) for name in RECORD_FIELDS},
            )
            for call_id, a in folded
        ]
    )
    Handoff.objects.bulk_create(
        [
            Handoff(
                contact_center=center,
                call_record_id=record.pk,
                **{name: getattr(h, name) for name in HANDOFF_FIELDS},
            )
            for record, (_, a) in zip(records, folded, strict=True)
            for h in a.handoffs
        ]
    )


def _column(model: type[Any], name: str) -> str:
    """The column of a field named by its attribute (`queue_id` is the `queue` foreign key's)."""
    for field_ in model._meta.concrete_fields:
        if name in (field_.name, field_.attname):
            return str(field_.column)
    raise LookupError(f"{model.__name__} has no field {name}")


def _copy(center: ContactCenter, folded: list[tuple[str, Assembly]], updated: datetime) -> None:
    record_names = ("id", "contact_center_id", "call_id", *RECORD_FIELDS, "updated")
    handoff_names = ("contact_center_id", "call_record_id", *HANDOFF_FIELDS)
    with connection.cursor() as cursor:
        # Ids reserved from the table's own sequence: safe beside other writers.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [CallRecord._meta.db_table, len(folded)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        raw = cursor.cursor
        center_id = center.pk
        record_sql = _copy_sql(CallRecord, record_names)
        with raw.copy(record_sql) as copy:
            for pk, (call_id, a) in zip(ids, folded, strict=True):
                r = a.record
                copy.write_row((pk, center_id, call_id, *[getattr(r, n) for n in RECORD_FIELDS], updated))
        with raw.copy(_copy_sql(Handoff, handoff_names)) as copy:
            for pk, (_, a) in zip(ids, folded, strict=True):
                for h in a.handoffs:
                    values = [getattr(h, n) for n in HANDOFF_FIELDS]
                    values[HANDOFF_FIELDS.index("context")] = json.dumps(h.context)
                    copy.write_row((center_id, pk, *values))


def _copy_sql(model: type[Any], names: Sequence[str]) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(_column(model, name)) for name in names)
    return f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"


def has_history(center: ContactCenter) -> bool:
    """Whether generate_calls already gave this center history (its call ids start with hist-)."""
    return CallRecord.objects.for_center(center).filter(call_id__startswith="hist-").exists()
