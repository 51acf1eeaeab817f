"""A generated day of call events, replayed through ingestion, and snapshots to compare the results.

Used by bench/replay.py (100,000 events on PostgreSQL) and tests/reporting/test_replay.py (a
few thousand, any database). Needs Django set up; `generate_day` itself is pure.

The day: inbound calls to one number and outbound dialer calls, most reaching a bot; of those
a share hands off — to a queue (then usually an agent answers after a wait), to an agent, to
another bot, to an unknown extension (refused) or to an external number — some handoffs fail
(busy, no answer) and are retried; some callers hang up on the bot within seconds; most calls
get a recording. Times spread over the day with several calls in flight at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

BOTS = ("7001", "7002")
QUEUES = ("4323", "4400")
AGENTS = ("1001", "1002", "1003", "1004", "1005")
NUMBER = "+442079460018"
UNKNOWN_EXTENSION = "5555"


@dataclass(frozen=True)
class DayShape:
    bot_share: float = 0.92
    handoff_share: float = 0.45
    quick_hangup_share: float = 0.2  # of calls that stay with the bot
    handoff_fail_share: float = 0.15
    recording_share: float = 0.7


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def generate_day(
    *, events: int, seed: int = 1, day: date = date(2026, 5, 1), slug: str = "acme"
) -> list[dict[str, Any]]:
    """`events` events of realistic calls in time order (the day's calls, cut at exactly `events`)."""
    rng = random.Random(seed)
    shape = DayShape()
    start_of_day = datetime.combine(day, time(0, 0), tzinfo=UTC)
    out: list[dict[str, Any]] = []
    n = 0
    while len(out) < events * 1.05 + 50:  # a margin: the cut below keeps the earliest `events`
        n += 1
        call_id = f"day{seed}-{n:06d}@pbx"
        t0 = start_of_day + timedelta(seconds=rng.uniform(0, 86_000))
        out += _call(rng, shape, call_id, t0, slug)
    out.sort(key=lambda e: (e["occurred_at"], e["id"]))
    return out[:events]


def _call(rng: random.Random, shape: DayShape, call_id: str, t0: datetime, slug: str) -> list[dict[str, Any]]:
    seq = 0

    def ev(kind: str, at: datetime, **data: Any) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        return {
            "id": f"{call_id}/{seq}",
            "type": kind,
            "call_id": call_id,
            "occurred_at": _iso(at),
            "data": data,
        }

    inbound = rng.random() < 0.85
    caller = f"+4479{rng.randint(10_000_000, 99_999_999)}"
    started = (
        {"direction": "inbound", "from": caller, "to": NUMBER}
        if inbound
        else {
            "direction": "outbound",
            "from": NUMBER,
            "to": caller,
            "campaign_id": 7,
            "lead_id": f"L{rng.randint(1, 5000)}",
        }
    )
    events = [ev("call.started", t0, **started)]
    t = t0
    if rng.random() >= shape.bot_share:  # the flow ended the call before any bot
        t += timedelta(seconds=rng.uniform(5, 60))
        events.append(ev("call.ended", t, end_reason="flow_hangup", hangup_by="system"))
        return events
    bot = rng.choice(BOTS)
    t += timedelta(seconds=rng.uniform(0.5, 3))
    events.append(ev("bot.connected", t, virtual_agent=bot, provider_call_id=f"conv_{call_id}"))
    hangup_by = "caller"
    if rng.random() < shape.handoff_share:
        t += timedelta(seconds=rng.uniform(20, 180))
        for attempt in range(2):  # a failed REFER is retried once, to a queue
            if attempt:
                # The bot tells the caller and tries again: never in the same instant as the failure,
                # which the fold would otherwise order first and so attribute to the retry.
                t += timedelta(seconds=rng.uniform(0.5, 3))
            roll = rng.random()
            if attempt or roll < 0.7:
                kind, ext = "queue", rng.choice(QUEUES)
            elif roll < 0.85:
                kind, ext = "agent", rng.choice(AGENTS)
            elif roll < 0.9:
                kind, ext = "bot", next(b for b in BOTS if b != bot)
            elif roll < 0.95:
                kind, ext = "unknown", UNKNOWN_EXTENSION
            else:
                kind, ext = "external", ""
            refer_to = (
                f"<tel:+1212555{rng.randint(1000, 9999)}>"
                if kind == "external"
                else f"<sip:{ext}@{slug}.voiso.com>"
            )
            headers = {"X-Intent": rng.choice(["billing", "sales", "support"]), "X-Attempt": str(attempt + 1)}
            events.append(ev("handoff.requested", t, virtual_agent=bot, refer_to=refer_to, headers=headers))
            if kind == "unknown":
                t += timedelta(seconds=0.1)
                events.append(ev("handoff.failed", t, reason="unknown extension", sip_status=404))
                continue
            t += timedelta(seconds=rng.uniform(0.05, 0.3))
            events.append(ev("handoff.accepted", t, sip_status=202))
            if rng.random() < shape.handoff_fail_share:
                t += timedelta(seconds=rng.uniform(5, 30))
                events.append(
                    ev("handoff.failed", t, reason=rng.choice(["busy", "no answer"]), sip_status=486)
                )
                continue
            t += timedelta(seconds=rng.uniform(0.5, 3))
            events.append(ev("handoff.completed", t, answered_by=ext if kind == "agent" else ""))
            if kind == "queue" and rng.random() < 0.85:
                t += timedelta(seconds=rng.uniform(3, 120))
                events.append(ev("agent.connected", t, extension=rng.choice(AGENTS)))
                hangup_by = rng.choice(["caller", "agent"])
                t += timedelta(seconds=rng.uniform(30, 600))
            elif kind == "agent":
                t += timedelta(seconds=rng.uniform(1, 4))
                events.append(ev("agent.connected", t, extension=ext))
                hangup_by = rng.choice(["caller", "agent"])
                t += timedelta(seconds=rng.uniform(30, 600))
            elif kind == "bot":
                t += timedelta(seconds=rng.uniform(0.5, 2))
                events.append(ev("bot.connected", t, virtual_agent=ext))
                hangup_by = rng.choice(["caller", "bot"])
                t += timedelta(seconds=rng.uniform(20, 200))
            else:  # abandoned in the queue, or gone to the external number
                t += timedelta(seconds=rng.uniform(10, 300))
            break
        else:
            t += timedelta(seconds=rng.uniform(5, 60))  # both REFERs failed: back with the bot
            hangup_by = rng.choice(["caller", "bot"])
    elif rng.random() < shape.quick_hangup_share:
        t += timedelta(seconds=rng.uniform(1, 9))  # the caller hangs up on the bot
    else:
        t += timedelta(seconds=rng.uniform(30, 300))
        hangup_by = rng.choice(["caller", "bot"])
    events.append(ev("call.ended", t, end_reason="normal_clearing", hangup_by=hangup_by))
    if rng.random() < shape.recording_share:
        t += timedelta(seconds=rng.uniform(2, 30))
        events.append(ev("recording.ready", t, url=f"https://recordings.example.com/{call_id}.wav"))
    return events


# --- with Django ------------------------------------------------------------------------------


def seed_center(slug: str = "acme") -> Any:
    """A contact center with what the day names: two bots, two queues, five agents, the number."""
    from routing.services import create_phone_number, create_queue
    from virtual_agents import services as va
    from voiso_byob.models import Role
    from voiso_byob.services import add_member, create_contact_center

    center = create_contact_center(
        slug=slug,
        name=slug.title(),
        admin_email=f"admin@{slug}.example",
        admin_password=None,
        by="bench",
        byob_enabled=True,
    )
    for digits in AGENTS:
        add_member(
            center=center,
            email=f"agent{digits}@{slug}.example",
            role=Role.AGENT,
            extension=digits,
            password=None,
            by="bench",
        )
    for name, digits in zip(("Sales", "Support"), QUEUES, strict=True):
        create_queue(center=center, by="bench", name=name, extension=digits)
    integration = va.create_integration(
        center=center, provider="generic_sip", label="House bots", credentials=None, by="bench"
    )
    for name, digits in zip(("Billing bot", "Overflow bot"), BOTS, strict=True):
        va.create_virtual_agent(
            integration=integration,
            by="bench",
            name=name,
            sip_uri=f"sip:{digits}@10.0.0.5",
            extension=digits,
            connect=True,
        )
    create_phone_number(center=center, by="bench", number=NUMBER, label="main")
    return center


def replay(
    center: Any,
    events: Sequence[dict[str, Any]],
    *,
    batch: int,
    after_batch: Callable[[], object] | None = None,
) -> tuple[int, int]:
    """Ingest `events` in batches as the events API does (validate, then ingest) → (accepted, duplicates)."""
    from reporting.events import validate_events
    from reporting.ingest import ingest_events

    accepted = duplicates = 0
    for start in range(0, len(events), batch):
        valid, agents = validate_events(center, {"events": list(events[start : start + batch])})
        result = ingest_events(center=center, events=valid, agents=agents)
        accepted += result.accepted
        duplicates += result.duplicates
        if after_batch is not None:
            after_batch()
    return accepted, duplicates


def wipe(center: Any) -> None:
    from reporting.models import CallEvent, CallRecord, Handoff

    Handoff.objects.filter(contact_center=center).delete()
    CallRecord.objects.filter(contact_center=center).delete()
    CallEvent.objects.filter(contact_center=center).delete()


def snapshot(center: Any) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, int], dict[str, Any]]]:
    """Every field of every record (by call id) and handoff (by call id, sequence) but row ids, `updated`."""
    from reporting.models import CallRecord, Handoff

    records = {
        row["call_id"]: {k: v for k, v in row.items() if k not in ("id", "updated")}
        for row in CallRecord.objects.filter(contact_center=center).values()
    }
    fields = [f.attname for f in Handoff._meta.concrete_fields if f.attname not in ("id", "call_record_id")]
    handoffs = {
        (row["call_record__call_id"], row["sequence"]): row
        for row in Handoff.objects.filter(contact_center=center).values(*fields, "call_record__call_id")
    }
    return records, handoffs


def differences(expected: Any, actual: Any, *, limit: int = 10) -> list[str]:
    """Human-readable differences between two snapshots (empty when identical)."""
    found: list[str] = []
    for label, want, got in (("record", expected[0], actual[0]), ("handoff", expected[1], actual[1])):
        for key in sorted(set(want) | set(got), key=str):
            if want.get(key) != got.get(key):
                a, b = want.get(key) or {}, got.get(key) or {}
                fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                found.append(
                    f"{label} {key}: {', '.join(f'{f}: {a.get(f)!r} != {b.get(f)!r}' for f in fields[:4])}"
                )
                if len(found) >= limit:
                    return found
    return found


def shuffled(events: Iterable[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    out = list(events)
    random.Random(seed).shuffle(out)
    return out
