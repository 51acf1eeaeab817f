"""The Calls page's and API's filters that report drill-downs use: zone, time window, several
bots / queues / campaigns, and the figures' predicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.services import create_campaign
from reporting.models import BotOutcome, CallStatus, HandoffState
from tests.conftest import Persona, bearer, error_code
from tests.factories import make_queue
from tests.reporting.factories import make_bot, make_call, make_handoff

LIST = reverse("reporting:call_list")
API = "/api/v1/calls/"
T = datetime(2026, 5, 1, 18, 20, tzinfo=UTC)  # 23:50 in Kolkata, 00:05 on May 2 in Kathmandu


def api_ids(client: Client, query: dict, **headers) -> list[str]:
    response = client.get(API, query, **headers)
    assert response.status_code == 200, response.content
    return sorted(row["call_id"] for row in response.json()["results"])


def test_dates_in_a_zone_and_a_time_window(admin: Persona) -> None:
    make_call(admin.center, call_id="edge", started_at=T)
    make_call(admin.center, call_id="later", started_at=T + timedelta(hours=1))
    day = {"date_from": "2026-05-01", "date_to": "2026-05-01"}
    assert api_ids(admin.client, {**day, "tz": "Asia/Kolkata"}) == ["edge"]
    assert api_ids(admin.client, {**day, "tz": "Asia/Kathmandu"}) == []
    window = {"started_from": "2026-05-01T18:00:00+00:00", "started_before": "2026-05-01T19:00:00Z"}
    assert api_ids(admin.client, window) == ["edge"]
    assert api_ids(admin.client, {"started_from": "2026-05-02T00:20:00+05:45"}) == ["later"]
    page = admin.client.get(LIST, {**day, "tz": "Asia/Kolkata"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Times are in Asia/Kolkata" in text and "2026-05-01 23:50" in text


def test_several_bots_queues_and_campaigns(admin: Persona) -> None:
    center = admin.center
    a, b, c = make_bot(center, "A"), make_bot(center, "B"), make_bot(center, "C")
    q1, q2 = make_queue(center, name="Q1", extension="4301"), make_queue(center, name="Q2", extension="4302")
    renewals = create_campaign(center=center, by="tests", name="Renewals", virtual_agents=[a])
    make_call(center, call_id="a", virtual_agent=a, queue=q1, campaign_ref=str(renewals.pk))
    make_call(center, call_id="b", virtual_agent=b, queue=q2)
    make_call(center, call_id="c", virtual_agent=c)
    assert api_ids(admin.client, {"virtual_agent": [a.pk, b.pk]}) == ["a", "b"]
    assert api_ids(admin.client, {"queue": [q1.pk, q2.pk]}) == ["a", "b"]
    assert api_ids(admin.client, {"campaign": [renewals.pk]}) == ["a"]
    page = admin.client.get(LIST, {"virtual_agent": [a.pk, c.pk]})
    assert (
        page.status_code == 200
        and "/calls/a/" in page.content.decode()
        and "/calls/b/" not in page.content.decode()
    )


def test_the_figures_predicates(admin: Persona) -> None:
    center = admin.center
    bot, queue = make_bot(center), make_queue(center, name="Sales", extension="4323")
    make_call(
        center, call_id="contained", virtual_agent=bot, bot_connected_at=T, bot_outcome=BotOutcome.CONTAINED
    )
    handed = make_call(
        center,
        call_id="handed",
        virtual_agent=bot,
        bot_connected_at=T,
        queue=queue,
        queue_entered_at=T,
        queue_answered_at=T + timedelta(seconds=10),
        queue_wait_seconds=10,
    )
    make_handoff(handed, state=HandoffState.COMPLETED)
    make_call(center, call_id="gave-up", queue=queue, queue_entered_at=T, queue_wait_seconds=30)
    make_call(
        center,
        call_id="waiting",
        seconds=None,
        status=CallStatus.IN_PROGRESS,
        queue=queue,
        queue_entered_at=T,
    )
    assert api_ids(admin.client, {"outcome": "reached_bot"}) == ["contained", "handed"]
    assert api_ids(admin.client, {"outcome": "handed_off"}) == ["handed"]
    assert api_ids(admin.client, {"handoff": "completed"}) == ["handed"]
    assert api_ids(admin.client, {"handoff": "failed"}) == []
    assert api_ids(admin.client, {"queue_result": "offered"}) == ["gave-up", "handed", "waiting"]
    assert api_ids(admin.client, {"queue_result": "abandoned"}) == ["gave-up"]
    assert api_ids(admin.client, {"queue_result": "within_service_level"}) == ["handed"]
    assert api_ids(admin.client, {"attempt": "dialled"}) == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"tz": "Atlantis/Capital"}, "tz"),
        ({"started_from": "not a time"}, "started_from"),
        (
            {"started_from": "2026-05-02T00:00:00Z", "started_before": "2026-05-01T00:00:00Z"},
            "started_before",
        ),
        ({"outcome": "won"}, "outcome"),
        ({"queue_result": "maybe"}, "queue_result"),
        ({"handoff": "lost"}, "handoff"),
        ({"attempt": "x"}, "attempt"),
        ({"campaign": "00000000-0000-0000-0000-000000000000"}, "campaign"),
    ],
)
def test_refused_filters(query: dict, field: str, admin: Persona, api_keys: dict[str, str]) -> None:
    response = Client().get(API, query, **bearer(api_keys["read"]))
    assert (
        response.status_code == 400 and error_code(response) and field in response.json()["error"]["fields"]
    )
    assert admin.client.get(LIST, query).status_code == 400


def test_another_centers_campaign_is_refused_like_an_unknown_one(admin: Persona, outsider: Persona) -> None:
    theirs = create_campaign(
        center=outsider.center, by="tests", name="Theirs", virtual_agents=[make_bot(outsider.center)]
    )
    response = admin.client.get(API, {"campaign": theirs.pk})
    assert response.status_code == 400 and "campaign" in response.json()["error"]["fields"]
    assert "Theirs" not in response.content.decode()
