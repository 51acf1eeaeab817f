"""The audit log reads like the rest of the portal: people and queues by name, times in the center's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine
from pytest_django.asserts import assertContains, assertNotContains

from routing.services import update_queue
from tests.conftest import Persona
from tests.factories import make_member, make_queue
from tests.reporting.conftest import make_bot
from voiso_byob.models import AuditEvent


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


def test_member_ids_in_events_recorded_before_are_shown_as_emails(
    admin: Persona, agent: Persona, outsider: Persona, django_assert_max_num_queries
) -> None:
    # What a queue's audit row held before it named people: membership ids. Another center's id
    # (which this center's log should never hold) is not resolved: names come from this center only.
    removed = "9b0c1f4e-0000-4000-8000-000000000000"
    AuditEvent.objects.create(
        contact_center=admin.center,
        actor_repr="admin@acme.example",
        action="queue.updated",
        target_type="routing.queue",
        target_id="q",
        target_repr="Sales",
        changes={
            "members": {
                "from": [str(agent.membership.pk)],
                "to": [str(agent.membership.pk), str(outsider.membership.pk), removed],
            }
        },
    )

    with django_assert_max_num_queries(8):
        response = admin.client.get("/audit/", {"action": "queue.updated"})

    expected = f"{agent.user.email} → {agent.user.email}, {outsider.membership.pk}, {removed}"
    assertContains(response, expected)
    assertNotContains(response, outsider.user.email)
