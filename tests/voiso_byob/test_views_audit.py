"""The audit log reads like the rest of the portal: people and queues by name, times in the center's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine
from pytest_django.asserts import assertContains, assertNotContains

from routing.services import update_queue
from tests.conftest import Persona
from tests.factories import make_member, make_queue
from tests.reporting.conftest import make_bot


def test_queue_members_are_shown_by_email_and_name_not_by_id(admin: Persona, agent: Persona) -> None:
    second = make_member(admin.center, email="zoe@acme.example", extension="1077")
    bot = make_bot(admin.center, name="Night bot", extension="7011")
    overflow = make_queue(admin.center, name="Overflow")
    queue = make_queue(admin.center, name="Escalations", members=[agent.membership])
    update_queue(
        queue=queue,
        by=admin.user,
        members=[agent.membership, second],
        virtual_agent_members=[bot],
        failover_action="queue",
        failover_queue=overflow,
    )

    response = admin.client.get("/audit/", {"action": "queue."})

    assertContains(response, f"{agent.user.email} → {agent.user.email}, zoe@acme.example")
    assertContains(response, "— → Night bot")
    assertContains(response, "— → Overflow")
    for raw_id in (agent.membership.pk, second.pk, bot.pk, overflow.pk):
        assertNotContains(response, str(raw_id))


def test_times_are_in_the_centers_time_zone(admin: Persona) -> None:
    admin.center.timezone = "America/Los_Angeles"
    admin.center.save(update_fields=["timezone"])
    with time_machine.travel(datetime(2026, 1, 15, 3, 4, 5, tzinfo=UTC), tick=False):
        make_queue(admin.center, name="Night shift")

    response = admin.client.get("/audit/", {"action": "queue.created"})

    assertContains(response, "2026-01-14 19:04:05")  # 03:04:05 UTC, the evening before in California
    assertNotContains(response, "2026-01-15 03:04:05")
    assertContains(response, "America/Los_Angeles")
    assertNotContains(response, "(UTC)")
