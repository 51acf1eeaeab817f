"""reporting.assemble: the pure fold of a call's events into its record and handoffs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.assemble import FoldSettings, StoredEvent, Target, assemble, order_key, refs_for
from reporting.events import AgentInfo, QueueInfo

T0 = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
BOT = AgentInfo("11111111-1111-1111-1111-111111111111", "Billing bot", "7001")
OTHER_BOT = AgentInfo("22222222-2222-2222-2222-222222222222", "Overflow bot", "7002")
SALES = Target("queue", "33333333-3333-3333-3333-333333333333", "4323", "Sales", "")
ANA = Target("user", "44444444-4444-4444-4444-444444444444", "1001", "Ana", "")
TO_OTHER_BOT = Target("virtual_agent", OTHER_BOT.id, "7002", "Overflow bot", "")
AGENTS = {"7001": BOT, BOT.id: BOT, "7002": OTHER_BOT, OTHER_BOT.id: OTHER_BOT}
TARGETS = {
    "<sip:4323@acme.voiso.com>": SALES,
    "<sip:1001@acme.voiso.com>": ANA,
    "<sip:7002@acme.voiso.com>": TO_OTHER_BOT,
    "<sip:9999@acme.voiso.com>": Target(error="unknown_extension"),
}
MEMBERS = {"1001": ANA.ref}
BILLING = QueueInfo("55555555-5555-5555-5555-555555555555", "Billing", "4324")
QUEUES = {"4324": BILLING, BILLING.id: BILLING, "4323": QueueInfo(SALES.ref, "Sales", "4323")}
FOLD = FoldSettings(bot_abandon_seconds=10)


def ev(event_id: str, kind: str, seconds: float, **data: Any) -> StoredEvent:
    """An event as ingestion stores it: with the refs its names resolve to (as reporting.ingest does)."""
    refs = refs_for(
        agent=AGENTS.get(data.get("virtual_agent", "")),
        target=TARGETS.get(data["refer_to"]) if kind == "handoff.requested" else None,
        membership_id=MEMBERS.get(data["extension"]) if kind == "agent.connected" else None,
        queue=QUEUES.get(data["queue"]) if kind == "queue.entered" else None,
    )
    return StoredEvent(event_id, kind, T0 + timedelta(seconds=seconds), data, refs)


def handed_to_queue() -> list[StoredEvent]:
    return [
        ev("e1", "call.started", 0, direction="inbound", **{"from": "+442079460999", "to": "+442079460018"}),
        ev("e2", "bot.connected", 2, virtual_agent="7001", provider_call_id="conv_1"),
        ev("e3", "handoff.requested", 40, virtual_agent="7001", refer_to="<sip:4323@acme.voiso.com>",
           headers={"X-Intent": "billing"}),
        ev("e4", "handoff.accepted", 40, sip_status=202),
        ev("e5", "handoff.completed", 41, answered_by="queue"),
        ev("e6", "agent.connected", 71, extension="1001"),
        ev("e7", "call.ended", 191, end_reason="normal_clearing", hangup_by="agent"),
        ev("e8", "recording.ready", 200, url="https://rec.example.com/1.wav"),
    ]  # fmt: skip


def test_a_call_handed_to_a_queue_and_answered() -> None:
    result = assemble(handed_to_queue(), FOLD)
    record = result.record
    assert (record.status, record.direction, record.from_number, record.to_number) == (
        "ended",
        "inbound",
        "+442079460999",
        "+442079460018",
    )
    assert (record.virtual_agent_id, record.queue_id, record.answered_by_id) == (BOT.id, SALES.ref, ANA.ref)
    assert record.provider_call_id == "conv_1" and record.answered_extension == "1001"
    assert (record.total_seconds, record.bot_seconds, record.queue_wait_seconds, record.human_seconds) == (
        191.0,
        39.0,  # bot connected at 2 s, the caller left it when the handoff completed at 41 s
        30.0,  # entered the queue at 41 s, an agent answered at 71 s
        120.0,
    )
    assert record.bot_outcome == "handed_off" and record.handoff_count == 1 and record.event_count == 8
    assert record.handoff_requested_at == T0 + timedelta(seconds=40)
    assert record.recording_url == "https://rec.example.com/1.wav"
    assert record.active_virtual_agent_id is None
    [handoff] = result.handoffs
    assert (handoff.sequence, handoff.state, handoff.sip_status, handoff.answered_by) == (
        1,
        "completed",
        202,
        "queue",
    )
    assert (handoff.target_type, handoff.target_ref, handoff.target_name) == ("queue", SALES.ref, "Sales")
    assert handoff.context == {"X-Intent": "billing"} and handoff.virtual_agent_id == BOT.id
    assert result.handoff_of_event == {"e3": 1, "e4": 1, "e5": 1}


def test_ended_before_completed_gives_the_same_record_as_the_other_order() -> None:
    events = handed_to_queue()
    # call.ended posted first, with completed arriving later, any way round: same set → same result.
    assert assemble(events, FOLD) == assemble([events[6], *events[:6], events[7]], FOLD)


def test_the_outcomes() -> None:
    start = [ev("s", "call.started", 0, direction="outbound", **{"from": "+1", "to": "+2"})]
    bot = [*start, ev("b", "bot.connected", 1, virtual_agent=BOT.id)]

    def outcome(*more: StoredEvent) -> str:
        return assemble([*bot, *more], FOLD).record.bot_outcome

    assert assemble(start, FOLD).record.bot_outcome == ""  # never reached a bot
    assert assemble([*start, ev("x", "call.ended", 5, end_reason="x")], FOLD).record.bot_outcome == ""
    assert outcome() == ""  # still with the bot: undecided
    assert (
        outcome(ev("x", "call.ended", 11, end_reason="x", hangup_by="caller")) == "abandoned_in_bot"
    )  # 10 s
    assert outcome(ev("x", "call.ended", 11.5, end_reason="x", hangup_by="caller")) == "contained"
    assert outcome(ev("x", "call.ended", 5, end_reason="x", hangup_by="bot")) == "contained"
    assert outcome(ev("x", "call.ended", 5, end_reason="x")) == "contained"  # who hung up unknown
    failed = [
        ev("h", "handoff.requested", 3, virtual_agent="7001", refer_to="<sip:9999@acme.voiso.com>"),
        ev("f", "handoff.failed", 4, reason="unknown extension", sip_status=404),
        ev("x", "call.ended", 5, end_reason="x", hangup_by="caller"),
    ]
    assert outcome(*failed) == "handed_off"  # a handoff was requested, even if it failed
    assert outcome(failed[0]) == "handed_off"  # decided as soon as the REFER is known


def test_several_handoffs_are_numbered_and_answers_go_to_the_latest_earlier_request() -> None:
    events = [
        ev("b", "bot.connected", 0, virtual_agent="7001"),
        ev("h1", "handoff.requested", 10, virtual_agent="7001", refer_to="<sip:1001@acme.voiso.com>"),
        ev("a1", "handoff.accepted", 10.1, sip_status=202),
        ev("f1", "handoff.failed", 25, reason="no answer", sip_status=480),
        ev("h2", "handoff.requested", 26, virtual_agent="7001", refer_to="<sip:9999@acme.voiso.com>"),
        ev("f2", "handoff.failed", 26, reason="unknown", sip_status=404),
        ev("h3", "handoff.requested", 27, virtual_agent="7001", refer_to="<sip:4323@acme.voiso.com>"),
        ev("a3", "handoff.accepted", 27.1, sip_status=202),
        ev("c3", "handoff.completed", 28),
        ev("orphan", "handoff.accepted", -5, sip_status=202),  # before any REFER: applies to nothing
    ]
    result = assemble(events, FOLD)
    summary = [(h.sequence, h.state, h.sip_status, h.target_type, h.target_error) for h in result.handoffs]
    assert summary == [
        (1, "failed", 480, "user", ""),
        (2, "failed", 404, "", "unknown_extension"),
        (3, "completed", 202, "queue", ""),
    ]
    assert result.handoffs[0].failure_reason == "no answer"
    assert result.handoff_of_event == {"h1": 1, "a1": 1, "f1": 1, "h2": 2, "f2": 2, "h3": 3, "a3": 3, "c3": 3}
    assert result.record.queue_id == SALES.ref and result.record.handoff_count == 3
    assert result.record.handoff_requested_at == T0 + timedelta(seconds=10)


def test_accepted_never_undoes_a_final_state() -> None:
    events = [
        ev("h", "handoff.requested", 0, virtual_agent="7001", refer_to="<sip:4323@acme.voiso.com>"),
        ev("c", "handoff.completed", 1),
        ev("a", "handoff.accepted", 2, sip_status=202),  # a late 202 seen after the NOTIFY
    ]
    [handoff] = assemble(events, FOLD).handoffs
    assert handoff.state == "completed" and handoff.sip_status == 202


def test_the_active_bot() -> None:
    bot = [ev("b", "bot.connected", 0, virtual_agent="7001")]

    def active(*more: StoredEvent) -> str | None:
        return assemble([*bot, *more], FOLD).record.active_virtual_agent_id

    refer = ev("h", "handoff.requested", 5, virtual_agent="7001", refer_to="<sip:4323@acme.voiso.com>")
    assert active() == BOT.id
    assert active(refer) == BOT.id  # asked, not yet gone
    assert active(refer, ev("f", "handoff.failed", 6, reason="busy")) == BOT.id
    assert active(refer, ev("c", "handoff.completed", 6)) is None
    assert active(ev("x", "call.ended", 9, end_reason="x")) is None
    to_bot = ev("h", "handoff.requested", 5, virtual_agent="7001", refer_to="<sip:7002@acme.voiso.com>")
    assert active(to_bot, ev("c", "handoff.completed", 6)) is None  # left 7001 for 7002...
    assert active(
        to_bot, ev("c", "handoff.completed", 6), ev("b2", "bot.connected", 7, virtual_agent="7002")
    ) == (
        OTHER_BOT.id  # ...and is on 7002 once it connects
    )


def test_durations_need_their_bounds() -> None:
    record = assemble([ev("b", "bot.connected", 3, virtual_agent="7001")], FOLD).record
    assert (record.total_seconds, record.bot_seconds, record.queue_wait_seconds, record.human_seconds) == (
        None,
        None,
        None,
        None,
    )
    events = [ev("e", "call.ended", 3, end_reason="x"), ev("a", "agent.connected", 1, extension="1001")]
    record = assemble(events, FOLD).record
    assert (record.total_seconds, record.human_seconds, record.answered_by_id) == (None, 2.0, ANA.ref)


def test_an_unknown_agent_extension_is_kept_without_a_membership() -> None:
    record = assemble([ev("a", "agent.connected", 1, extension="5555")], FOLD).record
    assert (record.answered_extension, record.answered_by_id) == ("5555", None)


def test_first_start_and_end_win_the_last_recording_wins() -> None:
    events = [
        ev("s2", "call.started", 5, direction="inbound", **{"from": "+9", "to": "+8"}),
        ev("s1", "call.started", 0, direction="outbound", **{"from": "+1", "to": "+2"},
           campaign_id=7, lead_id="L9"),
        ev("e2", "call.ended", 50, end_reason="late"),
        ev("e1", "call.ended", 40, end_reason="first"),
        ev("r1", "recording.ready", 60, url="https://rec.example.com/a.wav"),
        ev("r2", "recording.ready", 70, url="https://rec.example.com/b.wav"),
    ]  # fmt: skip
    record = assemble(events, FOLD).record
    assert (record.direction, record.from_number, record.campaign_ref, record.lead_ref) == (
        "outbound",
        "+1",
        "7",
        "L9",
    )
    assert (record.end_reason, record.total_seconds) == ("first", 40.0)
    assert record.recording_url == "https://rec.example.com/b.wav"


def test_same_instant_events_sort_by_type_then_id() -> None:
    events = [
        ev("z", "handoff.accepted", 1, sip_status=202),
        ev("y", "handoff.requested", 1, virtual_agent="7001", refer_to="<sip:4323@acme.voiso.com>"),
        ev("x", "bot.connected", 1, virtual_agent="7001"),
        ev("w", "call.started", 1, direction="inbound", **{"from": "+1", "to": "+2"}),
    ]
    result = assemble(events, FOLD)
    assert result.handoffs[0].state == "accepted" and result.handoff_of_event["z"] == 1
    assert result.record.bot_seconds is None and result.record.bot_outcome == "handed_off"


# --- order independence -------------------------------------------------------------------------


def _random_call(draw: st.DrawFn) -> list[StoredEvent]:
    kinds = st.sampled_from(
        ["call.started", "bot.connected", "handoff.requested", "handoff.accepted", "handoff.completed",
         "handoff.failed", "queue.entered", "agent.connected", "call.ended", "recording.ready"]
    )  # fmt: skip
    data_for = {
        "call.started": lambda: {
            "direction": draw(st.sampled_from(["inbound", "outbound"])), "from": "+1", "to": "+2"
        },
        "bot.connected": lambda: {"virtual_agent": draw(st.sampled_from(["7001", "7002", BOT.id]))},
        "handoff.requested": lambda: {
            "virtual_agent": "7001",
            "refer_to": draw(st.sampled_from(sorted(TARGETS))),
            "headers": {"X-N": str(draw(st.integers(0, 9)))},
        },
        "handoff.accepted": lambda: {"sip_status": 202},
        "handoff.completed": lambda: {"answered_by": draw(st.sampled_from(["", "1001"]))},
        "handoff.failed": lambda: {"reason": draw(st.sampled_from(["busy", "timeout"])), "sip_status": 486},
        "queue.entered": lambda: {"queue": draw(st.sampled_from(["4324", BILLING.id, "4323"]))},
        "agent.connected": lambda: {"extension": draw(st.sampled_from(["1001", "5555"]))},
        "call.ended": lambda: {
            "end_reason": "x", "hangup_by": draw(st.sampled_from(["caller", "bot", "agent"]))
        },
        "recording.ready": lambda: {"url": f"https://rec.example.com/{draw(st.integers(0, 3))}.wav"},
    }  # fmt: skip
    count = draw(st.integers(1, 14))
    events = []
    for index in range(count):
        kind = draw(kinds)
        # Coarse times so that ties (same instant) are common.
        events.append(ev(f"e{index:02d}", kind, draw(st.integers(0, 12)) * 2.5, **data_for[kind]()))
    return events


@st.composite
def calls_and_arrivals(draw: st.DrawFn) -> tuple[list[StoredEvent], list[StoredEvent]]:
    events = _random_call(draw)
    arrival = draw(st.permutations(events))
    duplicates = draw(st.lists(st.sampled_from(events), max_size=5))
    return events, [*arrival, *duplicates]


@settings(max_examples=400, deadline=None)
@given(calls_and_arrivals())
def test_the_result_depends_only_on_the_set_of_events(
    case: tuple[list[StoredEvent], list[StoredEvent]],
) -> None:
    events, arrival = case
    assert assemble(arrival, FOLD) == assemble(events, FOLD)


@settings(max_examples=200, deadline=None)
@given(calls_and_arrivals())
def test_records_and_handoffs_are_consistent(case: tuple[list[StoredEvent], list[StoredEvent]]) -> None:
    events, _ = case
    result = assemble(events, FOLD)
    record = result.record
    assert [h.sequence for h in result.handoffs] == list(range(1, len(result.handoffs) + 1))
    assert record.handoff_count == len(result.handoffs) == sum(e.type == "handoff.requested" for e in events)
    assert record.event_count == len(events)
    assert (record.status == "ended") == any(e.type == "call.ended" for e in events)
    reached_bot = any(e.type in ("bot.connected", "handoff.requested") for e in events)
    if not reached_bot:
        assert record.bot_outcome == ""
    elif record.handoff_count:
        assert record.bot_outcome == "handed_off"
    if record.status == "ended":
        assert record.active_virtual_agent_id is None
    # The queue is the one entered last, whichever way: a queue.entered or a REFER to a queue.
    queue_events = [
        e for e in sorted(events, key=order_key)
        if e.type == "queue.entered"
        or (e.type == "handoff.requested" and TARGETS[e.data["refer_to"]] == SALES)
    ]  # fmt: skip
    expected_queue = None
    if queue_events:
        last = queue_events[-1]
        expected_queue = QUEUES[last.data["queue"]].id if last.type == "queue.entered" else SALES.ref
    assert record.queue_id == expected_queue
    for h in result.handoffs:
        assert h.state in ("requested", "accepted", "completed", "failed")
        assert (h.completed_at is not None) or h.state != "completed"


def straight_to_a_queue() -> list[StoredEvent]:
    """The demo's caller who presses 3: the flow dials the Billing queue, no bot on the call."""
    return [
        ev("q1", "call.started", 0, direction="inbound", **{"from": "+442079460999", "to": "+442079460018"}),
        ev("q2", "queue.entered", 12, queue=BILLING.id),  # the dial's X-Voiso-Target-Id, echoed
        ev("q3", "agent.connected", 32, extension="1001"),
        ev("q4", "call.ended", 152, end_reason="normal_clearing", hangup_by="caller"),
    ]  # fmt: skip


def test_a_call_the_flow_sent_straight_to_a_queue_has_the_queue_and_its_wait() -> None:
    record = assemble(straight_to_a_queue(), FOLD).record
    assert (record.queue_id, record.answered_by_id, record.virtual_agent_id) == (BILLING.id, ANA.ref, None)
    assert (record.queue_wait_seconds, record.human_seconds, record.total_seconds) == (20.0, 120.0, 152.0)
    assert record.bot_outcome == "" and record.handoff_count == 0


def test_a_queue_named_by_its_extension_and_a_caller_who_gave_up_waiting() -> None:
    events = [*straight_to_a_queue()[:1], ev("q2", "queue.entered", 12, queue="4324"),
              ev("q4", "call.ended", 72, end_reason="abandoned", hangup_by="caller")]  # fmt: skip
    record = assemble(events, FOLD).record
    assert (record.queue_id, record.queue_wait_seconds, record.answered_by_id) == (BILLING.id, 60.0, None)


def test_the_queue_entered_last_is_the_calls_whichever_way_it_got_there() -> None:
    # A REFER to Sales, then the switch moves the caller to Billing (its failover, say): Billing.
    moved = [*handed_to_queue()[:5], ev("e5b", "queue.entered", 50, queue="4324"),
             *handed_to_queue()[5:]]  # fmt: skip
    record = assemble(moved, FOLD).record
    assert record.queue_id == BILLING.id
    assert record.queue_wait_seconds == 21.0  # from entering Billing at 50 s to the agent at 71 s
    # The REFER's own queue reported as entered too (at the final NOTIFY): the same record as without it.
    echoed = [*handed_to_queue()[:5], ev("e5b", "queue.entered", 41, queue="4323"), *handed_to_queue()[5:]]
    again, plain = assemble(echoed, FOLD).record, assemble(handed_to_queue(), FOLD).record
    assert (
        (again.queue_id, again.queue_wait_seconds)
        == (plain.queue_id, plain.queue_wait_seconds)
        == (
            SALES.ref,
            30.0,
        )
    )


def test_the_queue_entry_and_its_answer_are_kept_for_the_queue_reports() -> None:
    handed = assemble(handed_to_queue(), FOLD).record
    assert (handed.queue_entered_at, handed.queue_answered_at) == (at(41), at(71))  # the handoff's completion
    straight = assemble(straight_to_a_queue(), FOLD).record
    assert (straight.queue_entered_at, straight.queue_answered_at) == (at(12), at(32))
    gave_up = [e for e in straight_to_a_queue() if e.type != "agent.connected"]
    record = assemble(gave_up, FOLD).record
    assert (record.queue_entered_at, record.queue_answered_at, record.queue_wait_seconds) == (
        at(12),
        None,
        140.0,
    )
    # A REFER to a queue that failed: the call has that queue but never entered it.
    failed = [*handed_to_queue()[:4], ev("e5", "handoff.failed", 41, reason="busy", sip_status=486)]
    record = assemble(failed, FOLD).record
    assert (
        record.queue_id == SALES.ref and record.queue_entered_at is None and record.queue_answered_at is None
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)
