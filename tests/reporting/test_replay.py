"""A generated day replayed twice, shuffled and re-batched, leaves exactly the records of one ordered replay.

The same check as bench/replay.py, at a few thousand events instead of 100,000.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bench.events_day import differences, generate_day, replay, seed_center, shuffled, snapshot, wipe
from reporting.models import CallEvent, CallRecord, Handoff

EVENTS = 2500


@pytest.fixture
def center(db):
    return seed_center("replay")


def test_the_generated_day_is_realistic() -> None:
    day = generate_day(events=EVENTS, seed=3, slug="replay")
    kinds = Counter(e["type"] for e in day)
    assert len(day) == EVENTS and len({e["id"] for e in day}) == EVENTS
    assert set(kinds) == {
        "call.started", "bot.connected", "handoff.requested", "handoff.accepted", "handoff.completed",
        "handoff.failed", "agent.connected", "call.ended", "recording.ready",
    }  # fmt: skip
    assert kinds["handoff.requested"] > kinds["handoff.failed"] > 0
    assert [e["occurred_at"] for e in day] == sorted(e["occurred_at"] for e in day)


def test_shuffled_twice_equals_ordered(center) -> None:
    day = generate_day(events=EVENTS, seed=3, slug="replay")
    assert replay(center, day, batch=500) == (EVENTS, 0)
    ordered = snapshot(center)
    records, handoffs = ordered
    outcomes = Counter(r["bot_outcome"] for r in records.values())
    assert outcomes["handed_off"] and outcomes["contained"] and outcomes["abandoned_in_bot"] and outcomes[""]
    states = Counter(h["state"] for h in handoffs.values())
    assert states["completed"] and states["failed"]
    # Every failure event landed on its own REFER: as many failed handoffs as handoff.failed events
    # (the day cut at EVENTS leaves a few calls mid-handoff, never a failure on the wrong REFER).
    assert states["failed"] == sum(e["type"] == "handoff.failed" for e in day)
    assert any(h["target_error"] == "unknown_extension" for h in handoffs.values())
    assert any(r["answered_by_id"] for r in records.values()) and any(r["queue_id"] for r in records.values())

    wipe(center)
    assert CallRecord.objects.count() == Handoff.objects.count() == CallEvent.objects.count() == 0
    assert replay(center, shuffled(day, seed=1), batch=500) == (EVENTS, 0)
    assert replay(center, shuffled(day, seed=2), batch=137) == (0, EVENTS)
    assert differences(ordered, snapshot(center)) == []
    assert snapshot(center) == ordered
