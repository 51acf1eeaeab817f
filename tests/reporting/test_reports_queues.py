"""The queues report: each figure on hand-built records, and end to end from telephony events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reporting.models import CallStatus
from reporting.reports.filters import ReportFilters
from reporting.reports.queues import queue_report
from tests.factories import make_queue
from tests.reporting.conftest import T0 as EVENTS_T0
from tests.reporting.conftest import call_events, event, post_events
from tests.reporting.factories import make_call

DAY = date(2026, 5, 1)
T = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def filters(center, **overrides) -> ReportFilters:
    values = {"center": center, "start": DAY, "end": DAY, "tz": ZoneInfo("UTC"), "interval": "day"}
    values.update(overrides)
    return ReportFilters(**values)


def queued(
    center, queue, *, wait: float, answered: bool = True, ended: bool = True, human: float | None = 60.0
):
    entered = T + timedelta(seconds=5)
    return make_call(
        center,
        started_at=T,
        seconds=300 if ended else None,
        status=CallStatus.ENDED if ended else CallStatus.IN_PROGRESS,
        queue=queue,
        queue_entered_at=entered,
        queue_answered_at=entered + timedelta(seconds=wait) if answered else None,
        agent_connected_at=entered + timedelta(seconds=wait) if answered else None,
        queue_wait_seconds=wait if (answered or ended) else None,
        human_seconds=human if answered else None,
    )


def test_each_queue_figure(acme) -> None:
    sales = make_queue(acme, name="Sales", extension="4323")
    sales.service_level_seconds = 20
    sales.save()
    support = make_queue(acme, name="Support", extension="4400")
    support.service_level_seconds = 60
    support.save()
    for wait in (5, 10, 20, 30, 50):  # answered; within 20 s: three
        queued(acme, sales, wait=wait, human=wait * 2)
    queued(acme, sales, wait=40, answered=False)  # abandoned
    queued(acme, sales, wait=0, answered=False, ended=False)  # still waiting
    queued(acme, support, wait=50)  # within Support's 60 s
    queued(acme, support, wait=61)
    make_call(acme, started_at=T, queue=sales)  # a REFER to Sales that failed: never entered, not offered
    make_call(acme, started_at=T)  # no queue at all

    report = queue_report(filters(acme))
    totals = report["totals"]
    assert (totals["offered"], totals["answered"], totals["abandoned"], totals["waiting"]) == (9, 7, 1, 1)
    assert totals["answered_within_service_level"] == 4
    assert totals["service_level"] == pytest.approx(4 / 9)
    assert totals["abandon_rate"] == pytest.approx(1 / 9)
    rows = {row["name"]: row for row in report["rows"]}
    s = rows["Sales"]
    assert (s["offered"], s["answered"], s["abandoned"], s["waiting"]) == (7, 5, 1, 1)
    assert s["service_level"] == pytest.approx(3 / 7) and s["abandon_rate"] == pytest.approx(1 / 7)
    assert s["answer_rate"] == pytest.approx(5 / 7)
    # Percentiles are discrete and binned (reporting.reports.durations): the 90th of these waits
    # is 42 s, reported as its bin's upper edge, 50 s.
    assert (s["wait_p50"], s["wait_p90"], s["wait_mean"]) == (
        pytest.approx(20),
        pytest.approx(50),
        pytest.approx(23),
    )
    assert (s["handle_time_p50"], s["handle_time_mean"]) == (pytest.approx(40), pytest.approx(46))
    assert (s["queue"], s["extension"], s["service_level_seconds"]) == (sales.pk, "4323", 20)
    assert (rows["Support"]["answered_within_service_level"], rows["Support"]["service_level"]) == (1, 0.5)
    for row in report["rows"]:
        assert row["answered"] + row["abandoned"] + row["waiting"] == row["offered"]
    assert report["series"][0]["offered"] == 9


def test_rates_are_null_without_offered_calls_and_a_deleted_queue_keeps_its_calls(acme) -> None:
    assert queue_report(filters(acme))["totals"]["service_level"] is None
    gone = make_queue(acme, name="Gone", extension="4999")
    queued(acme, gone, wait=10)
    gone.delete()
    report = queue_report(filters(acme))
    assert report["totals"]["offered"] == 1
    (row,) = report["rows"]
    assert (row["queue"], row["name"], row["service_level"]) == (None, "Deleted queue", 1.0)


def test_from_events_handed_off_and_straight_from_a_flow(acme, switch, bot, sales) -> None:
    billing = make_queue(acme, name="Billing", extension="4500")
    events = [
        *call_events("answered"),  # REFER to Sales at 30 s, entered at 31, agent at 45: 14 s wait
        *call_events("refer-failed", outcome="failed"),  # Sales named, never entered
        event(
            "call.started", "flow", 0, direction="inbound", **{"from": "+442079460999", "to": "+442079460018"}
        ),
        event("queue.entered", "flow", 10, queue=str(billing.pk)),
        event("call.ended", "flow", 80, end_reason="normal_clearing", hangup_by="caller"),  # gave up
    ]
    for one in events[:3]:
        assert post_events(switch, one).status_code == 202  # one at a time (the single-event path)
    assert post_events(switch, events[3:]).status_code == 202
    report = queue_report(filters(acme, start=EVENTS_T0.date(), end=EVENTS_T0.date()))
    rows = {row["name"]: row for row in report["rows"]}
    assert (rows["Sales"]["offered"], rows["Sales"]["answered"], rows["Sales"]["wait_p50"]) == (
        1,
        1,
        pytest.approx(15),  # a 14 s wait, in the 12-15 s bin
    )
    assert (rows["Billing"]["offered"], rows["Billing"]["abandoned"], rows["Billing"]["answered"]) == (
        1,
        1,
        0,
    )
    assert report["totals"]["service_level"] == pytest.approx(1 / 2)


def test_the_migration_backfills_queue_entry_from_the_stored_events(acme, switch, bot, sales) -> None:
    import importlib

    from django.apps import apps

    from reporting.models import CallRecord

    assert post_events(switch, call_events("old")).status_code == 202
    record = CallRecord.objects.get(call_id="old")
    entered, answered = record.queue_entered_at, record.queue_answered_at
    assert entered is not None and answered is not None
    CallRecord.objects.filter(pk=record.pk).update(queue_entered_at=None, queue_answered_at=None)
    importlib.import_module("reporting.migrations.0007_backfill_queue_entry").backfill(apps, None)
    record.refresh_from_db()
    assert (record.queue_entered_at, record.queue_answered_at) == (entered, answered)
