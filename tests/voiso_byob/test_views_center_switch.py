"""Working in several contact centers: the switcher, the session's choice, and the audit log per center."""

from __future__ import annotations

import pytest
from pytest_django.asserts import assertContains, assertNotContains

from tests.conftest import Persona
from tests.factories import make_center, make_queue
from voiso_byob.access import SESSION_CENTER_KEY
from voiso_byob.models import AuditEvent, ContactCenter, Membership, Role
from voiso_byob.services import add_member


@pytest.fixture
def two_centers(admin: Persona, globex: ContactCenter) -> Persona:
    """acme's administrator, also a supervisor of globex; each center has one queue."""
    add_member(center=globex, email=admin.user.email, role=Role.SUPERVISOR, by="tests")
    make_queue(admin.center, name="Acme sales", extension="4001")
    make_queue(globex, name="Globex billing", extension="4002")
    return admin


def test_member_of_two_centers_sees_the_switcher(two_centers: Persona) -> None:
    response = two_centers.client.get("/")

    assertContains(response, '<option value="acme" selected>Acme Support</option>', html=True)
    assertContains(response, '<option value="globex">Globex</option>', html=True)


def test_member_of_one_center_sees_no_switcher(admin: Persona) -> None:
    response = admin.client.get("/")

    assertNotContains(response, 'name="center"')
    assertContains(response, '<span class="center-name">Acme Support</span>', html=True)


def test_switching_changes_the_center_whose_queues_are_shown(two_centers: Persona) -> None:
    client = two_centers.client
    assertContains(client.get("/routing/queues/"), "Acme sales")

    response = client.post("/switch/", {"center": "globex"}, follow=True)

    assert response.redirect_chain == [("/", 302)]
    assertContains(response, "Now working in Globex.")
    assertContains(response, "<h1>Globex</h1>")
    queues = client.get("/routing/queues/")
    assertContains(queues, "Globex billing")
    assertNotContains(queues, "Acme sales")
    # globex made them a supervisor: reading is allowed there, configuring is not.
    assertNotContains(queues, "New queue")
    assert client.get("/routing/queues/new/").status_code == 403
    assert client.session[SESSION_CENTER_KEY] == str(
        Membership.objects.get(user=two_centers.user, contact_center__slug="globex").contact_center_id
    )

    client.post("/switch/", {"center": "acme"})

    assertContains(client.get("/routing/queues/"), "Acme sales")
    assert client.get("/routing/queues/new/").status_code == 200


def test_switching_to_a_center_one_does_not_belong_to_is_refused(two_centers: Persona) -> None:
    make_center("initech", name="Initech")
    client = two_centers.client
    client.post("/switch/", {"center": "globex"})
    before = client.session[SESSION_CENTER_KEY]

    response = client.post("/switch/", {"center": "initech"}, follow=True)

    assertContains(response, "You are not a member of that contact center.")
    assert client.session[SESSION_CENTER_KEY] == before
    queues = client.get("/routing/queues/")
    assertContains(queues, "Globex billing")


def test_a_get_of_the_switch_only_lists_the_centers(two_centers: Persona) -> None:
    response = two_centers.client.get("/switch/?center=globex")

    assert response.status_code == 200
    assertContains(response, "Choose a contact center")
    assert two_centers.client.session[SESSION_CENTER_KEY] == str(two_centers.center.pk)
    assertContains(two_centers.client.get("/routing/queues/"), "Acme sales")


def test_a_center_one_has_left_is_no_longer_the_current_one(
    two_centers: Persona, globex: ContactCenter
) -> None:
    client = two_centers.client
    client.post("/switch/", {"center": "globex"})
    Membership.objects.filter(user=two_centers.user, contact_center=globex).delete()

    # The session does not move to the remaining center by itself: the person chooses.
    response = client.get("/routing/queues/")
    assert response.status_code == 302 and response["Location"] == "/switch/?next=%2Frouting%2Fqueues%2F"
    chosen = client.post("/switch/", {"center": "acme", "next": "/routing/queues/"}, follow=True)
    assertContains(chosen, "Acme sales")
    assertNotContains(chosen, "Globex billing")


# --- the audit log -----------------------------------------------------------------------


def test_audit_log_lists_only_the_current_centers_events(two_centers: Persona, globex: ContactCenter) -> None:
    client = two_centers.client

    acme_log = client.get("/audit/")
    client.post("/switch/", {"center": "globex"})
    globex_log = client.get("/audit/")

    assertContains(acme_log, "Acme sales")
    assertNotContains(acme_log, "Globex billing")
    assertContains(globex_log, "Globex billing")
    assertNotContains(globex_log, "Acme sales")
    assert (
        acme_log.context["page"].paginator.count == AuditEvent.objects.for_center(two_centers.center).count()
    )
    assert globex_log.context["page"].paginator.count == AuditEvent.objects.for_center(globex).count()


def test_audit_log_filters_by_action(two_centers: Persona) -> None:
    response = two_centers.client.get("/audit/?action=queue.")

    events = list(response.context["page"])
    assert [event.action for event in events] == ["queue.created"]
    assertContains(response, "Acme sales")
    assertNotContains(response, "<code>member.added</code>")
    empty = two_centers.client.get("/audit/?action=campaign.")
    assertContains(empty, "Nothing recorded for “campaign.”.")


def test_audit_log_filter_is_kept_when_paging(admin: Persona) -> None:
    for n in range(30):
        make_queue(admin.center, name=f"Queue {n:02d}", extension=f"40{n:02d}")

    first = admin.client.get("/audit/?action=queue.created")
    second = admin.client.get("/audit/?action=queue.created&page=2")

    assertContains(first, "Page 1 of 2 · 30 in all")
    assertContains(first, 'href="?action=queue.created&amp;page=2"')
    assert {event.action for event in second.context["page"]} == {"queue.created"}
    assert len(second.context["page"]) == 5


def test_audit_log_htmx_request_gets_only_the_list(admin: Persona) -> None:
    response = admin.client.get("/audit/?action=member.", HTTP_HX_REQUEST="true")

    html = response.content.decode().strip()
    assert html.startswith('<div id="list"')
    assert "<html" not in html
    assert "member.added" in html


def test_audit_log_is_not_for_agents(agent: Persona) -> None:
    assert agent.client.get("/audit/").status_code == 403
