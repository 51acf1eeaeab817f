"""The reports' REST endpoints: who may read, the answer's shape, refusals in the error shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from reporting.models import BotOutcome, CallStatus, Direction
from reporting.reports.campaigns import campaign_report
from reporting.reports.queues import queue_report
from reporting.reports.virtual_agents import virtual_agent_report
from tests.conftest import Persona, bearer, error_code
from tests.factories import make_queue
from tests.reporting.factories import make_bot, make_call

URLS = {
    "virtual_agents": "/api/v1/reports/virtual-agents/",
    "queues": "/api/v1/reports/queues/",
    "campaigns": "/api/v1/reports/campaigns/",
}
T = datetime(2026, 3, 8, 15, 0, tzinfo=UTC)  # the spring-forward day in New York
RANGE = {"start": "2026-03-08", "end": "2026-03-08"}


@pytest.fixture
def history(acme):
    acme.timezone = "America/New_York"
    acme.save()
    bot = make_bot(acme, "Front desk")
    sales = make_queue(acme, name="Sales", extension="4323")
    for outcome in (BotOutcome.CONTAINED, BotOutcome.CONTAINED, BotOutcome.HANDED_OFF):
        make_call(
            acme, started_at=T, virtual_agent=bot, bot_connected_at=T, bot_outcome=outcome, bot_seconds=30
        )
    make_call(
        acme,
        started_at=T,
        queue=sales,
        queue_entered_at=T,
        queue_answered_at=T + timedelta(seconds=8),
        queue_wait_seconds=8,
        human_seconds=60,
    )
    return bot, sales


@pytest.mark.parametrize("report", sorted(URLS))
def test_admin_supervisor_and_read_or_admin_keys_read_every_report(
    report: str, history, admin: Persona, supervisor: Persona, api_keys: dict[str, str]
) -> None:
    answers = [
        admin.client.get(URLS[report], RANGE),
        supervisor.client.get(URLS[report], RANGE),
        Client().get(URLS[report], RANGE, **bearer(api_keys["read"])),
        Client().get(URLS[report], RANGE, **bearer(api_keys["admin"])),
    ]
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.content for a in answers}) == 1  # the same figures whoever asks


@pytest.mark.parametrize("report", sorted(URLS))
def test_agents_telephony_keys_and_strangers_are_refused(
    report: str, agent: Persona, api_keys: dict[str, str]
) -> None:
    refused = [agent.client.get(URLS[report]), Client().get(URLS[report], **bearer(api_keys["telephony"]))]
    assert [r.status_code for r in refused] == [403, 403]
    assert all(error_code(r) == "permission_denied" for r in refused)
    anonymous = Client().get(URLS[report])
    assert anonymous.status_code in (401, 403) and error_code(anonymous)


def test_the_virtual_agents_answer(history, supervisor: Persona) -> None:
    bot, _ = history
    body = supervisor.client.get(URLS["virtual_agents"], {**RANGE, "interval": "hour"}).json()
    assert (body["tz"], body["start"], body["end"], body["interval"]) == (
        "America/New_York",
        *RANGE.values(),
        "hour",
    )
    totals = body["totals"]
    assert (totals["calls"], totals["contained"], totals["handed_off"], totals["abandoned_in_bot"]) == (
        3,
        2,
        1,
        0,
    )
    assert totals["containment_rate"] == pytest.approx(2 / 3) and totals["handoff_success_rate"] is None
    assert totals["handoffs_by_context"] == {"key": "X-Reason", "values": []}
    assert body["rows"][0]["virtual_agent"] == str(bot.pk) and body["rows"][0]["name"] == "Front desk"
    buckets = [point["bucket"] for point in body["series"]]
    assert len(buckets) == 23  # the 23-hour day
    assert buckets[0] == "2026-03-08T00:00:00-05:00" and buckets[2] == "2026-03-08T03:00:00-04:00"
    (busy,) = [point for point in body["series"] if point["calls"]]
    assert busy["bucket"] == "2026-03-08T11:00:00-04:00" and busy["calls"] == 3


def test_the_queues_answer_and_tz(history, admin: Persona) -> None:
    body = admin.client.get(URLS["queues"], {**RANGE, "tz": "Asia/Kathmandu", "interval": "none"}).json()
    assert body["tz"] == "Asia/Kathmandu" and body["series"] == []
    # 15:00 UTC on March 8 is 20:45 in Kathmandu: the same day.
    assert body["totals"]["offered"] == 1 and body["totals"]["service_level"] == 1.0
    assert body["rows"][0]["name"] == "Sales" and body["rows"][0]["service_level_seconds"] == 20


def test_the_campaigns_answer_without_a_dialer_call(history, admin: Persona) -> None:
    body = admin.client.get(URLS["campaigns"], RANGE).json()
    assert body["totals"]["attempts"] == 0 and body["totals"]["drop_rate"] is None and body["rows"] == []
    assert len(body["series"]) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2026-03-09", "end": "2026-03-08"}, "end"),
        ({"start": "yesterday"}, "start"),
        ({"tz": "Nowhere/City"}, "tz"),
        ({"interval": "15m", "start": "2026-01-01", "end": "2026-03-01"}, "interval"),
        ({"direction": "up"}, "direction"),
        ({"virtual_agent": "nope"}, "virtual_agent"),
        ({"context_key": "X Reason"}, "context_key"),
    ],
)
def test_refusals_are_400_with_the_field(query, field, admin: Persona) -> None:
    response = admin.client.get(URLS["virtual_agents"], query)
    assert response.status_code == 400
    assert error_code(response) and field in response.json()["error"]["fields"]


def test_another_centers_ids_are_refused_like_unknown_ones(
    history, admin: Persona, outsider: Persona
) -> None:
    bot, sales = history
    for url, name, pk in (
        (URLS["virtual_agents"], "virtual_agent", bot.pk),
        (URLS["queues"], "queue", sales.pk),
    ):
        assert admin.client.get(url, {name: pk, **RANGE}).status_code == 200
        theirs = outsider.client.get(url, {name: pk})
        assert theirs.status_code == 400 and name in theirs.json()["error"]["fields"]
    # And an outsider's own report never counts acme's calls.
    body = outsider.client.get(URLS["virtual_agents"], RANGE).json()
    assert body["totals"]["calls"] == 0


def test_repeatable_filters(history, acme, admin: Persona) -> None:
    other = make_bot(acme, "Other")
    make_call(
        acme,
        started_at=T,
        virtual_agent=other,
        bot_connected_at=T,
        bot_outcome=BotOutcome.CONTAINED,
        direction=Direction.OUTBOUND,
        status=CallStatus.ENDED,
    )
    bot, _ = history
    get = lambda **q: admin.client.get(URLS["virtual_agents"], {**RANGE, **q}).json()["totals"]["calls"]  # noqa: E731
    assert get() == 4
    assert get(virtual_agent=[bot.pk, other.pk]) == 4
    assert get(virtual_agent=[other.pk]) == 1
    assert get(direction="inbound") == 3


@pytest.mark.parametrize("report", sorted(URLS))
@pytest.mark.parametrize("interval", ["15m", "none"])
def test_the_answer_is_what_the_drf_serializer_gives(history, acme, admin: Persona, report, interval) -> None:
    """The answers are built by `plain()` (no per-field DRF cost); the schema's serializers give the same."""
    from reporting.reports.filters import ReportFilterForm
    from reporting.reports.serializers import (
        CampaignReportSerializer,
        QueueReportSerializer,
        VirtualAgentReportSerializer,
        plain,
    )

    make_call(acme, started_at=T, campaign_ref="c-1", lead_ref="l-1", end_reason="busy")
    query = {**RANGE, "interval": interval}
    form = ReportFilterForm(query, center=acme)
    assert form.is_valid()
    build, serializer = {
        "virtual_agents": (lambda: virtual_agent_report(form.filters()), VirtualAgentReportSerializer),
        "queues": (lambda: queue_report(form.filters()), QueueReportSerializer),
        "campaigns": (lambda: campaign_report(form.filters()), CampaignReportSerializer),
    }[report]
    answer = build()
    assert plain(serializer)(answer) == serializer(answer).data
    body = admin.client.get(URLS[report], query).json()
    assert body == json.loads(json.dumps(serializer(build()).data))
    # The spring-forward day: 23 hours, 92 quarter hours.
    assert body["rows"] and (interval == "none" or len(body["series"]) == 92)
