"""The rollups the fold worker keeps give every report exactly what the raw records give (#14).

Random calls (bots, queues, campaigns, directions, outcomes, handoffs to queues, unknown
extensions and outside numbers, failures, waits and agents) over London's spring-forward night,
their events posted shuffled in random batches, some held back and posted last (a late
call.started moves a call into a bucket, a late REFER turns a contained call into a handed-off
one, a late call.ended decides it), then every report x interval x filter, read in zones with
DST, +05:30 and +05:45: once the worker has folded the buckets ingestion marked stale, the rollup
path equals the raw path, dict for dict. Also halfway through, after `rebuild_rollups`, with four
workers posting at once and with a fold running while a batch is uncommitted (PostgreSQL, real
commits).
"""

from __future__ import annotations

import io
import os
import random
import signal
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from reporting import history, rollups
from reporting.models import CallRecord, CallRollup, HandoffRollup, StaleBucket
from reporting.reports import campaigns, from_rollups, queues, virtual_agents
from reporting.reports.filters import ReportFilters
from reporting.rollups import fold_stale, rebuild_rollups
from routing.models import Queue
from tests.factories import make_queue
from tests.reporting.conftest import T0, call_events, event, make_bot, post_events
from tests.reporting.test_ingest_concurrency import posted_by_workers
from voiso_byob.models import ContactCenter

pytestmark = pytest.mark.ingested_rollups

# London's clocks go forward at 01:00 UTC on 29 March 2026: the calls span the night.
SPRING_FORWARD = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
ZONES = ("Europe/London", "Asia/Kolkata", "Asia/Kathmandu")
INTERVALS = ("15m", "hour", "day", "week", "none")
END_REASONS = ("normal_clearing", "busy", "no_answer", "machine", "dropped", "failed")
CAMPAIGN_REFS = (str(uuid.uuid4()), str(uuid.uuid4()))
# Durations drawn from these, to land on bin edges (waits of exactly 20 s: within a 20 s T).
STEPS = (0.0, 5.0, 20.0, 30.0, 120.0, 0.25, 19.999999, 20.000001)


class Calls:
    """Random calls' events, as the SIP layer would send them (tests/reporting/conftest.event)."""

    def __init__(self, rng: random.Random, bots: list[str], queue_extensions: list[str]) -> None:
        self.rng = rng
        self.bots = bots
        self.refer_targets = [
            *(f"<sip:{ext}@acme.voiso.com>" for ext in queue_extensions),
            "<sip:9999@acme.voiso.com>",  # no such extension: unresolved
            "<sip:+15551234567@acme.voiso.com>",
        ]
        self.queues = queue_extensions
        self.events: list[dict[str, Any]] = []
        self.count = 0

    def _step(self) -> float:
        rng = self.rng
        return rng.choice(STEPS) if rng.random() < 0.3 else rng.uniform(0.5, 400)

    def _event(self, kind: str, call_id: str, at: datetime, **data: Any) -> None:
        self.count += 1
        occurred = at.isoformat().replace("+00:00", "Z")
        self.events.append(
            {
                "id": f"ev-{call_id}-{self.count}",
                "type": kind,
                "call_id": call_id,
                "occurred_at": occurred,
                "data": data,
            }
        )

    def call(self, call_id: str) -> None:
        rng = self.rng
        at = SPRING_FORWARD + timedelta(seconds=rng.uniform(-30 * 3600, 30 * 3600))
        started: dict[str, Any] = {
            "direction": rng.choice(["inbound", "outbound"]),
            "from": "+442079460999",
            "to": "+442079460018",
        }
        if rng.random() < 0.4:
            started.update(campaign_id=rng.choice(CAMPAIGN_REFS), lead_id=str(rng.randrange(6)))
        self._event("call.started", call_id, at, **started)
        if rng.random() < 0.75:
            bot = rng.choice(self.bots)
            at += timedelta(seconds=rng.uniform(0, 3))
            self._event("bot.connected", call_id, at, virtual_agent=bot)
            for _ in range(rng.choice([0, 0, 1, 1, 2])):
                at += timedelta(seconds=self._step())
                headers = rng.choice([{}, {"X-Reason": "billing"}, {"X-Reason": "sales"}, {"X-Reason": ""}])
                target = rng.choice(self.refer_targets)
                self._event(
                    "handoff.requested", call_id, at, virtual_agent=bot, refer_to=target, headers=headers
                )
                if rng.random() < 0.7:
                    self._event("handoff.accepted", call_id, at + timedelta(seconds=0.2), sip_status=202)
                at += timedelta(seconds=rng.uniform(0.5, 2))
                if rng.random() < 0.6:
                    self._event("handoff.completed", call_id, at, answered_by="queue")
                    self._wait(call_id, at)
                    break
                if rng.random() < 0.8:
                    failure = rng.choice([("busy", 486), ("unavailable", 503), ("timeout", None)])
                    data: dict[str, Any] = {"reason": failure[0]}
                    if failure[1]:
                        data["sip_status"] = failure[1]
                    self._event("handoff.failed", call_id, at, **data)
        elif rng.random() < 0.5:
            at += timedelta(seconds=rng.uniform(0, 3))
            self._event("queue.entered", call_id, at, queue=rng.choice(self.queues))
            self._wait(call_id, at)
        if rng.random() < 0.85:
            end = at + timedelta(seconds=self._step() + 1)
            self._event(
                "call.ended",
                call_id,
                end,
                end_reason=rng.choice(END_REASONS),
                hangup_by=rng.choice(["caller", "bot", "agent"]),
            )

    def _wait(self, call_id: str, entered: datetime) -> None:
        if self.rng.random() < 0.6:
            answered = entered + timedelta(seconds=self._step())
            self._event("agent.connected", call_id, answered, extension="1001")


def post_shuffled(client: Client, events: list[dict[str, Any]], rng: random.Random) -> None:
    """In random order and random batches (1 to 12: single events take ingestion's one-event path)."""
    events = events[:]
    rng.shuffle(events)
    while events:
        size = rng.choice([1, 1, 2, 5, 12])
        batch, events = events[:size], events[size:]
        response = post_events(client, batch[0] if len(batch) == 1 else batch)
        assert response.status_code in (200, 202), response.content


def late_ones(
    events: list[dict[str, Any]], rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(now, later): a third of the call.started, call.ended and handoff.requested events held back."""
    later = [
        e
        for e in events
        if e["type"] in ("call.started", "call.ended", "handoff.requested") and rng.random() < 0.33
    ]
    held = {e["id"] for e in later}
    return [e for e in events if e["id"] not in held], later


def filter_sets(center, bots, queue_ids) -> list[dict[str, Any]]:
    return [
        {},
        {"virtual_agents": (bots[0],)},
        {"queues": (queue_ids[0],)},
        {"campaigns": (uuid.UUID(CAMPAIGN_REFS[0]),)},
        {"direction": "inbound"},
        {"virtual_agents": tuple(sorted(bots)), "direction": "outbound", "queues": tuple(sorted(queue_ids))},
    ]


def assert_every_report_equal(
    center, bots: list[uuid.UUID], queue_ids: list[uuid.UUID], zones: tuple[str, ...] = ZONES
) -> int:
    """The stale buckets folded (what the worker does about once a second), then every report x
    zone x interval x filter set: rollups == raw. Returns the comparisons made."""
    fold_all()
    compared = 0
    for zone in zones:
        for interval in INTERVALS:
            for extra in filter_sets(center, bots, queue_ids):
                filters = ReportFilters(
                    center=center,
                    start=date(2026, 3, 27),
                    end=date(2026, 3, 30),
                    tz=ZoneInfo(zone),
                    interval=interval,
                    **extra,
                )
                assert from_rollups.can_answer(filters)
                pairs = [
                    (
                        from_rollups.virtual_agent_report(filters),
                        virtual_agents.virtual_agent_report_raw(filters),
                    ),
                    (from_rollups.queue_report(filters), queues.queue_report_raw(filters)),
                    (from_rollups.campaign_report(filters), campaigns.campaign_report_raw(filters)),
                ]
                for fast, raw in pairs:
                    assert fast == raw, (zone, interval, extra)
                    compared += 1
    return compared


def fold_all() -> int:
    """What `manage.py fold_rollups` does each second: every marked bucket recomputed."""
    return rollups.fold_all_stale()


def _world(center):
    bots = [make_bot(center, name=f"Bot {n}", extension=f"70{n:02d}") for n in range(3)]
    queue_list = [make_queue(center, name=f"Queue {n}", extension=f"43{n:02d}") for n in range(2)]
    return bots, queue_list


def test_reports_from_ingested_rollups_equal_the_raw_reports(acme, switch) -> None:
    rng = random.Random(14)
    bots, queue_list = _world(acme)
    calls = Calls(rng, [bot.extension.digits for bot in bots], [q.extension.digits for q in queue_list])
    for n in range(90):
        calls.call(f"rc-{n}")
    now, later = late_ones(calls.events, rng)
    bot_ids, queue_ids = [bot.pk for bot in bots], [q.pk for q in queue_list]

    post_shuffled(switch, now, rng)
    assert_every_report_equal(acme, bot_ids, queue_ids, zones=("Europe/London",))
    post_shuffled(switch, later, rng)  # late events: outcomes, buckets and handoffs move
    records = CallRecord.objects.for_center(acme)
    assert (
        records.filter(bot_outcome="handed_off").exists()
        and records.filter(queue_answered_at__isnull=False).exists()
    )
    assert records.filter(campaign_ref__gt="").exists() and records.filter(handoff_count=2).exists()
    assert assert_every_report_equal(acme, bot_ids, queue_ids) == len(ZONES) * len(INTERVALS) * 6 * 3

    # The rebuild from the records gives the same figures.
    rebuild_rollups(center_id=acme.pk)
    assert CallRollup.objects.filter(contact_center=acme).exists()
    assert HandoffRollup.objects.filter(contact_center=acme).exists()
    assert_every_report_equal(acme, bot_ids, queue_ids, zones=("Asia/Kathmandu",))


def test_a_report_read_in_another_zone_goes_to_the_raw_records(acme) -> None:
    """A zone whose offset is not whole quarter hours (Liberia until 1972: -0:44:30) cannot be cut
    out of 15-minute UTC buckets."""
    filters = ReportFilters(
        center=acme, start=date(1971, 5, 1), end=date(1971, 5, 2), tz=ZoneInfo("Africa/Monrovia")
    )
    assert not from_rollups.can_answer(filters)
    assert from_rollups.can_answer(
        ReportFilters(
            center=acme, start=date(2026, 3, 28), end=date(2026, 3, 30), tz=ZoneInfo("Asia/Kathmandu")
        )
    )


def test_rebuild_rollups_command(acme, switch, capsys) -> None:
    bots, queue_list = _world(acme)
    calls = Calls(
        random.Random(3), [bot.extension.digits for bot in bots], [q.extension.digits for q in queue_list]
    )
    for n in range(10):
        calls.call(f"cmd-{n}")
    post_shuffled(switch, calls.events, random.Random(4))
    fold_all()
    kept = sorted(
        CallRollup.objects.filter(contact_center=acme)
        .exclude(calls=0, offered=0, attempts=0, in_bot=0, waiting=0)
        .values_list("bucket", "calls", "offered", "attempts")
    )
    CallRollup.objects.all().delete()
    call_command("rebuild_rollups", "--center", "acme")
    assert "acme: " in capsys.readouterr().out
    rebuilt = sorted(
        CallRollup.objects.filter(contact_center=acme)
        .exclude(calls=0, offered=0, attempts=0, in_bot=0, waiting=0)
        .values_list("bucket", "calls", "offered", "attempts")
    )
    assert rebuilt == kept and kept


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_folding_into_the_same_buckets_lose_no_update(acme, api_keys) -> None:
    """Four workers post the events of calls that share buckets at once (one-event requests and
    batches): every change is marked, and the fold after gives the raw figures."""
    rng = random.Random(5)
    bots, queue_list = _world(acme)
    calls = Calls(rng, [bot.extension.digits for bot in bots], [q.extension.digits for q in queue_list])
    for n in range(40):
        calls.call(f"cc-{n}")
    events = calls.events[:]
    rng.shuffle(events)
    statuses = posted_by_workers(events, api_keys["telephony"], sizes=[1, 1, 3, 8])
    assert statuses <= {200, 202}
    assert assert_every_report_equal(acme, [b.pk for b in bots], [q.pk for q in queue_list])


def test_the_bulk_history_path_keeps_the_rollups_too(db) -> None:
    """generate_calls --bulk (reporting.history.bulk_write) adds its records' contributions as it
    writes them: the demo's realistic stories (campaign calls, retries, failures) read the same."""
    call_command("seed_demo", stdout=io.StringIO())
    demo = ContactCenter.objects.get(slug="acme")
    spec = history.Spec(count=300, end=datetime(2026, 3, 31, 12, 0, tzinfo=UTC), seed=7, days=4)
    calls = list(history.generate(history.cast_for(demo), spec))
    assert history.bulk_write(demo, calls, chunk=120) == 300
    bots = list(demo.virtual_agents.values_list("pk", flat=True))
    queue_ids = list(Queue.objects.for_center(demo).values_list("pk", flat=True))
    for interval in INTERVALS:
        filters = ReportFilters(
            center=demo,
            start=date(2026, 3, 27),
            end=date(2026, 3, 31),
            tz=ZoneInfo("Europe/London"),
            interval=interval,
        )
        assert from_rollups.virtual_agent_report(filters) == virtual_agents.virtual_agent_report_raw(filters)
        assert from_rollups.queue_report(filters) == queues.queue_report_raw(filters)
        assert from_rollups.campaign_report(filters) == campaigns.campaign_report_raw(filters)
    report = from_rollups.campaign_report(filters)
    assert report["totals"]["attempts"] and bots and queue_ids


# --- what ingestion marks and the fold worker recomputes -----------------------------------------

NINE_FORTY_FIVE, NINE = T0 + timedelta(minutes=15), T0 - timedelta(minutes=30)  # T0 is 09:30 UTC
NUMBERS = {"from": "+442079460999", "to": "+442079460018"}


def _window(center) -> ReportFilters:
    return ReportFilters(center=center, start=T0.date(), end=T0.date(), tz=ZoneInfo("UTC"), interval="15m")


def _calls_by_bucket(center) -> dict[datetime, int]:
    rows = CallRollup.objects.filter(contact_center=center, calls__gt=0)
    return dict(rows.values_list("bucket", "calls"))


def test_the_fold_follows_a_record_out_of_its_bucket(acme, switch, bot) -> None:
    """Ingestion writes no rollup row: it marks the buckets a fold moved records from and to, and
    until the worker recomputes them the reports read the last fold's figures."""
    digits = bot.extension.digits
    events = [
        event("call.started", "moved", 20 * 60, direction="inbound", **NUMBERS),
        event("bot.connected", "moved", 20 * 60 + 1, virtual_agent=digits),
        event("call.ended", "moved", 22 * 60, end_reason="normal_clearing", hangup_by="caller"),
    ]
    assert post_events(switch, events).status_code == 202
    assert set(StaleBucket.objects.values_list("bucket", flat=True)) == {NINE_FORTY_FIVE}
    assert not CallRollup.objects.exists()
    filters = _window(acme)
    assert from_rollups.virtual_agent_report(filters)["totals"]["calls"] == 0  # not folded yet
    assert virtual_agents.virtual_agent_report_raw(filters)["totals"]["calls"] == 1

    assert fold_all() == 1
    assert _calls_by_bucket(acme) == {NINE_FORTY_FIVE: 1} and not StaleBucket.objects.exists()
    assert from_rollups.virtual_agent_report(filters) == virtual_agents.virtual_agent_report_raw(filters)

    # An earlier call.started (another id) arrives late: the call now started at 09:10.
    late = event("call.started", "moved", -20 * 60, direction="inbound", **NUMBERS)
    assert post_events(switch, late).status_code in (200, 202)
    assert set(StaleBucket.objects.values_list("bucket", flat=True)) == {NINE_FORTY_FIVE, NINE}
    assert fold_all() == 2
    assert _calls_by_bucket(acme) == {NINE: 1}
    assert from_rollups.virtual_agent_report(filters) == virtual_agents.virtual_agent_report_raw(filters)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_committed_while_a_fold_runs_is_folded_the_next_time(
    acme, bot, api_keys, monkeypatch
) -> None:
    """A fold deletes only the marks it read: a batch that commits after the fold recomputed its
    bucket (without the batch's record) keeps its mark, and the next fold counts it."""
    key, digits = api_keys["telephony"], bot.extension.digits
    first = [
        event("call.started", "c1", 60, direction="inbound", **NUMBERS),
        event("bot.connected", "c1", 61, virtual_agent=digits),
        event("call.ended", "c1", 120, end_reason="normal_clearing", hangup_by="caller"),
    ]
    assert post_events(Client(), first, key).status_code == 202
    second = [{**e, "id": f"{e['id']}-2", "call_id": "c2"} for e in first]
    stored, commit = threading.Event(), threading.Event()

    def uncommitted_batch() -> None:
        try:
            with transaction.atomic():  # the request's transaction, held open until told
                assert post_events(Client(), second, key).status_code == 202
                stored.set()
                assert commit.wait(timeout=30)
        finally:
            connection.close()

    rebuild = rollups._rebuild

    def rebuild_then_let_the_batch_commit(*args: Any, **kwargs: Any) -> None:
        rebuild(*args, **kwargs)
        commit.set()
        batch.join(timeout=30)

    batch = threading.Thread(target=uncommitted_batch)
    batch.start()
    assert stored.wait(timeout=30)
    monkeypatch.setattr(rollups, "_rebuild", rebuild_then_let_the_batch_commit)
    assert fold_stale() == (1, 1)  # c1's mark; c2's was not committed when the fold read them
    monkeypatch.setattr(rollups, "_rebuild", rebuild)
    filters = _window(acme)
    assert from_rollups.virtual_agent_report(filters)["totals"]["calls"] == 1
    assert StaleBucket.objects.count() == 1  # c2's mark stayed
    assert fold_stale() == (1, 1)
    assert from_rollups.virtual_agent_report(filters)["totals"]["calls"] == 2
    assert from_rollups.virtual_agent_report(filters) == virtual_agents.virtual_agent_report_raw(filters)


def test_fold_rollups_command(acme, switch, bot) -> None:
    assert post_events(switch, call_events("cmd", bot=bot.extension.digits)).status_code == 202
    out = io.StringIO()
    call_command("fold_rollups", "--once", stdout=out)
    assert out.getvalue() == "1 buckets folded.\n"
    assert not StaleBucket.objects.exists() and CallRollup.objects.filter(calls=1).exists()
    with pytest.raises(CommandError, match="at most 60"):
        call_command("fold_rollups", "--interval", "0")
    with pytest.raises(CommandError, match="at most --max-lag"):
        call_command("fold_rollups", "--settle", "90")


def test_a_bucket_is_folded_once_it_settles_or_has_waited_too_long(acme) -> None:
    """The worker recomputes a quarter hour 5 s after its last event, and at least once a minute
    while events keep coming: not once per event."""
    now = timezone.now()
    quiet, busy, overdue = T0, T0 + timedelta(minutes=15), T0 + timedelta(minutes=30)
    for bucket, ages in ((quiet, (30, 10)), (busy, (40, 1)), (overdue, (70, 2))):
        for age in ages:
            StaleBucket.objects.create(
                contact_center=acme, bucket=bucket, marked_at=now - timedelta(seconds=age)
            )
    assert fold_stale(settle=5, max_lag=60) == (2, 4)
    assert list(StaleBucket.objects.values_list("bucket", flat=True)) == [busy, busy]
    assert fold_stale() == (1, 2) and not StaleBucket.objects.exists()


@pytest.mark.django_db(transaction=True)  # the worker closes a connection left in a transaction
def test_the_fold_worker_stops_on_sigterm(acme, switch, bot) -> None:
    """The loop `make run` starts: folds what ingestion marks, and a SIGTERM ends it."""
    assert post_events(switch, call_events("loop", bot=bot.extension.digits)).status_code == 202
    out = io.StringIO()
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        call_command("fold_rollups", "--interval", "0.1", "--settle", "0", stdout=out)
    finally:
        timer.cancel()
    assert out.getvalue().splitlines() == [
        "Rollup fold worker started (every 0.1 s; settle 0 s, max lag 60 s).",
        "Rollup fold worker stopped.",
    ]
    assert not StaleBucket.objects.exists() and CallRollup.objects.filter(calls=1).exists()


def test_the_migrations_rebuild_each_center_holding_calls_once(acme, switch, bot, monkeypatch) -> None:
    """The model's ordering once joined its columns to the DISTINCT of center ids: a rebuild per
    record."""
    for call_id in ("m1", "m2", "m3"):
        assert post_events(switch, call_events(call_id, bot=bot.extension.digits)).status_code == 202
    rebuilt: list[Any] = []
    rebuild = rollups.rebuild_rollups
    monkeypatch.setattr(
        rollups, "rebuild_rollups", lambda **kw: rebuilt.append(kw["center_id"]) or rebuild(**kw)
    )
    rollups.rebuild_every_center()
    assert rebuilt == [acme.pk]
    assert CallRollup.objects.filter(contact_center=acme, calls=3).exists()
