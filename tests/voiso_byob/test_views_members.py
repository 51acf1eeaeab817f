"""Members pages: add, edit, remove, the last-administrator rule, the list with paging and search."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils.html import escape
from pytest_django.asserts import assertContains, assertNotContains

from tests.conftest import Persona
from tests.factories import make_member
from voiso_byob.models import AuditEvent, ContactCenter, Extension, Invitation, Membership, Role, User
from voiso_byob.services import add_member


def assert_field_error(response, field: str, message: str) -> None:
    """The message is rendered in the error list that belongs to `field`."""
    assertContains(
        response, f'<ul class="errorlist" id="id_{field}_error"><li>{escape(message)}</li></ul>', html=True
    )


def counts(center: ContactCenter) -> tuple[int, int, int, int, int]:
    return (
        User.objects.count(),
        Membership.objects.for_center(center).count(),
        Extension.objects.for_center(center).count(),
        AuditEvent.objects.for_center(center).count(),
        Invitation.objects.for_center(center).count(),
    )


# --- adding: an invitation (tests/voiso_byob/test_invitations.py has its rules) ----------


def test_add_member_sends_an_invitation(admin: Persona, django_capture_on_commit_callbacks) -> None:
    assertContains(admin.client.get("/members/new/"), "Invite member")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.client.post(
            "/members/new/", {"email": "New.Person@Acme.Example", "role": Role.SUPERVISOR}
        )

    assert response.status_code == 302
    assert response["Location"] == "/members/"
    invitation = Invitation.objects.get(contact_center=admin.center)
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "new.person@acme.example",
        Role.SUPERVISOR,
        admin.user,
    )
    assert not User.objects.filter(email="new.person@acme.example").exists()
    assert [m.to for m in mail.outbox] == [["new.person@acme.example"]]
    listed = admin.client.get("/members/")
    assertContains(listed, "Invitation sent to new.person@acme.example as Supervisor.")
    assertContains(listed, "<td>new.person@acme.example</td>", html=True)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"email": "Supervisor@acme.example"},
            "email",
            "supervisor@acme.example is already a member of this contact center.",
        ),
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        (
            {"email": "x@acme.example", "role": "owner"},
            "role",
            "Select a valid choice. owner is not one of the available choices.",
        ),
    ],
    ids=["existing-member", "invalid-email", "unknown-role"],
)
def test_add_member_errors_are_shown_next_to_the_field(
    admin: Persona, supervisor: Persona, data: dict, field: str, message: str
) -> None:
    before = counts(admin.center)

    response = admin.client.post("/members/new/", {"role": Role.AGENT, **data})

    assert response.status_code == 200
    assert_field_error(response, field, message)
    assertContains(response, f'value="{data["email"]}"')
    assert counts(admin.center) == before


def test_add_member_refuses_an_email_longer_than_the_column(admin: Persona) -> None:
    email = "a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".com"  # valid, but 308 characters
    before = counts(admin.center)

    response = admin.client.post("/members/new/", {"email": email, "role": Role.AGENT})

    assert response.status_code == 200
    assert_field_error(response, "email", "Ensure this value has at most 254 characters (it has 308).")
    assert counts(admin.center) == before


# --- editing -----------------------------------------------------------------------------


def test_edit_role_and_extension(admin: Persona, agent: Persona) -> None:
    url = f"/members/{agent.membership.pk}/"
    assertContains(admin.client.get(url), 'value="1001"')

    response = admin.client.post(
        url, {"full_name": "Ann Agent", "role": Role.SUPERVISOR, "extension": "1005"}
    )

    assert response.status_code == 302
    agent.membership.refresh_from_db()
    assert agent.membership.role == Role.SUPERVISOR
    assert agent.membership.extension.digits == "1005"
    assert agent.membership.user.full_name == "Ann Agent"
    assert not Extension.objects.for_center(admin.center).filter(digits="1001").exists()
    event = AuditEvent.objects.for_center(admin.center).get(action="member.updated")
    assert event.actor == admin.user
    assert event.changes == {
        "role": {"from": "agent", "to": "supervisor"},
        "extension": {"from": "1001", "to": "1005"},
        "full_name": {"from": "", "to": "Ann Agent"},
    }


def test_edit_with_taken_extension_is_refused_next_to_the_field(
    admin: Persona, agent: Persona, supervisor: Persona
) -> None:
    before = counts(admin.center)

    response = admin.client.post(
        f"/members/{supervisor.membership.pk}/", {"role": Role.ADMINISTRATOR, "extension": "1001"}
    )

    assert response.status_code == 200
    assert_field_error(response, "extension", "Extension 1001 is already in use.")
    supervisor.membership.refresh_from_db()
    assert supervisor.membership.role == Role.SUPERVISOR
    assert supervisor.membership.extension is None
    assert counts(admin.center) == before


def test_edit_with_nothing_changed_records_no_audit_event(admin: Persona, agent: Persona) -> None:
    before = counts(admin.center)

    response = admin.client.post(
        f"/members/{agent.membership.pk}/", {"role": Role.AGENT, "extension": "1001"}
    )

    assert response.status_code == 302
    assert counts(admin.center) == before


def test_last_administrator_cannot_be_demoted(admin: Persona) -> None:
    response = admin.client.post(f"/members/{admin.membership.pk}/", {"role": Role.AGENT})

    assert response.status_code == 200
    assert_field_error(response, "role", "A contact center needs at least one administrator.")
    admin.membership.refresh_from_db()
    assert admin.membership.role == Role.ADMINISTRATOR
    assert not AuditEvent.objects.filter(action="member.updated").exists()


def test_an_administrator_who_demotes_themselves_lands_on_a_page_they_may_see(admin: Persona) -> None:
    make_member(admin.center, Role.ADMINISTRATOR, email="second@acme.example")

    response = admin.client.post(f"/members/{admin.membership.pk}/", {"role": Role.AGENT}, follow=True)

    admin.membership.refresh_from_db()
    assert admin.membership.role == Role.AGENT
    assert response.status_code == 200
    assert response.redirect_chain[-1] == ("/profile/", 302)


# --- removing ----------------------------------------------------------------------------


def test_remove_member_frees_their_extension(admin: Persona, agent: Persona) -> None:
    url = f"/members/{agent.membership.pk}/delete/"
    assertContains(admin.client.get(url), "agent@acme.example")

    response = admin.client.post(url)

    assert response.status_code == 302
    assert not Membership.objects.filter(pk=agent.membership.pk).exists()
    assert not Extension.objects.for_center(admin.center).filter(digits="1001").exists()
    event = AuditEvent.objects.for_center(admin.center).get(action="member.removed")
    assert event.actor == admin.user
    assert event.changes == {"email": "agent@acme.example", "role": "agent", "extension": "1001"}
    # The account stays (it may work elsewhere); the number is free for the next person.
    assert User.objects.filter(email="agent@acme.example").exists()
    newcomer = make_member(admin.center, email="next@acme.example")
    again = admin.client.post(f"/members/{newcomer.pk}/", {"role": Role.AGENT, "extension": "1001"})
    assert again.status_code == 302
    assert Membership.objects.get(user__email="next@acme.example").extension.digits == "1001"


def test_last_administrator_cannot_be_removed(admin: Persona) -> None:
    before = counts(admin.center)

    response = admin.client.post(f"/members/{admin.membership.pk}/delete/")

    assert response.status_code == 400
    assertContains(response, "A contact center needs at least one administrator.", status_code=400)
    assert Membership.objects.filter(pk=admin.membership.pk).exists()
    assert counts(admin.center) == before


def test_an_administrator_who_leaves_chooses_their_other_center(
    admin: Persona, globex: ContactCenter
) -> None:
    make_member(admin.center, Role.ADMINISTRATOR, email="second@acme.example")
    add_member(center=globex, email=admin.user.email, role=Role.SUPERVISOR, by="tests")

    response = admin.client.post(f"/members/{admin.membership.pk}/delete/", follow=True)

    assert not Membership.objects.filter(pk=admin.membership.pk).exists()
    # The session never moves to another center by itself (issue 15 item 3): they pick it.
    assert response.redirect_chain == [("/", 302), ("/switch/?next=%2F", 302)]
    assertContains(response, "Choose a contact center")
    chosen = admin.client.post("/switch/", {"center": "globex"}, follow=True)
    assertContains(chosen, "<h1>Globex</h1>")


# --- the list ----------------------------------------------------------------------------


@pytest.fixture
def crowd(acme: ContactCenter) -> list[Membership]:
    """30 agents of acme, ext 2000-2029, next to the administrator: 31 members in all."""
    return [
        make_member(acme, Role.AGENT, email=f"crowd{n:02d}@acme.example", extension=f"20{n:02d}")
        for n in range(30)
    ]


def rows(response) -> int:
    return response.content.decode().count("<tr>") - 1  # minus the header row


def test_list_pages_by_25(admin: Persona, crowd: list[Membership]) -> None:
    first = admin.client.get("/members/")
    second = admin.client.get("/members/?page=2")

    assert rows(first) == 25
    assertContains(first, "Page 1 of 2 · 31 in all")
    assertContains(first, 'href="?page=2"')
    assert rows(second) == 6
    assertContains(second, "crowd29@acme.example")
    assertNotContains(second, "crowd00@acme.example")


def test_list_search_by_email_and_extension(admin: Persona, crowd: list[Membership]) -> None:
    by_email = admin.client.get("/members/?q=CROWD1")
    by_extension = admin.client.get("/members/?q=2002")

    assert rows(by_email) == 10
    assertContains(by_email, "crowd15@acme.example")
    assertNotContains(by_email, "crowd25@acme.example")
    assert rows(by_extension) == 1
    assertContains(by_extension, "crowd02@acme.example")
    assertContains(admin.client.get("/members/?q=nobody"), "No member matches “nobody”.")
    assertContains(admin.client.get("/members/?q=<b>x"), "No member matches “&lt;b&gt;x”.")


def test_search_is_kept_when_paging(admin: Persona, crowd: list[Membership]) -> None:
    response = admin.client.get("/members/?q=crowd")

    assertContains(response, "Page 1 of 2 · 30 in all")
    assertContains(response, 'href="?q=crowd&amp;page=2"')


def test_htmx_request_gets_only_the_list_partial(admin: Persona, crowd: list[Membership]) -> None:
    response = admin.client.get("/members/?q=crowd0", HTTP_HX_REQUEST="true")

    html = response.content.decode().strip()
    assert response.status_code == 200
    assert html.startswith('<div id="list"')
    assert "<html" not in html
    assert "mainnav" not in html
    assert rows(response) == 10
    assert "HX-Request" in response["Vary"]


def test_htmx_history_restore_gets_the_whole_page(admin: Persona) -> None:
    response = admin.client.get(
        "/members/?q=crowd", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )

    assertContains(response, "<html")
    assertContains(response, "mainnav")


def test_list_uses_a_bounded_number_of_queries(
    admin: Persona, crowd: list[Membership], django_assert_max_num_queries
) -> None:
    with django_assert_max_num_queries(8):
        response = admin.client.get("/members/")

    assert rows(response) == 25
