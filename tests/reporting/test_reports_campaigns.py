"""The campaigns report: each figure on hand-built dialer records."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns.services import create_campaign
from reporting.models import BotOutcome, CallStatus, Direction
from reporting.reports.campaigns import campaign_report
from reporting.reports.filters import ReportFilters
from tests.reporting.factories import make_bot, make_call

DAY = date(2026, 5, 1)
T = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def filters(center, **overrides) -> ReportFilters:
    values = {"center": center, "start": DAY, "end": DAY, "tz": ZoneInfo("UTC"), "interval": "day"}
    values.update(overrides)
    return ReportFilters(**values)


def dial(
    center, campaign, lead: str, *, reason: str = "", bot=None, ended: bool = True, handed_off: bool = False
):
    return make_call(
        center,
        started_at=T,
        seconds=40 if ended else None,
        status=CallStatus.ENDED if ended else CallStatus.IN_PROGRESS,
        direction=Direction.OUTBOUND,
        campaign_ref=str(campaign.pk),
        lead_ref=lead,
        end_reason=reason if ended else "",
        virtual_agent=bot,
        bot_connected_at=T + timedelta(seconds=5) if bot else None,
        bot_outcome=(BotOutcome.HANDED_OFF if handed_off else BotOutcome.CONTAINED) if bot and ended else "",
        handoff_count=1 if handed_off else 0,
    )


def test_each_campaign_figure(acme) -> None:
    bot = make_bot(acme)
    renewals = create_campaign(center=acme, by="tests", name="Renewals", virtual_agents=[bot])
    winback = create_campaign(center=acme, by="tests", name="Winback", virtual_agents=[bot])
    dial(acme, renewals, "l1", reason="busy")
    dial(acme, renewals, "l1", reason="completed", bot=bot)
    dial(acme, renewals, "l2", reason="no_answer")
    dial(acme, renewals, "l2", reason="machine")
    dial(acme, renewals, "l3", reason="dropped")  # a person answered, no bot in 2 s
    dial(acme, renewals, "l3", reason="completed", bot=bot, handed_off=True)
    dial(acme, renewals, "l4", reason="failed")
    dial(acme, renewals, "l4", reason="rejected")
    dial(acme, renewals, "l5", ended=False)  # ringing
    dial(acme, winback, "w1", bot=bot, ended=False)  # with the bot now: completed already
    make_call(acme, started_at=T)  # an inbound call: not the dialer's

    report = campaign_report(filters(acme))
    rows = {row["name"]: row for row in report["rows"]}
    r = rows["Renewals"]
    assert (r["attempts"], r["leads"], r["connects"], r["handoffs"]) == (9, 5, 3, 1)
    assert (r["completed"], r["busy"], r["no_answer"], r["machine"], r["failed"], r["in_progress"]) == (
        2,
        1,
        1,
        1,
        3,
        1,
    )
    assert (
        r["completed"] + r["busy"] + r["no_answer"] + r["machine"] + r["failed"] + r["in_progress"]
        == r["attempts"]
    )
    assert r["dropped"] == 1 and r["drop_rate"] == pytest.approx(1 / 3)
    assert r["attempts_per_lead"] == pytest.approx(9 / 5) and r["connect_rate"] == pytest.approx(3 / 9)
    assert r["campaign"] == renewals.pk and r["campaign_ref"] == str(renewals.pk)
    assert (rows["Winback"]["attempts"], rows["Winback"]["completed"], rows["Winback"]["drop_rate"]) == (
        1,
        1,
        0.0,
    )
    totals = report["totals"]
    assert (totals["attempts"], totals["leads"], totals["connects"]) == (10, 6, 4)
    assert report["series"][0]["attempts"] == 10

    only = campaign_report(filters(acme, campaigns=(winback.pk,)))
    assert only["totals"]["attempts"] == 1 and [row["name"] for row in only["rows"]] == ["Winback"]


def test_no_dialer_calls_means_zero_attempts_and_null_rates(acme) -> None:
    make_call(acme, started_at=T)
    totals = campaign_report(filters(acme))["totals"]
    assert totals["attempts"] == 0
    assert (
        totals["drop_rate"] is None and totals["attempts_per_lead"] is None and totals["connect_rate"] is None
    )


def test_a_reference_to_no_campaign_of_the_center_is_listed_as_unknown(acme) -> None:
    make_call(acme, started_at=T, campaign_ref=str(uuid.uuid4()), lead_ref="x", direction=Direction.OUTBOUND)
    make_call(acme, started_at=T, campaign_ref="not-a-uuid", lead_ref="y", direction=Direction.OUTBOUND)
    rows = campaign_report(filters(acme))["rows"]
    assert [(row["name"], row["campaign"]) for row in rows] == [("Unknown campaign", None)] * 2
