"""Queue pages: create with members and failover, inline errors, edit, delete, the list."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.html import escape
from pytest_django.asserts import assertContains, assertNotContains

from routing.models import FailoverAction, Queue, QueueStrategy
from tests.conftest import Persona
from tests.factories import make_member, make_queue
from voiso_byob.models import AuditEvent, ContactCenter, Extension, Membership, Role


def assert_field_error(response, field: str, message: str) -> None:
    """The message is rendered in the error list that belongs to `field`."""
    assertContains(
        response, f'<ul class="errorlist" id="id_{field}_error"><li>{escape(message)}</li></ul>', html=True
    )


def queue_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "Sales",
        "extension": "4001",
        "strategy": QueueStrategy.ROUND_ROBIN,
        "max_wait_seconds": 120,
        "failover_action": FailoverAction.VOICEMAIL,
        "failover_queue": "",
        "failover_number": "",
    }
    data.update(overrides)
    return data


def state(center: ContactCenter) -> tuple[list[tuple[object, ...]], int, int]:
    return (
        sorted(
            Queue.objects.for_center(center).values_list("pk", "name", "extension__digits", "failover_action")
        ),
        Extension.objects.for_center(center).count(),
        AuditEvent.objects.for_center(center).count(),
    )


@pytest.fixture
def second_agent(acme: ContactCenter) -> Membership:
    return make_member(acme, Role.AGENT, email="bob@acme.example", extension="1002")


# --- creating ----------------------------------------------------------------------------


def test_create_queue_with_members_and_failover_queue(
    admin: Persona, agent: Persona, second_agent: Membership
) -> None:
    overflow = make_queue(admin.center, name="Overflow", extension="4999")

    response = admin.client.post(
        "/routing/queues/new/",
        queue_data(
            members=[agent.membership.pk, second_agent.pk],
            failover_action=FailoverAction.QUEUE,
            failover_queue=overflow.pk,
        ),
    )

    assert response.status_code == 302
    assert response["Location"] == "/routing/queues/"
    queue = Queue.objects.get(contact_center=admin.center, name="Sales")
    assert queue.extension.digits == "4001"
    assert queue.extension.kind == "queue"
    assert queue.strategy == QueueStrategy.ROUND_ROBIN
    assert queue.max_wait_seconds == 120
    assert set(queue.members.all()) == {agent.membership, second_agent}
    assert (queue.failover_action, queue.failover_queue, queue.failover_number) == ("queue", overflow, "")
    event = AuditEvent.objects.for_center(admin.center).get(action="queue.created", target_id=str(queue.pk))
    assert event.actor == admin.user
    # People and queues by name in the audit log, not by id.
    assert event.changes["members"] == sorted([agent.user.email, second_agent.user.email])
    assert event.changes["failover_queue"] == overflow.name
    assertContains(admin.client.get("/routing/queues/"), "Queue Sales created with extension 4001.")


def test_create_queue_failing_over_to_an_external_number_stores_it_in_e164(admin: Persona) -> None:
    response = admin.client.post(
        "/routing/queues/new/",
        queue_data(failover_action=FailoverAction.EXTERNAL, failover_number="+1 (212) 555-0199"),
    )

    assert response.status_code == 302
    queue = Queue.objects.get(name="Sales")
    assert (queue.failover_action, queue.failover_number, queue.failover_queue) == (
        "external",
        "+12125550199",
        None,
    )
    assertContains(admin.client.get("/routing/queues/"), "External +12125550199")


def test_member_choices_are_people_of_this_center_with_an_extension(
    admin: Persona, agent: Persona, supervisor: Persona, outsider: Persona
) -> None:
    outsider_agent = make_member(outsider.center, Role.AGENT, extension="1003")

    form = admin.client.get("/routing/queues/new/").context["form"]

    assert list(form.fields["members"].queryset) == [agent.membership]
    response = admin.client.post("/routing/queues/new/", queue_data(members=[outsider_agent.pk]))
    assert response.status_code == 200
    assert "members" in response.context["form"].errors
    assert not Queue.objects.exists()


def test_another_centers_queue_cannot_be_the_failover(admin: Persona, outsider: Persona) -> None:
    foreign = make_queue(outsider.center, name="Foreign", extension="4500")

    response = admin.client.post(
        "/routing/queues/new/", queue_data(failover_action=FailoverAction.QUEUE, failover_queue=foreign.pk)
    )

    assert response.status_code == 200
    assert_field_error(
        response, "failover_queue", "Select a valid choice. That choice is not one of the available choices."
    )
    assert not Queue.objects.for_center(admin.center).exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"extension": "4999"}, "extension", "Extension 4999 is already in use."),
        ({"extension": "1001"}, "extension", "Extension 1001 is already in use."),
        ({"extension": "40"}, "extension", "Extensions in this contact center have 4 digits."),
        ({"extension": ""}, "extension", "This field is required."),
        ({"name": "overflow"}, "name", "A queue named 'overflow' already exists."),
        (
            {"failover_action": FailoverAction.EXTERNAL, "failover_number": "+1 555"},
            "failover_number",
            "+1 555 is not a valid phone number.",
        ),
        (
            {"failover_action": FailoverAction.EXTERNAL, "failover_number": "2125550199"},
            "failover_number",
            "Enter the number in international format, starting with + and the country code.",
        ),
        ({"failover_action": FailoverAction.QUEUE}, "failover_queue", "Choose the queue to fail over to."),
        ({"max_wait_seconds": 2}, "max_wait_seconds", "Ensure this value is greater than or equal to 5."),
    ],
    ids=[
        "taken-by-queue",
        "taken-by-member",
        "wrong-length",
        "missing-extension",
        "duplicate-name",
        "invalid-number",
        "number-without-plus",
        "failover-queue-missing",
        "max-wait-too-short",
    ],
)
def test_create_errors_are_shown_next_to_the_field(
    admin: Persona, agent: Persona, overrides: dict, field: str, message: str
) -> None:
    make_queue(admin.center, name="Overflow", extension="4999")
    before = state(admin.center)

    response = admin.client.post("/routing/queues/new/", queue_data(**overrides))

    assert response.status_code == 200
    assert_field_error(response, field, message)
    assert state(admin.center) == before


# --- editing -----------------------------------------------------------------------------


def test_edit_queue(admin: Persona, agent: Persona, second_agent: Membership) -> None:
    queue = make_queue(admin.center, name="Support", extension="4100", members=[agent.membership])
    url = reverse("routing:queue_edit", args=[queue.pk])
    form_page = admin.client.get(url)
    assertContains(form_page, 'value="Support"')
    assertContains(form_page, 'value="4100"')

    response = admin.client.post(
        url,
        queue_data(
            name="Support EN",
            extension="4101",
            members=[second_agent.pk],
            failover_action=FailoverAction.HANGUP,
        ),
    )

    assert response.status_code == 302
    queue.refresh_from_db()
    assert (queue.name, queue.extension.digits, queue.strategy) == ("Support EN", "4101", "round_robin")
    assert list(queue.members.all()) == [second_agent]
    assert queue.failover_action == FailoverAction.HANGUP
    assert not Extension.objects.for_center(admin.center).filter(digits="4100").exists()
    event = AuditEvent.objects.for_center(admin.center).get(action="queue.updated")
    assert event.actor == admin.user
    assert event.changes["name"] == {"from": "Support", "to": "Support EN"}
    assert event.changes["extension"] == {"from": "4100", "to": "4101"}


def test_edit_keeping_its_own_name_and_extension_is_fine(admin: Persona) -> None:
    queue = make_queue(admin.center, name="Support", extension="4100")

    response = admin.client.post(
        reverse("routing:queue_edit", args=[queue.pk]), queue_data(name="SUPPORT", extension="4100")
    )

    assert response.status_code == 302
    queue.refresh_from_db()
    assert queue.name == "SUPPORT"


def test_edit_refuses_a_failover_loop(admin: Persona) -> None:
    first = make_queue(admin.center, name="First", extension="4001")
    second = make_queue(
        admin.center,
        name="Second",
        extension="4002",
        failover_action=FailoverAction.QUEUE,
        failover_queue=first,
    )
    before = state(admin.center)

    response = admin.client.post(
        reverse("routing:queue_edit", args=[first.pk]),
        queue_data(
            name="First", extension="4001", failover_action=FailoverAction.QUEUE, failover_queue=second.pk
        ),
    )

    assert response.status_code == 200
    assert_field_error(
        response, "failover_queue", "That failover would send callers round in a loop back to this queue."
    )
    first.refresh_from_db()
    assert first.failover_action == FailoverAction.VOICEMAIL
    assert first.failover_queue is None
    assert state(admin.center) == before


def test_a_queue_is_not_offered_as_its_own_failover(admin: Persona) -> None:
    queue = make_queue(admin.center, name="Solo", extension="4001")
    other = make_queue(admin.center, name="Other", extension="4002")

    form = admin.client.get(reverse("routing:queue_edit", args=[queue.pk])).context["form"]

    assert list(form.fields["failover_queue"].queryset) == [other]


def test_failed_edit_shows_the_saved_name_in_the_heading(admin: Persona) -> None:
    queue = make_queue(admin.center, name="Support", extension="4100")

    response = admin.client.post(
        reverse("routing:queue_edit", args=[queue.pk]),
        queue_data(
            name="Renamed", extension="4100", failover_action=FailoverAction.EXTERNAL, failover_number="nope"
        ),
    )

    assert response.status_code == 200
    assertContains(response, "<h1>Edit queue Support</h1>", html=True)
    assertContains(response, 'value="Renamed"')
    queue.refresh_from_db()
    assert queue.name == "Support"


def test_edit_with_a_taken_extension_changes_nothing(admin: Persona, agent: Persona) -> None:
    queue = make_queue(admin.center, name="Support", extension="4100", members=[agent.membership])
    before = state(admin.center)

    response = admin.client.post(
        reverse("routing:queue_edit", args=[queue.pk]),
        queue_data(name="Support", extension="1001", members=[]),
    )

    assert response.status_code == 200
    assert_field_error(response, "extension", "Extension 1001 is already in use.")
    queue.refresh_from_db()
    assert queue.extension.digits == "4100"
    assert list(queue.members.all()) == [agent.membership]
    assert state(admin.center) == before


# --- deleting ----------------------------------------------------------------------------


def test_delete_queue_frees_its_extension(admin: Persona) -> None:
    queue = make_queue(admin.center, name="Support", extension="4100")
    url = reverse("routing:queue_delete", args=[queue.pk])
    assertContains(admin.client.get(url), "Delete queue Support?")

    response = admin.client.post(url)

    assert response.status_code == 302
    assert response["Location"] == "/routing/queues/"
    assert not Queue.objects.filter(pk=queue.pk).exists()
    assert not Extension.objects.for_center(admin.center).filter(digits="4100").exists()
    event = AuditEvent.objects.for_center(admin.center).get(action="queue.deleted")
    assert (event.actor, event.target_id) == (admin.user, str(queue.pk))
    assert admin.client.post("/routing/queues/new/", queue_data(extension="4100")).status_code == 302


def test_delete_is_refused_while_another_queue_fails_over_to_it(admin: Persona) -> None:
    target = make_queue(admin.center, name="Overflow", extension="4999")
    make_queue(
        admin.center,
        name="Sales",
        extension="4001",
        failover_action=FailoverAction.QUEUE,
        failover_queue=target,
    )
    before = state(admin.center)

    response = admin.client.post(reverse("routing:queue_delete", args=[target.pk]))

    assert response.status_code == 400
    assertContains(response, "Queue Overflow is the failover of Sales; change those first.", status_code=400)
    assert Queue.objects.filter(pk=target.pk).exists()
    assert state(admin.center) == before


# --- the list ----------------------------------------------------------------------------


def test_supervisor_sees_the_list_without_write_controls(
    admin: Persona, supervisor: Persona, agent: Persona
) -> None:
    queue = make_queue(admin.center, name="Support", extension="4100", members=[agent.membership])
    write_urls = [
        reverse("routing:queue_create"),
        reverse("routing:queue_edit", args=[queue.pk]),
        reverse("routing:queue_delete", args=[queue.pk]),
    ]

    response = supervisor.client.get("/routing/queues/")

    assert response.status_code == 200
    assertContains(response, "Support")
    assertContains(response, "sip:4100@acme.voiso.com")
    assertNotContains(response, "New queue")
    assertNotContains(response, ">Edit<")
    assertNotContains(response, ">Delete<")
    for url in write_urls:
        assertNotContains(response, url)
    # The administrator's page has them, so the checks above can fail.
    admin_page = admin.client.get("/routing/queues/")
    assertContains(admin_page, "New queue")
    for url in write_urls:
        assertContains(admin_page, url)


@pytest.fixture
def thirty_queues(acme: ContactCenter, agent: Persona, second_agent: Membership) -> list[Queue]:
    """30 queues of acme, each with members, every other one failing over to the one before."""
    queues: list[Queue] = []
    for n in range(30):
        failover = {"failover_action": FailoverAction.QUEUE, "failover_queue": queues[-1]} if n % 2 else {}
        queues.append(
            make_queue(
                acme,
                name=f"Queue {n:02d}",
                extension=f"40{n:02d}",
                members=[agent.membership, second_agent],
                **failover,
            )
        )
    return queues


def test_list_uses_a_bounded_number_of_queries(
    admin: Persona, thirty_queues: list[Queue], django_assert_max_num_queries
) -> None:
    with django_assert_max_num_queries(8):
        response = admin.client.get("/routing/queues/")

    rows = list(response.context["page"])
    assert len(rows) == 25
    assert {queue.member_count for queue in rows} == {2}
    assertContains(response, "Queue Queue 00")
    assertContains(response, "Page 1 of 2 · 30 in all")


def test_list_search_by_name_and_extension(admin: Persona, thirty_queues: list[Queue]) -> None:
    by_name = admin.client.get("/routing/queues/?q=queue 1")
    by_extension = admin.client.get("/routing/queues/?q=4025")

    assert [queue.name for queue in by_name.context["page"]] == [f"Queue 1{n}" for n in range(10)]
    assert [queue.name for queue in by_extension.context["page"]] == ["Queue 25"]
    assertContains(admin.client.get("/routing/queues/?q=zzz"), "No queue matches “zzz”.")


def test_htmx_search_gets_only_the_list_partial(admin: Persona, thirty_queues: list[Queue]) -> None:
    response = admin.client.get("/routing/queues/?q=queue 2", HTTP_HX_REQUEST="true")

    html = response.content.decode().strip()
    assert response.status_code == 200
    assert html.startswith('<div id="list"')
    assert "<html" not in html
    assert "mainnav" not in html
    assert 'id="q"' not in html
    assert html.count("<tr>") - 1 == 10
    assert "HX-Request" in response["Vary"]


def test_the_service_level_threshold_is_set_on_the_form_and_bounded(admin: Persona) -> None:
    response = admin.client.post(reverse("routing:queue_create"), queue_data(service_level_seconds=30))
    assert response.status_code == 302
    queue = Queue.objects.get(contact_center=admin.center, name="Sales")
    assert queue.service_level_seconds == 30
    url = reverse("routing:queue_edit", args=[queue.pk])
    assertContains(admin.client.get(url), 'name="service_level_seconds" value="30"')
    refused = admin.client.post(url, queue_data(service_level_seconds=601))
    assert refused.status_code == 200
    assert_field_error(refused, "service_level_seconds", "Ensure this value is less than or equal to 600.")
    queue.refresh_from_db()
    assert queue.service_level_seconds == 30
    assert admin.client.post(url, queue_data()).status_code == 302  # left out: the default
    queue.refresh_from_db()
    assert queue.service_level_seconds == 20
