"""A session is pinned to one contact center: chosen at sign-in when there are several, and never
moved by anything but the person's own switch (issue 15, item 3). Two sessions of one person."""

from __future__ import annotations

from django.test import Client
from pytest_django.asserts import assertContains

from tests.conftest import Persona
from tests.factories import PASSWORD, make_queue
from voiso_byob.access import SESSION_CENTER_KEY
from voiso_byob.models import ContactCenter, Role
from voiso_byob.services import add_member


def sign_in(email: str) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"username": email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_being_added_elsewhere_does_not_move_open_sessions(admin: Persona, globex: ContactCenter) -> None:
    make_queue(admin.center, name="Acme sales", extension="4001")
    make_queue(globex, name="Globex billing", extension="4002")
    laptop, phone = sign_in(admin.user.email), sign_in(admin.user.email)
    assertContains(laptop.get("/routing/queues/"), "Acme sales")

    add_member(center=globex, email=admin.user.email, role=Role.ADMINISTRATOR, by="globex admin")

    for session in (laptop, phone):
        queues = session.get("/routing/queues/")
        assertContains(queues, "Acme sales")
        assert "Globex billing" not in queues.content.decode()
        assert session.session[SESSION_CENTER_KEY] == str(admin.center.pk)
        api = session.get("/api/v1/queues/")
        assert [q["name"] for q in api.json()["results"]] == ["Acme sales"]


def test_one_session_switching_leaves_the_other_where_it_is(admin: Persona, globex: ContactCenter) -> None:
    add_member(center=globex, email=admin.user.email, role=Role.SUPERVISOR, by="globex admin")
    make_queue(globex, name="Globex billing", extension="4002")
    laptop, phone = sign_in(admin.user.email), sign_in(admin.user.email)
    for session in (laptop, phone):
        session.post("/switch/", {"center": "acme"})

    laptop.post("/switch/", {"center": "globex"})

    assertContains(laptop.get("/routing/queues/"), "Globex billing")
    assert "Globex billing" not in phone.get("/routing/queues/").content.decode()
    assert phone.session[SESSION_CENTER_KEY] == str(admin.center.pk)


def test_with_several_centers_the_person_chooses_at_sign_in(admin: Persona, globex: ContactCenter) -> None:
    add_member(center=globex, email=admin.user.email, role=Role.SUPERVISOR, by="globex admin")
    client = Client()
    credentials = {"username": admin.user.email, "password": PASSWORD}
    response = client.post("/accounts/login/", credentials, follow=True)

    assert response.redirect_chain[-1] == ("/switch/?next=%2F", 302)
    assertContains(response, "Choose a contact center")
    assertContains(response, "Acme Support")
    assertContains(response, "Globex")
    assert SESSION_CENTER_KEY not in client.session
    # Nothing is shown from either center until they choose; the API refuses the session too.
    api = client.get("/api/v1/queues/")
    assert api.status_code == 403 and "choose one" in api.json()["error"]["message"]

    chosen = client.post("/switch/", {"center": "globex", "next": "/"}, follow=True)
    assertContains(chosen, "Now working in Globex.")
    assert client.session[SESSION_CENTER_KEY] == str(globex.pk)


def test_the_switch_refuses_a_center_one_is_not_in(admin: Persona, outsider: Persona) -> None:
    response = admin.client.post("/switch/", {"center": "globex"})
    assert response.status_code == 302
    assert admin.client.session[SESSION_CENTER_KEY] == str(admin.center.pk)


def test_the_switch_does_not_redirect_off_site(admin: Persona, globex: ContactCenter) -> None:
    add_member(center=globex, email=admin.user.email, role=Role.SUPERVISOR, by="t")
    response = admin.client.post("/switch/", {"center": "globex", "next": "https://evil.example/"})
    assert response["Location"] == "/"
