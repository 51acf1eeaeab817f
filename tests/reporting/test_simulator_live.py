"""The simulator end to end: calls through the live server's telephony API become call records and
handoffs with the right shapes and counts, and re-sent event batches duplicate nothing."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import httpx
import pytest

from reporting.models import BotOutcome, CallEvent, CallRecord, CallStatus, Handoff, HandoffState
from reporting.simulator import EVENTS_PATH, ReferTarget, Stats
from routing.models import Queue
from tests.reporting.test_simulator import Switchboard, serve, simulate, telephony_key
from tests.reporting.test_simulator import demo as demo  # the seeded demo center (a fixture)
from voiso_byob.models import ContactCenter

# Enough calls to cover every path (menus, bots, queues, people, failures) in a few seconds.
SMALL = {"rate": 10.0, "duration": 1.5}
REFER_TARGETS = (
    ReferTarget("4323", "sales", ("1001", "1002"), 4.0),
    ReferTarget("4500", "billing", ("1001",), 4.0),
    ReferTarget("1003", "human_requested", ("1003",), 1.0),
)


def records(center: ContactCenter) -> list[CallRecord]:
    return list(CallRecord.objects.for_center(center).with_details())


def assert_matches_the_run(center: ContactCenter, stats: Stats) -> list[CallRecord]:
    """What the server kept is exactly what the simulator says it did."""
    kept = records(center)
    assert stats.gave_up == stats.rejected == 0 and not stats.errors, stats.errors
    assert len(kept) == stats.calls_started == stats.calls_ended > 0
    assert all(record.status == CallStatus.ENDED and record.direction == "inbound" for record in kept)
    assert Counter(record.end_reason for record in kept) == stats.end_reasons
    with_bot = [record for record in kept if record.virtual_agent_id is not None]
    assert len(with_bot) == stats.bot_calls
    assert all(record.bot_outcome == BotOutcome.NONE for record in kept if record not in with_bot)
    handoffs = Handoff.objects.for_center(center)
    assert handoffs.count() == stats.handoffs_requested
    assert handoffs.filter(state=HandoffState.COMPLETED).count() == stats.handoffs_completed
    assert handoffs.filter(state=HandoffState.FAILED).count() == stats.handoffs_failed
    assert CallEvent.objects.for_center(center).count() == stats.events_accepted + stats.duplicates
    return kept


def test_at_handoff_share_one_every_bot_call_is_handed_off(demo: ContactCenter, live_server: Any) -> None:
    stats = simulate(
        live_server.url, telephony_key(demo), handoff_share=1.0, refer_targets=REFER_TARGETS, seed=21
    )

    kept = assert_matches_the_run(demo, stats)
    assert stats.duplicates == 0 and stats.bot_calls > 0
    for record in kept:
        if record.virtual_agent_id is None:
            continue
        assert record.bot_outcome == BotOutcome.HANDED_OFF and record.handoff_count == 1
        (handoff,) = record.handoffs.all()
        assert handoff.virtual_agent_id == record.virtual_agent_id
        assert handoff.target_type in ("queue", "user") and handoff.target_extension in (
            "4323",
            "4500",
            "1003",
        )
        assert handoff.refer_to.startswith(f"<sip:{handoff.target_extension}@acme.voiso.com?X-Reason=")
        assert handoff.context["X-Reason"] in ("sales", "billing", "human_requested")
        assert handoff.state in (HandoffState.COMPLETED, HandoffState.FAILED)
        if handoff.state == HandoffState.FAILED:
            assert handoff.failure_reason and handoff.sip_status >= 400
        else:
            assert handoff.accepted_at <= handoff.completed_at
        if record.agent_connected_at is not None:
            assert record.answered_extension in ("1001", "1002", "1003")
        if record.recording_url:
            assert record.recording_url.endswith(f"/{record.call_id}.mp3")


def test_callers_the_flow_sends_straight_to_billing_are_billings_calls(
    demo: ContactCenter, live_server: Any, client: Any
) -> None:
    """The demo's 'press 3 for billing': no bot, no REFER, and yet the Billing queue's call."""
    stats = simulate(
        live_server.url, telephony_key(demo), handoff_share=0.0, refer_targets=REFER_TARGETS, seed=23
    )

    kept = assert_matches_the_run(demo, stats)
    billing = Queue.objects.for_center(demo).get(name="Billing")
    direct = [record for record in kept if record.virtual_agent_id is None]
    assert direct and len(direct) == stats.calls_started - stats.bot_calls
    for record in direct:
        assert record.queue_id == billing.pk, record.call_id
        assert record.answered_extension == "1001" and record.answered_by.user.email == "ana@acme.example"
        assert record.queue_wait_seconds is not None and 0 <= record.queue_wait_seconds < 5
    # No bot call of this run entered a queue (share 0: no handoffs), so Billing's calls are the direct ones.
    assert {r.call_id for r in CallRecord.objects.for_center(demo).filter(queue=billing)} == {
        r.call_id for r in direct
    }
    # The Calls page's queue filter finds them.
    admin = demo.memberships.get(user__email="admin@acme.example").user
    client.force_login(admin)
    response = client.get("/calls/", {"queue": str(billing.pk)})
    assert response.status_code == 200
    listed = set(re.findall(r'href="/calls/([^"/]+)/"', response.content.decode()))
    assert listed == {r.call_id for r in direct}


def test_at_handoff_share_zero_no_call_is_handed_off(demo: ContactCenter, live_server: Any) -> None:
    stats = simulate(live_server.url, telephony_key(demo), handoff_share=0.0, seed=22, **SMALL)

    kept = assert_matches_the_run(demo, stats)
    assert not Handoff.objects.for_center(demo).exists() and stats.bot_calls > 0
    outcomes = {record.bot_outcome for record in kept if record.virtual_agent_id is not None}
    assert outcomes <= {BotOutcome.CONTAINED, BotOutcome.ABANDONED_IN_BOT}


@pytest.mark.parametrize("lost_as", ["502", "close"])
def test_retried_batches_duplicate_nothing(demo: ContactCenter, live_server: Any, lost_as: str) -> None:
    board_iter = serve(live_server, keep_events=False, lose_first_answers=lost_as)
    board: Switchboard = next(board_iter)
    try:
        key = telephony_key(demo)
        # Every batch is stored, its answer lost, and the simulator sends the same batch again.
        stats = simulate(board.url, key, handoff_share=0.5, refer_targets=REFER_TARGETS, seed=23, **SMALL)
    finally:
        next(board_iter, None)

    assert_matches_the_run(demo, stats)
    sent = [body["events"] for path, body in board.requests if path == EVENTS_PATH and body.get("events")]
    unique = {event["id"] for batch in sent for event in batch}
    assert stats.events_accepted == 0 and stats.duplicates == len(unique) > 0
    assert stats.retries >= len(board.lost) == len(sent) // 2
    assert CallEvent.objects.for_center(demo).count() == len(unique)

    # A storm of re-sends afterwards changes no record and no handoff either.
    before = snapshot(demo)
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}) as client:
        for batch in sent[::-1]:
            response = client.post(EVENTS_PATH, json={"events": batch})
            assert response.status_code == 202
            assert response.json() == {"accepted": 0, "duplicates": len(batch)}
    assert snapshot(demo) == before


def snapshot(center: ContactCenter) -> str:
    fields = ["call_id", "status", "bot_outcome", "end_reason", "handoff_count", "event_count", "ended_at"]
    calls = list(CallRecord.objects.for_center(center).order_by("call_id").values(*fields))
    handoffs = list(
        Handoff.objects.for_center(center)
        .order_by("call_record__call_id", "sequence")
        .values("call_record__call_id", "sequence", "state", "target_type", "target_extension", "sip_status")
    )
    return json.dumps([calls, handoffs], default=str)


@pytest.mark.postgres
def test_many_connections_at_once_lose_no_update(demo: ContactCenter, live_server: Any) -> None:
    # PostgreSQL: the live server's threads each have their own connection, so a call's events
    # (and different calls' events) are ingested concurrently.
    stats = simulate(
        live_server.url,
        telephony_key(demo),
        handoff_share=0.6,
        refer_targets=REFER_TARGETS,
        rate=60.0,
        duration=2.0,
        connections=12,
        seed=24,
    )

    kept = assert_matches_the_run(demo, stats)
    assert len(kept) > 60
    for record in kept:
        assert record.event_count == CallEvent.objects.for_call(demo, record.call_id).count()
