"""The virtual agents report on hand-built records: the one-cohort identity, rates, handoffs, times."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reporting.models import BotOutcome, CallStatus, HandoffState, TargetType
from reporting.reports.durations import EDGES, bin_index
from reporting.reports.filters import ReportFilters
from reporting.reports.virtual_agents import virtual_agent_report
from tests.factories import make_center
from tests.reporting.factories import make_bot, make_call, make_handoff

DAY = date(2026, 5, 1)
T = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def filters(center, **overrides) -> ReportFilters:
    values = {"center": center, "start": DAY, "end": DAY, "tz": UTC_ZONE, "interval": "hour"}
    values.update(overrides)
    return ReportFilters(**values)


def bot_call(center, bot, outcome: str, *, at: datetime = T, bot_seconds: float | None = 30.0, **fields):
    return make_call(
        center,
        started_at=at,
        virtual_agent=bot,
        bot_connected_at=at + timedelta(seconds=2),
        bot_outcome=outcome,
        bot_seconds=bot_seconds,
        **fields,
    )


def test_an_empty_window_has_zero_counts_and_null_rates(acme) -> None:
    report = virtual_agent_report(filters(acme))
    totals = report["totals"]
    assert totals["calls"] == totals["contained"] == totals["handoffs_requested"] == 0
    for rate in ("containment_rate", "handoff_rate", "abandon_rate", "handoff_success_rate"):
        assert totals[rate] is None
    assert totals["bot_time_p50"] is None and totals["bot_time_mean"] is None
    assert report["rows"] == []
    assert len(report["series"]) == 24 and all(p["calls"] == 0 for p in report["series"])
    assert report["tz"] == "UTC" and report["start"] == DAY and report["interval"] == "hour"


def test_outcomes_add_up_to_the_calls_that_reached_a_bot_per_bot_and_in_total(acme) -> None:
    sales, support = make_bot(acme, "Sales bot"), make_bot(acme, "Support bot")
    for outcome, n in (
        (BotOutcome.CONTAINED, 3),
        (BotOutcome.HANDED_OFF, 2),
        (BotOutcome.ABANDONED_IN_BOT, 1),
    ):
        for _ in range(n):
            bot_call(acme, sales, outcome)
    bot_call(acme, support, BotOutcome.CONTAINED)
    # Still with its bot, nothing decided: in_progress, not a call of the identity.
    make_call(
        acme,
        started_at=T,
        seconds=None,
        virtual_agent=support,
        bot_connected_at=T,
        status=CallStatus.IN_PROGRESS,
    )
    make_call(acme, started_at=T)  # never reached a bot
    make_call(acme, started_at=T - timedelta(days=1), virtual_agent=sales, bot_outcome=BotOutcome.CONTAINED)

    report = virtual_agent_report(filters(acme))
    totals = report["totals"]
    assert (totals["calls"], totals["contained"], totals["handed_off"], totals["abandoned_in_bot"]) == (
        7,
        4,
        2,
        1,
    )
    assert totals["in_progress"] == 1
    assert totals["containment_rate"] + totals["handoff_rate"] + totals["abandon_rate"] == pytest.approx(1.0)
    assert totals["containment_rate"] == pytest.approx(4 / 7)
    rows = {row["name"]: row for row in report["rows"]}
    assert set(rows) == {"Sales bot", "Support bot"}
    assert (rows["Sales bot"]["calls"], rows["Sales bot"]["handoff_rate"]) == (6, pytest.approx(2 / 6))
    assert (rows["Support bot"]["calls"], rows["Support bot"]["in_progress"]) == (1, 1)
    assert rows["Sales bot"]["virtual_agent"] == sales.pk
    for row in report["rows"]:
        assert row["contained"] + row["handed_off"] + row["abandoned_in_bot"] == row["calls"]
    assert sum(row["calls"] for row in report["rows"]) == totals["calls"]
    assert sum(point["calls"] for point in report["series"]) == totals["calls"]


def test_handoff_success_failures_targets_and_context(acme) -> None:
    bot = make_bot(acme)
    first = bot_call(acme, bot, BotOutcome.HANDED_OFF)
    make_handoff(
        first,
        state=HandoffState.FAILED,
        target_type=TargetType.QUEUE,
        sip_status=486,
        failure_reason="busy",
        context={"X-Reason": "billing"},
    )
    make_handoff(
        first,
        state=HandoffState.COMPLETED,
        target_type=TargetType.QUEUE,
        sip_status=200,
        context={"X-Reason": "billing"},
    )
    second = bot_call(acme, bot, BotOutcome.HANDED_OFF)
    make_handoff(
        second, state=HandoffState.COMPLETED, target_type=TargetType.USER, context={"X-Reason": "sales"}
    )
    third = bot_call(acme, bot, BotOutcome.HANDED_OFF)
    make_handoff(
        third,
        state=HandoffState.FAILED,
        target_type=TargetType.NONE,
        target_error="unknown_number",
        sip_status=404,
        failure_reason="not found",
    )
    fourth = bot_call(acme, bot, BotOutcome.HANDED_OFF)
    make_handoff(fourth, state=HandoffState.REQUESTED, target_type=TargetType.EXTERNAL)
    outside = bot_call(acme, bot, BotOutcome.HANDED_OFF, at=T + timedelta(days=3))
    make_handoff(outside, state=HandoffState.COMPLETED, target_type=TargetType.QUEUE)

    totals = virtual_agent_report(filters(acme))["totals"]
    assert (totals["handoffs_requested"], totals["handoffs_completed"], totals["handoffs_failed"]) == (
        5,
        2,
        2,
    )
    assert totals["handoff_success_rate"] == pytest.approx(2 / 5)
    assert totals["handoffs_by_target"] == {
        "unresolved": 1,
        "queue": 2,
        "user": 1,
        "virtual_agent": 0,
        "external": 1,
    }
    assert totals["failures"] == [
        {"reason": "busy", "sip_status": 486, "count": 1},
        {"reason": "not found", "sip_status": 404, "count": 1},
    ]
    assert totals["handoffs_by_context"] == {
        "key": "X-Reason",
        "values": [
            {"value": "", "count": 2},
            {"value": "billing", "count": 2},
            {"value": "sales", "count": 1},
        ],
    }


def test_bot_time_and_time_to_handoff_percentiles(acme) -> None:
    bot = make_bot(acme)
    times = [10.0, 20.0, 30.0, 40.0, 100.0]
    for seconds in times:
        bot_call(acme, bot, BotOutcome.CONTAINED, bot_seconds=seconds)
    for to_handoff in (5, 15):
        bot_call(
            acme,
            bot,
            BotOutcome.HANDED_OFF,
            bot_seconds=None,
            handoff_requested_at=T + timedelta(seconds=2 + to_handoff),
        )
    totals = virtual_agent_report(filters(acme))["totals"]
    assert totals["bot_time_mean"] == 40.0
    # Discrete and binned (reporting.reports.durations): rank ceil(0.5 x 5) = 3 -> 30 s;
    # rank 5 -> 100 s, rounded up to its bin's edge, 120 s.
    assert totals["bot_time_p50"] == 30.0
    assert totals["bot_time_p90"] == 120.0 == float(EDGES[bin_index(times[-1])])
    assert totals["time_to_handoff_mean"] == 10.0
    assert totals["time_to_handoff_p50"] == 5.0
    assert totals["time_to_handoff_p90"] == 15.0


def test_filters_narrow_the_cohort_and_another_center_is_never_counted(acme) -> None:
    globex = make_center("globex2", name="Globex 2", admin_email="admin@globex2.example")
    a, b = make_bot(acme), make_bot(acme)
    bot_call(acme, a, BotOutcome.CONTAINED)
    bot_call(acme, b, BotOutcome.CONTAINED, direction="outbound")
    bot_call(globex, make_bot(globex), BotOutcome.CONTAINED)
    assert virtual_agent_report(filters(acme))["totals"]["calls"] == 2
    assert virtual_agent_report(filters(acme, virtual_agents=(a.pk,)))["totals"]["calls"] == 1
    assert virtual_agent_report(filters(acme, direction="outbound"))["totals"]["calls"] == 1
    assert (
        virtual_agent_report(filters(acme, virtual_agents=(a.pk,), direction="outbound"))["totals"]["calls"]
        == 0
    )


def test_the_window_is_local_days_in_the_report_zone(acme) -> None:
    bot = make_bot(acme)
    # 23:30 UTC on May 1 is 05:00 on May 2 in Kolkata.
    bot_call(acme, bot, BotOutcome.CONTAINED, at=datetime(2026, 5, 1, 23, 30, tzinfo=UTC))
    assert virtual_agent_report(filters(acme))["totals"]["calls"] == 1
    kolkata = ZoneInfo("Asia/Kolkata")
    assert virtual_agent_report(filters(acme, tz=kolkata))["totals"]["calls"] == 0
    assert (
        virtual_agent_report(filters(acme, tz=kolkata, start=date(2026, 5, 2), end=date(2026, 5, 2)))[
            "totals"
        ]["calls"]
        == 1
    )
