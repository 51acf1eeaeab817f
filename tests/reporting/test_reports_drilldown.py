"""Drill-down: the Calls page, given `calls_query(...)`, lists exactly the calls a figure counts."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.http import QueryDict

from campaigns.services import create_campaign
from reporting.forms import CallFilterForm
from reporting.models import BotOutcome, CallStatus, Direction, HandoffState
from reporting.queries import filtered_calls
from reporting.reports.campaigns import campaign_report
from reporting.reports.drilldown import EXACT, FIGURES, calls_query, row_has_list
from reporting.reports.filters import ReportFilters
from reporting.reports.queues import queue_report
from reporting.reports.virtual_agents import virtual_agent_report
from tests.factories import make_center, make_queue
from tests.reporting.factories import make_bot, make_call, make_handoff

NEW_YORK = ZoneInfo("America/New_York")
START = datetime(2026, 10, 31, 4, 0, tzinfo=UTC)  # midnight in New York, the day before fall-back
REPORTS = {"virtual_agents": virtual_agent_report, "queues": queue_report, "campaigns": campaign_report}
ROW_KEY = {"virtual_agents": "virtual_agent", "queues": "queue", "campaigns": "campaign"}


def random_history(center, rng: random.Random, n: int = 160) -> None:
    bots = [make_bot(center, f"Bot {i}") for i in range(3)]
    queues = [make_queue(center, name=f"Queue {i}", extension=f"43{i}0") for i in range(2)]
    queues[1].service_level_seconds = 45
    queues[1].save()
    campaign = create_campaign(center=center, by="tests", name="Renewals", virtual_agents=bots[:1])
    for i in range(n):
        started = START + timedelta(seconds=rng.randrange(-3 * 3600, 75 * 3600))
        ended = rng.random() < 0.85
        dialled = rng.random() < 0.3
        reached = rng.random() < 0.75 and not (dialled and rng.random() < 0.5)
        bot = rng.choice(bots) if reached else None
        outcome = (
            rng.choice([BotOutcome.CONTAINED, BotOutcome.HANDED_OFF, BotOutcome.ABANDONED_IN_BOT])
            if bot
            else ""
        )
        if bot and not ended and outcome != BotOutcome.HANDED_OFF:
            outcome = ""
        queue = (
            rng.choice(queues)
            if (outcome == BotOutcome.HANDED_OFF or (not bot and rng.random() < 0.4))
            else None
        )
        entered = queue is not None and rng.random() < 0.85
        answered = entered and rng.random() < 0.7
        wait = rng.uniform(0, 90)
        record = make_call(
            center,
            call_id=f"random-{i}",
            started_at=started,
            seconds=rng.uniform(5, 400) if ended else None,
            status=CallStatus.ENDED if ended else CallStatus.IN_PROGRESS,
            direction=Direction.OUTBOUND if dialled else Direction.INBOUND,
            campaign_ref=str(campaign.pk) if dialled else "",
            lead_ref=f"lead-{rng.randrange(40)}" if dialled else "",
            end_reason=rng.choice(["busy", "no_answer", "machine", "failed", "dropped", "completed"])
            if ended
            else "",
            virtual_agent=bot,
            bot_connected_at=started + timedelta(seconds=3) if bot else None,
            bot_outcome=outcome,
            bot_seconds=rng.uniform(1, 300) if bot else None,
            queue=queue,
            queue_entered_at=started + timedelta(seconds=60) if entered else None,
            queue_answered_at=started + timedelta(seconds=60 + wait) if answered else None,
            queue_wait_seconds=wait if (answered or (entered and ended)) else None,
            human_seconds=rng.uniform(10, 200) if answered and ended else None,
        )
        if outcome == BotOutcome.HANDED_OFF:
            for _ in range(rng.choice([1, 1, 2])):
                make_handoff(record, state=rng.choice(list(HandoffState.values)))


def listed(center, query: str) -> int:
    form = CallFilterForm(QueryDict(query), center=center)
    assert form.is_valid(), (query, form.errors)
    return filtered_calls(center, form.filters()).count()


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("interval", ["hour", "day"])
def test_every_count_equals_its_list_in_total_per_row_and_per_bucket(acme, seed: int, interval: str) -> None:
    rng = random.Random(seed)
    random_history(acme, rng)
    other = make_center("initech", name="Initech", admin_email="admin@initech.example")
    random_history(other, random.Random(seed + 100), n=30)  # never listed for acme
    make_call(acme, started_at=None)  # no start: in no window
    filters = ReportFilters(acme, date(2026, 10, 31), date(2026, 11, 2), NEW_YORK, interval=interval)
    checked = 0
    for name, build in REPORTS.items():
        report = build(filters)
        for figure in EXACT[name]:
            assert listed(acme, calls_query(filters, name, figure)) == report["totals"][figure], (
                name,
                figure,
            )
            checked += 1
            for row in report["rows"]:
                assert row_has_list(name, row)
                query = calls_query(filters, name, figure, row=row[ROW_KEY[name]])
                assert listed(acme, query) == row[figure], (name, figure, row["name"])
            for point in rng.sample(report["series"], k=min(6, len(report["series"]))):
                query = calls_query(filters, name, figure, bucket=point["bucket"])
                assert listed(acme, query) == point[figure], (name, figure, point["bucket"])
                checked += 1
    assert checked > 40


def test_handoff_figures_list_the_calls_that_had_such_handoffs(acme) -> None:
    random_history(acme, random.Random(7))
    filters = ReportFilters(acme, date(2026, 10, 31), date(2026, 11, 2), NEW_YORK, interval="day")
    totals = virtual_agent_report(filters)["totals"]
    for figure in ("handoffs_requested", "handoffs_completed", "handoffs_failed"):
        count = listed(acme, calls_query(filters, "virtual_agents", figure))
        assert 0 < count <= totals[figure]  # a call with two REFERs is listed once
    assert listed(acme, calls_query(filters, "virtual_agents", "handoffs_requested")) == totals["handed_off"]


def test_a_filtered_report_keeps_its_filters_and_every_figure_has_a_link(acme) -> None:
    bot = make_bot(acme)
    filters = ReportFilters(
        acme,
        date(2026, 5, 1),
        date(2026, 5, 7),
        ZoneInfo("Asia/Kolkata"),
        interval="week",
        virtual_agents=(bot.pk,),
        direction="inbound",
    )
    query = QueryDict(calls_query(filters, "virtual_agents", "contained"))
    assert query.getlist("virtual_agent") == [str(bot.pk)] and query["direction"] == "inbound"
    assert (query["date_from"], query["date_to"], query["tz"], query["outcome"]) == (
        "2026-05-01",
        "2026-05-07",
        "Asia/Kolkata",
        "contained",
    )
    for name, build in REPORTS.items():
        report = build(filters)
        numeric = [
            key for key, value in report["totals"].items() if isinstance(value, int | float | type(None))
        ]
        assert set(numeric) <= set(FIGURES[name]), (name, set(numeric) - set(FIGURES[name]))
        for figure in FIGURES[name]:
            assert listed(acme, calls_query(filters, name, figure)) == 0
