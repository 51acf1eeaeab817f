"""The dashboard: today's tiles with their sparklines (the reports of today by hour) and each
bot's load against its capacity."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client

from reporting.ingest import apply_active_deltas
from reporting.models import BotOutcome, HandoffState
from reporting.rollups import rebuild_rollups
from tests.conftest import Persona
from tests.factories import make_queue
from tests.reporting.factories import T0, make_bot, make_call, make_handoff
from voiso_byob.models import ContactCenter

NOW = T0 + timedelta(hours=8)  # 2025-03-14 17:00 UTC


def json_data(html: str, element_id: str) -> dict:
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert found, element_id
    return json.loads(found.group(1))


def tiles(html: str) -> dict[str, str]:
    return {
        key: re.sub(r"\s+", " ", value).strip()
        for key, value in re.findall(
            r'data-tile="([^"]+)">.*?<strong class="tile-value">(.*?)</strong>', html, re.S
        )
    }


def seed_today(center: ContactCenter) -> None:
    bot = make_bot(center, "Sales bot")
    queue = make_queue(center, "Sales queue")
    for i in range(3):
        make_call(
            center, virtual_agent=bot, started_at=T0 + timedelta(hours=i), bot_outcome=BotOutcome.CONTAINED
        )
    for i, state in enumerate([HandoffState.COMPLETED, HandoffState.FAILED]):
        start = T0 + timedelta(hours=4, minutes=i)
        record = make_call(
            center,
            virtual_agent=bot,
            queue=queue,
            started_at=start,
            queue_entered_at=start + timedelta(seconds=20) if i == 0 else None,
            queue_answered_at=start + timedelta(seconds=30) if i == 0 else None,
            queue_wait_seconds=10 if i == 0 else None,
        )
        make_handoff(record, virtual_agent=bot, state=state, requested_at=start)
    # Yesterday: not on today's tiles.
    make_call(center, virtual_agent=bot, started_at=T0 - timedelta(days=1), bot_outcome=BotOutcome.CONTAINED)


@pytest.mark.parametrize(("persona", "status"), [("admin", 200), ("supervisor", 200)])
def test_administrators_and_supervisors_see_todays_tiles(
    request: pytest.FixtureRequest, persona: str, status: int
) -> None:
    member: Persona = request.getfixturevalue(persona)
    seed_today(member.center)

    with time_machine.travel(NOW):
        response = member.client.get("/")

    html = response.content.decode()
    assert response.status_code == status
    assert tiles(html) == {
        "calls": "5",
        "containment": "60.0 %",
        "handoff_success": "50.0 %",
        "abandoned": "0.0 %",
        "service_level": "100.0 %",
    }
    bots = json_data(html, "today-bots")
    # Today's hours up to now (17:00): the hours to come are left off the sparklines.
    assert bots["interval"] == "hour" and len(bots["series"]) == 18
    assert sum(point["calls"] for point in bots["series"]) == 5
    assert set(bots["charts"]) == {"calls", "containment", "handoff_success"}
    assert all(chart["spark"] for chart in bots["charts"].values())
    queues = json_data(html, "today-queues")
    assert set(queues["charts"]) == {"abandoned", "service_level"}
    for key in ("calls", "containment", "handoff_success", "abandoned", "service_level"):
        assert f'data-chart="{key}"' in html


def test_tiles_follow_the_centers_day_not_utcs(supervisor: Persona) -> None:
    center = supervisor.center
    center.timezone = "Pacific/Honolulu"  # UTC-10, no DST
    center.save(update_fields=["timezone"])
    seed_today(center)

    with time_machine.travel(T0 + timedelta(minutes=30)):  # 2025-03-13 23:30 in Honolulu
        html = supervisor.client.get("/").content.decode()

    # Of the day's calls only the first (09:00 UTC, 23:00 there) is on the 13th in Honolulu;
    # the next ones are the 14th there, and "yesterday's" (09:00 UTC on the 13th) the 12th.
    bots = json_data(html, "today-bots")
    assert bots["tz"] == "Pacific/Honolulu"
    assert bots["series"][0]["bucket"].startswith("2025-03-13T00:00:00-10:00")
    assert tiles(html)["calls"] == "1"


def test_empty_day_shows_dashes_not_zero_rates(supervisor: Persona) -> None:
    with time_machine.travel(NOW):
        html = supervisor.client.get("/").content.decode()

    assert tiles(html) == {
        "calls": "0",
        "containment": "—",
        "handoff_success": "—",
        "abandoned": "—",
        "service_level": "—",
    }
    assert "No virtual agents yet." in html


def test_each_bot_shows_its_calls_now_against_its_capacity(supervisor: Persona) -> None:
    busy = make_bot(supervisor.center, "Busy bot")
    full = make_bot(supervisor.center, "Full bot")
    idle = make_bot(supervisor.center, "Idle bot")
    full.max_concurrent_calls = 2
    full.save(update_fields=["max_concurrent_calls"])
    apply_active_deltas({str(busy.pk): 3, str(full.pk): 2})

    html = supervisor.client.get("/").content.decode()

    def row(bot) -> str:
        return re.search(rf'<tr data-bot="{bot.pk}">.*?</tr>', html, re.S).group(0)

    assert 'value="3"' in row(busy) and 'max="10"' in row(busy) and "full" not in row(busy)
    assert 'value="2"' in row(full) and 'max="2"' in row(full) and ">full<" in row(full)
    assert 'value="0"' in row(idle)


def test_outsider_sees_none_of_acmes_figures(outsider: Persona, acme: ContactCenter) -> None:
    seed_today(acme)
    apply_active_deltas({str(acme.virtual_agents.get().pk): 4})

    with time_machine.travel(NOW):
        html = outsider.client.get("/").content.decode()

    assert tiles(html)["calls"] == "0"
    assert "Sales bot" not in html


def test_agents_land_on_their_profile(agent: Persona) -> None:
    assert agent.client.get("/").status_code == 302


def test_anonymous_visitors_are_sent_to_sign_in(anonymous: Client) -> None:
    response = anonymous.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.ingested_rollups  # counts the reports' own queries, not a rebuild before each
def test_dashboard_queries_are_bounded(supervisor: Persona, django_assert_max_num_queries) -> None:
    seed_today(supervisor.center)
    for _ in range(5):
        make_bot(supervisor.center)
    rebuild_rollups(center_id=supervisor.center.pk)
    supervisor.client.get("/")

    # Today's two reports (virtual agents: 9 aggregates, queues: 4), the bots for their load
    # (their counters: one cache round trip), the configuration counts and recent changes.
    # PostgreSQL: 3 more per report, its transaction for SET LOCAL jit = off (savepoint, SET, release).
    jit = 6 if connection.vendor == "postgresql" else 0
    with time_machine.travel(NOW), django_assert_max_num_queries(23 + jit):
        assert supervisor.client.get("/").status_code == 200
