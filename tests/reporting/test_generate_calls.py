"""generate_calls (reporting/history.py): realistic history, by ingestion or in bulk, with one result."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict

from reporting import history
from reporting.models import CallEvent, CallRecord, Handoff
from voiso_byob.models import ContactCenter

END = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)  # a window across Europe/London's spring DST change


@pytest.fixture
def demo(db) -> ContactCenter:
    call_command("seed_demo", stdout=io.StringIO())
    return ContactCenter.objects.get(slug="acme")


def _records(center: ContactCenter) -> dict[str, dict[str, Any]]:
    """Every record and its handoffs as plain values, by call id, without insertion ids and times."""
    handoffs: dict[int, list[dict[str, Any]]] = {}
    for handoff in Handoff.objects.for_center(center).order_by("call_record_id", "sequence"):
        handoffs.setdefault(handoff.call_record_id, []).append(
            model_to_dict(handoff, exclude=["id", "call_record"])
        )
    return {
        record.call_id: {
            **model_to_dict(record, exclude=["id", "updated"]),
            "handoffs": handoffs.get(record.pk, []),
        }
        for record in CallRecord.objects.for_center(center)
    }


def _generated(center: ContactCenter, count: int, **spec: Any) -> list[history.GeneratedCall]:
    spec_ = history.Spec(count=count, end=END, seed=7, **spec)
    return list(history.generate(history.cast_for(center), spec_))


def test_bulk_records_and_handoffs_equal_what_ingestion_folds(demo: ContactCenter) -> None:
    # The events name the center's own bots, queues, numbers and SIP domain, so both paths write into
    # the one center in turn: ingestion first, then (its rows gone) the bulk path from the same events.
    calls = _generated(demo, 400, days=7)
    assert history.ingest_calls(demo, calls) == sum(len(call.events) for call in calls)
    ingested = _records(demo)
    CallRecord.objects.for_center(demo).delete()
    CallEvent.objects.for_center(demo).delete()

    assert history.bulk_write(demo, calls, chunk=150) == 400
    bulk = _records(demo)

    assert len(ingested) == 400
    assert bulk.keys() == ingested.keys()
    for call_id, record in ingested.items():
        assert bulk[call_id] == record, call_id
    assert not CallEvent.objects.for_center(demo).exists()  # bulk: records and handoffs only


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_copy_path_equals_ingestion_on_postgresql() -> None:
    call_command("seed_demo", stdout=io.StringIO())
    demo = ContactCenter.objects.get(slug="acme")
    calls = _generated(demo, 300, days=5)
    history.ingest_calls(demo, calls)
    ingested = _records(demo)
    CallRecord.objects.for_center(demo).delete()
    CallEvent.objects.for_center(demo).delete()

    history.bulk_write(demo, calls, chunk=100)  # COPY, ids from the table's sequence

    assert _records(demo) == ingested


def test_history_has_the_stories_reports_need(demo: ContactCenter) -> None:
    calls = _generated(demo, 1500, days=14)
    history.bulk_write(demo, calls)
    records = CallRecord.objects.for_center(demo)
    outcomes = Counter(records.filter(direction="inbound").values_list("bot_outcome", flat=True))
    assert outcomes["contained"] and outcomes["handed_off"] and outcomes["abandoned_in_bot"]
    assert outcomes[""]  # menu choice 3: straight to the Billing queue, no bot
    handoffs = Handoff.objects.for_center(demo)
    assert {"queue", "user", "external"} <= set(handoffs.values_list("target_type", flat=True))
    failed = handoffs.filter(state="failed")
    assert failed.exists() and not failed.filter(sip_status__isnull=True).exists()
    assert set(failed.values_list("failure_reason", flat=True)) & {"busy", "no_answer", "queue_full"}
    assert handoffs.filter(state="completed").count() > failed.count()
    assert all(h.context.get("X-Reason") for h in handoffs.filter(call_record__direction="inbound")[:50])
    # Queue waits, answered and given up.
    queued = records.filter(queue__isnull=False)
    assert queued.filter(agent_connected_at__isnull=False).exists()
    assert queued.filter(end_reason="abandoned_in_queue", agent_connected_at__isnull=True).exists()
    # The demo campaign's calls, with the dialer's outcomes.
    outbound = records.filter(direction="outbound")
    assert outbound.exclude(campaign_ref="").count() == outbound.count() > 0
    assert {"busy", "no_answer", "machine", "failed", "completed"} <= set(
        outbound.values_list("end_reason", flat=True)
    )
    assert not records.filter(status="in_progress").exists()


def test_business_hours_are_busier_in_the_centers_time_zone(demo: ContactCenter) -> None:
    spec = history.Spec(count=20_000, end=END, days=28, seed=3)
    hours = history.hours(spec, ZoneInfo("Europe/London"))
    assert sum(n for _, _, n in hours) == 20_000
    by_local_hour: Counter[int] = Counter()
    weekday, weekend = 0, 0
    for hour, _, n in hours:
        local = hour.astimezone(ZoneInfo("Europe/London"))
        by_local_hour[local.hour] += n
        weekday, weekend = (weekday + n, weekend) if local.weekday() < 5 else (weekday, weekend + n)
    assert by_local_hour[11] > 10 * by_local_hour[3]
    assert weekday / 5 > 2 * weekend / 2
    # 2026-03-29 (spring forward in London) has 23 hours, each with calls counted once.
    london = ZoneInfo("Europe/London")
    day = [h for h, _, _ in hours if h.astimezone(london).date().isoformat() == "2026-03-29"]
    assert len(day) == 23


def test_the_same_seed_gives_the_same_calls_and_the_window_is_kept(demo: ContactCenter) -> None:
    first, again = _generated(demo, 300, days=3), _generated(demo, 300, days=3)
    assert [(c.call_id, c.events) for c in first] == [(c.call_id, c.events) for c in again]
    other = list(history.generate(history.cast_for(demo), history.Spec(count=300, end=END, days=3, seed=8)))
    assert {c.call_id for c in other}.isdisjoint(c.call_id for c in first)
    starts = [c.events[0].occurred_at for c in first]
    assert starts == sorted(starts)
    assert min(starts) >= END - history.SETTLE - timedelta(days=3)
    assert max(e.occurred_at for c in first for e in c.events) < END


def test_a_full_bot_sends_callers_to_its_queue(demo: ContactCenter) -> None:
    from virtual_agents.models import VirtualAgent

    VirtualAgent.objects.for_center(demo).update(max_concurrent_calls=1)
    calls = _generated(demo, 3000, days=1)  # ~300 calls an hour at midday: far more than one line
    history.bulk_write(demo, calls)
    records = CallRecord.objects.for_center(demo).filter(direction="inbound")
    assert records.filter(virtual_agent__isnull=True, queue__name="Support").exists()
    assert records.filter(virtual_agent__isnull=True, queue__name="Sales").exists()


def test_command_through_ingestion_once(demo: ContactCenter) -> None:
    out = io.StringIO()
    call_command("generate_calls", "--count", "200", "--days", "5", "--seed", "1", "--once", stdout=out)
    assert "200 calls" in out.getvalue()
    assert CallRecord.objects.for_center(demo).count() == 200
    assert CallEvent.objects.for_center(demo).exists()
    out = io.StringIO()
    call_command("generate_calls", "--count", "200", "--once", stdout=out)
    assert "nothing to do" in out.getvalue()
    assert CallRecord.objects.for_center(demo).count() == 200


def test_command_bulk(demo: ContactCenter) -> None:
    call_command("generate_calls", "--count", "250", "--bulk", "--seed", "2", stdout=io.StringIO())
    assert CallRecord.objects.for_center(demo).count() == 250
    assert not CallEvent.objects.for_center(demo).exists()


def test_command_refuses_bad_input(db) -> None:
    with pytest.raises(CommandError, match="No contact center"):
        call_command("generate_calls", "--count", "10", "--center", "nowhere")
    with pytest.raises(CommandError):
        call_command("generate_calls", "--count", "0")
