"""Adding a person is an invitation they accept (issue 15, item 1).

An administrator of one center learns nothing about an address from inviting it (same answer,
same e-mail, whether it has an account anywhere), and nothing of the person's changes until they
accept through the e-mailed link: no membership, no session moved.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError, connection, transaction
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from tests.conftest import Caller, Persona, bearer, error_code
from tests.factories import PASSWORD, make_api_key, make_center, make_member, make_queue
from voiso_byob.access import SESSION_CENTER_KEY
from voiso_byob.errors import DomainError
from voiso_byob.models import (
    ApiKeyScope,
    AuditEvent,
    ContactCenter,
    Invitation,
    Membership,
    Role,
    User,
    hash_invitation_token,
)
from voiso_byob.services import (
    accept_invitation,
    create_account_from_invitation,
    invite_member,
    revoke_invitation,
)

MEMBERS = "/api/v1/members/"
INVITATIONS = "/api/v1/invitations/"
NEW_EMAIL = "newcomer@example.org"
NEW_PASSWORD = "a-brand-new-passphrase-77"
LINK = re.compile(r"http://testserver(/invitations/[A-Za-z0-9_-]{20,}/)")


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Runs the callbacks a request registers after commit (the invitation e-mail)."""

    def run(call, *args: Any, **kwargs: Any) -> HttpResponse:
        with django_capture_on_commit_callbacks(execute=True):
            return call(*args, **kwargs)

    return run


def link_in_last_mail(to: str) -> str:
    message = mail.outbox[-1]
    assert message.to == [to]
    return LINK.search(message.body).group(1)


def invite(
    on_commit, client: Client, email: str, role: str = "agent", **headers: str
) -> tuple[HttpResponse, str]:
    response = on_commit(
        client.post, MEMBERS, {"email": email, "role": role}, content_type="application/json", **headers
    )
    assert response.status_code in (200, 201), response.content
    return response, link_in_last_mail(email.lower())


def sign_in(email: str, password: str = PASSWORD) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"username": email, "password": password})
    assert response.status_code == 302, response.content
    return client


def state_of(user: User) -> tuple[Any, ...]:
    """Everything of a person an invitation must leave alone until they accept."""
    user.refresh_from_db()
    return (
        user.email,
        user.full_name,
        user.password,
        user.is_active,
        sorted(Membership.objects.filter(user=user).values_list("contact_center__slug", "role")),
    )


# --- the same answer whether or not the address has an account ----------------------------


def _shape(response: HttpResponse) -> tuple[int, Any]:
    body = response.json()
    # The values that differ by nature (ids, times, the address itself) are masked; keys stay.
    masked = {
        key: "…" if key in {"id", "email", "created", "sent_at", "expires_at"} else value
        for key, value in body.items()
    }
    return response.status_code, masked


def test_the_answer_is_the_same_for_an_existing_and_a_new_address(
    caller: Caller, outsider: Persona, on_commit
) -> None:
    existing, _ = invite(on_commit, caller.client, "admin@globex.example", **caller.headers)
    new, _ = invite(on_commit, caller.client, NEW_EMAIL, **caller.headers)

    assert _shape(existing) == _shape(new)
    assert existing.status_code == 201
    assert set(existing.json()) == {
        "id",
        "email",
        "role",
        "status",
        "invited_by",
        "created",
        "sent_at",
        "expires_at",
    }
    assert existing.json()["invited_by"] == (caller.user.email if caller.user else None)
    assert sorted(existing.headers) == sorted(new.headers)
    # The audit rows say the same too.
    sent = AuditEvent.objects.filter(action="invitation.sent").order_by("created", "id")
    assert [event.changes for event in sent] == [
        {"email": "admin@globex.example", "role": "agent"},
        {"email": NEW_EMAIL, "role": "agent"},
    ]


def test_the_email_is_the_same_for_an_existing_and_a_new_address(
    admin: Persona, outsider: Persona, on_commit
) -> None:
    on_commit(admin.client.post, "/members/new/", {"email": "admin@globex.example", "role": Role.AGENT})
    on_commit(admin.client.post, "/members/new/", {"email": NEW_EMAIL, "role": Role.AGENT})

    existing, new = mail.outbox
    assert (existing.to, new.to) == (["admin@globex.example"], [NEW_EMAIL])
    assert existing.subject == new.subject == "You are invited to Acme Support"
    # Only the token in the link differs.
    assert LINK.sub("LINK", existing.body) == LINK.sub("LINK", new.body)
    assert "admin@acme.example invited you to work in Acme Support as Agent." in new.body
    assert "within 7 days" in new.body


def test_the_portal_page_answers_the_same_for_an_existing_and_a_new_address(
    admin: Persona, outsider: Persona, on_commit
) -> None:
    existing = on_commit(
        admin.client.post, "/members/new/", {"email": "admin@globex.example", "role": Role.AGENT}, follow=True
    )
    new = on_commit(admin.client.post, "/members/new/", {"email": NEW_EMAIL, "role": Role.AGENT}, follow=True)

    message = "Invitation sent to {} as Agent. They join when they accept it (the link works for 7 days)."
    assertContains(existing, message.format("admin@globex.example"))
    assertContains(new, message.format(NEW_EMAIL))
    assert existing.redirect_chain == new.redirect_chain == [("/members/", 302)]


@pytest.mark.parametrize("email", ["admin@globex.example", NEW_EMAIL], ids=["existing", "new"])
def test_a_password_is_refused_alike_for_every_address(caller: Caller, outsider: Persona, email: str) -> None:
    refusal = "Passwords are chosen by their owner: a new account's when they accept the invitation."
    before = state_of(outsider.user)

    response = caller.post(MEMBERS, {"email": email, "role": "agent", "password": NEW_PASSWORD})

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "password_not_allowed", "message": refusal, "fields": {"password": [refusal]}}
    }
    assert not Invitation.objects.exists()
    assert state_of(outsider.user) == before
    assert not User.objects.filter(email=NEW_EMAIL).exists()


@pytest.mark.parametrize("field", ["full_name", "extension"])
def test_the_person_s_name_and_an_extension_are_not_part_of_an_invitation(caller: Caller, field: str) -> None:
    response = caller.post(INVITATIONS, {"email": NEW_EMAIL, "role": "agent", field: "1050"})

    assert response.status_code == 400
    assert error_code(response) == "not_accepted"
    assert list(response.json()["error"]["fields"]) == [field]
    assert not Invitation.objects.exists()


# --- nothing changes until the person accepts --------------------------------------------


def test_an_invitation_changes_nothing_of_the_person(caller: Caller, outsider: Persona, on_commit) -> None:
    before = state_of(outsider.user)
    users = User.objects.count()

    invite(on_commit, caller.client, "admin@globex.example", **caller.headers)
    invite(on_commit, caller.client, NEW_EMAIL, **caller.headers)

    assert state_of(outsider.user) == before
    assert User.objects.count() == users  # no account for the new address either
    assert outsider.client.session[SESSION_CENTER_KEY] == str(outsider.center.pk)
    assert [m["email"] for m in caller.get(MEMBERS).json()["results"]] == ["admin@acme.example"]


def test_the_token_is_stored_hashed(caller: Caller, on_commit) -> None:
    response, link = invite(on_commit, caller.client, NEW_EMAIL, **caller.headers)
    token = link.split("/")[2]

    invitation = Invitation.objects.get(pk=response.json()["id"])
    assert invitation.hashed_token == hash_invitation_token(token)
    assert token not in invitation.hashed_token
    assert token not in response.content.decode()
    assert invitation.expires_at - invitation.sent_at == timedelta(days=7)


# --- accepting with an existing account --------------------------------------------------


def test_an_existing_account_signs_in_and_accepts(admin: Persona, outsider: Persona, on_commit) -> None:
    _, link = invite(on_commit, admin.client, "admin@globex.example", role="supervisor")
    browser = Client()

    landing = browser.get(link)
    assertContains(landing, "Sign in as admin@globex.example to accept.")
    assertContains(landing, f'href="/accounts/login/?next={link.replace("/", "%2F")}"')
    assert (landing["Cache-Control"], landing["Referrer-Policy"]) == ("no-store", "same-origin")
    assert not Membership.objects.filter(user=outsider.user, contact_center=admin.center).exists()

    signed_in = browser.post(
        f"/accounts/login/?next={link}",
        {"username": "admin@globex.example", "password": PASSWORD, "next": link},
    )
    assert signed_in["Location"] == link
    assertContains(browser.get(link), "Accept and join Acme Support")
    accepted = browser.post(link, follow=True)

    membership = Membership.objects.get(user=outsider.user, contact_center=admin.center)
    assert membership.role == Role.SUPERVISOR
    assert accepted.redirect_chain == [("/switch/", 302)]
    assertContains(accepted, "You joined Acme Support.")
    invitation = Invitation.objects.get()
    assert (invitation.accepted_by, invitation.accepted_at is not None) == (outsider.user, True)
    accepted_event = AuditEvent.objects.get(action="invitation.accepted")
    assert (accepted_event.contact_center, accepted_event.actor) == (admin.center, outsider.user)
    added = AuditEvent.objects.get(action="member.added", target_id=str(membership.pk))
    assert added.changes == {"email": "admin@globex.example", "role": "supervisor", "extension": None}


def test_another_signed_in_account_is_refused_clearly(
    admin: Persona, agent: Persona, outsider: Persona, on_commit
) -> None:
    _, link = invite(on_commit, admin.client, "admin@globex.example")
    _, new_link = invite(on_commit, admin.client, NEW_EMAIL)

    for url in (link, new_link):
        for method in ("get", "post"):
            response = getattr(agent.client, method)(
                url, {"full_name": "X", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
            )
            assert response.status_code == 403
            assertContains(response, "You are signed in as agent@acme.example.", status_code=403)
            assertContains(response, "Sign out", status_code=403)
    assert not Membership.objects.filter(user=outsider.user, contact_center=admin.center).exists()
    assert not User.objects.filter(email=NEW_EMAIL).exists()
    assert Invitation.objects.open().count() == 2
    assert Membership.objects.filter(user=agent.user).count() == 1


def test_a_link_accepted_twice_makes_one_membership(admin: Persona, outsider: Persona, on_commit) -> None:
    _, link = invite(on_commit, admin.client, "admin@globex.example")
    other_tab = Client()
    other_tab.force_login(outsider.user)

    assert outsider.client.post(link).status_code == 302
    again = other_tab.post(link, follow=True)

    assert Membership.objects.filter(user=outsider.user, contact_center=admin.center).count() == 1
    assertContains(again, "You already joined Acme Support.")
    assert AuditEvent.objects.filter(action="invitation.accepted").count() == 1
    # Anyone else holding the link is told it is used.
    used = Client().get(link)
    assertContains(used, "This invitation has already been accepted.", status_code=410)
    # And the service itself refuses a second acceptance.
    with pytest.raises(Exception, match="already been accepted"):
        accept_invitation(invitation=Invitation.objects.get(), user=outsider.user)


# --- accepting with a new address --------------------------------------------------------


def test_a_new_address_names_itself_and_chooses_a_password(admin: Persona, on_commit) -> None:
    _, link = invite(on_commit, admin.client, NEW_EMAIL)
    browser = Client()
    assertContains(browser.get(link), "Create account and join")

    response = browser.post(
        link,
        {"full_name": "Nia Newcomer", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
        follow=True,
    )

    user = User.objects.get(email=NEW_EMAIL)
    assert user.full_name == "Nia Newcomer"
    assert user.check_password(NEW_PASSWORD)
    assert Membership.objects.get(user=user).contact_center == admin.center
    assert response.redirect_chain[0] == ("/", 302)
    assertContains(response, "Welcome to Acme Support.")
    assert browser.session[SESSION_CENTER_KEY] == str(admin.center.pk)
    assert sign_in(NEW_EMAIL, NEW_PASSWORD).session[SESSION_CENTER_KEY] == str(admin.center.pk)
    events = AuditEvent.objects.filter(actor=user, action__in=["member.added", "invitation.accepted"])
    assert sorted(events.values_list("action", flat=True)) == ["invitation.accepted", "member.added"]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"password": "password123", "password_again": "password123"},
            "password",
            "This password is too common.",
        ),
        (
            {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD + "x"},
            "password_again",
            "The two passwords differ.",
        ),
        ({"password": "", "password_again": ""}, "password", "This field is required."),
    ],
    ids=["weak", "different", "empty"],
)
def test_a_refused_signup_creates_nothing(
    admin: Persona, on_commit, data: dict, field: str, message: str
) -> None:
    _, link = invite(on_commit, admin.client, NEW_EMAIL)

    response = Client().post(link, {"full_name": "Nia", **data})

    assert response.status_code == 400
    assertContains(response, message, status_code=400)
    assertNotContains(response, NEW_PASSWORD, status_code=400)
    assert not User.objects.filter(email=NEW_EMAIL).exists()
    assert Invitation.objects.get().status() == "pending"


def test_an_address_that_gained_an_account_since_signs_in_instead(
    admin: Persona, globex: ContactCenter, on_commit
) -> None:
    _, link = invite(on_commit, admin.client, NEW_EMAIL)
    make_member(globex, email=NEW_EMAIL)  # joined another center meanwhile

    response = Client().post(
        link, {"full_name": "Nia", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    )

    assertContains(response, f"Sign in as {NEW_EMAIL} to accept.")
    assert User.objects.filter(email=NEW_EMAIL).count() == 1
    assert not Membership.objects.filter(user__email=NEW_EMAIL, contact_center=admin.center).exists()


# --- links that no longer work -----------------------------------------------------------


def test_an_expired_link_is_refused_with_a_clear_page(admin: Persona, outsider: Persona, on_commit) -> None:
    _, link = invite(on_commit, admin.client, "admin@globex.example")

    with time_machine.travel(timezone.now() + timedelta(days=7, seconds=1)):
        shown = outsider.client.get(link)
        posted = outsider.client.post(link)
        listed = admin.client.get(INVITATIONS).json()["results"]

    for response in (shown, posted):
        assertContains(response, "This invitation has expired.", status_code=410)
    assert not Membership.objects.filter(user=outsider.user, contact_center=admin.center).exists()
    assert [row["status"] for row in listed] == ["expired"]


def test_a_link_still_works_just_before_it_expires(admin: Persona, outsider: Persona, on_commit) -> None:
    _, link = invite(on_commit, admin.client, "admin@globex.example")

    with time_machine.travel(timezone.now() + timedelta(days=6, hours=23)):
        assert outsider.client.post(link).status_code == 302

    assert Membership.objects.filter(user=outsider.user, contact_center=admin.center).exists()


def test_a_revoked_link_is_refused_with_a_clear_page(caller: Caller, outsider: Persona, on_commit) -> None:
    response, link = invite(on_commit, caller.client, "admin@globex.example", **caller.headers)

    revoked = caller.delete(f"{INVITATIONS}{response.json()['id']}/")

    assert revoked.status_code == 204
    assertContains(outsider.client.post(link), "This invitation was withdrawn", status_code=410)
    assert not Membership.objects.filter(user=outsider.user, contact_center__slug="acme").exists()
    event = AuditEvent.objects.get(action="invitation.revoked")
    assert event.changes == {"email": "admin@globex.example", "role": "agent"}
    caller.assert_acted(event)
    assert caller.get(INVITATIONS).json()["results"] == []
    assert caller.delete(f"{INVITATIONS}{response.json()['id']}/").status_code == 404


def test_an_unknown_link_is_404_with_a_clear_page(db, anonymous: Client) -> None:
    response = anonymous.get("/invitations/not-a-real-token-at-all/")

    assertContains(response, "This invitation link is not valid.", status_code=404)


def test_an_accepted_invitation_cannot_be_revoked(caller: Caller, outsider: Persona, on_commit) -> None:
    response, link = invite(on_commit, caller.client, "admin@globex.example", **caller.headers)
    invitation = Invitation.objects.get(pk=response.json()["id"])
    outsider.client.post(link)

    with pytest.raises(DomainError) as refused:
        revoke_invitation(invitation=invitation, by="tests")
    assert refused.value.code == "invitation_accepted"
    assert caller.delete(f"{INVITATIONS}{invitation.pk}/").status_code == 404


# --- retrying and resending --------------------------------------------------------------


def test_a_retried_invite_refreshes_the_open_one(caller: Caller, outsider: Persona, on_commit) -> None:
    first, old_link = invite(on_commit, caller.client, "admin@globex.example", **caller.headers)

    again, new_link = invite(
        on_commit, caller.client, "Admin@Globex.example", role="supervisor", **caller.headers
    )

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["role"] == "supervisor"
    assert Invitation.objects.count() == 1
    assert len(mail.outbox) == 2
    # The new link replaces the old one.
    assertContains(outsider.client.get(old_link), "not valid", status_code=404)
    assert outsider.client.post(new_link).status_code == 302
    assert Membership.objects.get(user=outsider.user, contact_center__slug="acme").role == Role.SUPERVISOR
    assert AuditEvent.objects.filter(action="invitation.resent").count() == 1


def test_an_expired_invitation_is_refreshed_by_inviting_again(caller: Caller, on_commit) -> None:
    first, _ = invite(on_commit, caller.client, NEW_EMAIL, **caller.headers)

    with time_machine.travel(timezone.now() + timedelta(days=8)):
        again, link = invite(on_commit, caller.client, NEW_EMAIL, **caller.headers)
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["status"] == "pending"
        assertContains(Client().get(link), "Create account and join")


def test_resend_mints_a_new_link(caller: Caller, on_commit) -> None:
    response, old_link = invite(on_commit, caller.client, NEW_EMAIL, **caller.headers)
    url = f"{INVITATIONS}{response.json()['id']}/resend/"

    resent = on_commit(caller.client.post, url, content_type="application/json", **caller.headers)

    assert resent.status_code == 200
    new_link = link_in_last_mail(NEW_EMAIL)
    assert new_link != old_link
    assert Client().get(old_link).status_code == 404
    assert Client().get(new_link).status_code == 200
    caller.assert_acted(AuditEvent.objects.get(action="invitation.resent"))


def test_a_member_of_this_center_is_not_invited(caller: Caller, agent: Persona) -> None:
    response = caller.post(INVITATIONS, {"email": "agent@acme.example", "role": "agent"})

    assert response.status_code == 400
    assert error_code(response) == "already_member"
    assert not Invitation.objects.exists()


def test_one_open_invitation_per_center_and_address_is_a_database_rule(
    acme: ContactCenter, globex: ContactCenter
) -> None:
    invite_member(center=acme, email=NEW_EMAIL, role=Role.AGENT, by="tests", portal_url="http://testserver")
    invite_member(center=globex, email=NEW_EMAIL, role=Role.AGENT, by="tests", portal_url="http://testserver")
    with (
        pytest.raises(IntegrityError, match="voiso_byob_invitation_one_open_per_email"),
        transaction.atomic(),
    ):
        Invitation.objects.create(
            contact_center=acme,
            email=NEW_EMAIL,
            role=Role.AGENT,
            hashed_token="x" * 64,
            expires_at=timezone.now(),
        )
    assert Invitation.objects.open().count() == 2


# --- the Members page --------------------------------------------------------------------


def test_the_members_page_lists_invitations_to_resend_or_revoke(
    admin: Persona, supervisor: Persona, on_commit
) -> None:
    _, old_link = invite(on_commit, admin.client, NEW_EMAIL)
    invitation = Invitation.objects.get()

    page = admin.client.get("/members/")
    assertContains(page, NEW_EMAIL)
    assertContains(page, f'action="/members/invitations/{invitation.pk}/resend/"')
    assertContains(page, f'action="/members/invitations/{invitation.pk}/revoke/"')
    assertContains(supervisor.client.get("/members/"), NEW_EMAIL)  # read-only for supervisors

    resent = on_commit(admin.client.post, f"/members/invitations/{invitation.pk}/resend/")
    assert resent.status_code == 302
    assert link_in_last_mail(NEW_EMAIL) != old_link
    revoked = admin.client.post(f"/members/invitations/{invitation.pk}/revoke/", follow=True)
    assertContains(revoked, f"Invitation of {NEW_EMAIL} revoked; its link no longer works.")
    assertNotContains(revoked, f"<td>{NEW_EMAIL}</td>", html=True)
    assert AuditEvent.objects.get(action="invitation.revoked").actor == admin.user


def test_the_members_page_shows_a_bounded_number_of_invitations(
    admin: Persona, django_assert_max_num_queries
) -> None:
    for n in range(52):
        invite_member(
            center=admin.center,
            email=f"p{n:02d}@example.org",
            role=Role.AGENT,
            by=admin.user,
            portal_url="http://t",
        )

    with django_assert_max_num_queries(9):
        page = admin.client.get("/members/")

    assertContains(page, "p49@example.org")
    assertNotContains(page, "p50@example.org")
    assertContains(page, "The first 50 by e-mail")


# --- roles and tenants -------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["supervisor", "agent"])
def test_only_administrators_invite_resend_and_revoke(
    request: pytest.FixtureRequest, admin: Persona, persona: str
) -> None:
    who: Persona = request.getfixturevalue(persona)
    invitation, _ = invite_member(
        center=admin.center, email=NEW_EMAIL, role=Role.AGENT, by="tests", portal_url="http://t"
    )
    token = invitation.hashed_token

    responses = [
        who.client.post(
            INVITATIONS, {"email": "x@example.org", "role": "agent"}, content_type="application/json"
        ),
        who.client.post(
            MEMBERS, {"email": "x@example.org", "role": "agent"}, content_type="application/json"
        ),
        who.client.post(f"{INVITATIONS}{invitation.pk}/resend/"),
        who.client.delete(f"{INVITATIONS}{invitation.pk}/"),
    ]

    assert [r.status_code for r in responses] == [403] * 4
    assert {error_code(r) for r in responses} == {"permission_denied"}
    invitation.refresh_from_db()
    assert (invitation.hashed_token, invitation.revoked_at) == (token, None)
    assert Invitation.objects.count() == 1
    reads = who.client.get(INVITATIONS)
    assert reads.status_code == (200 if persona == "supervisor" else 403)


def test_a_read_key_lists_invitations_but_cannot_invite(
    api_keys: dict[str, str], acme: ContactCenter
) -> None:
    invite_member(center=acme, email=NEW_EMAIL, role=Role.AGENT, by="tests", portal_url="http://t")
    client = Client()

    listed = client.get(INVITATIONS, **bearer(api_keys["read"]))
    created = client.post(
        INVITATIONS,
        {"email": "x@example.org", "role": "agent"},
        content_type="application/json",
        **bearer(api_keys["read"]),
    )

    assert [row["email"] for row in listed.json()["results"]] == [NEW_EMAIL]
    assert created.status_code == 403
    assert Invitation.objects.count() == 1


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("delete", ""), ("post", "resend/")],
    ids=["retrieve", "revoke", "resend"],
)
def test_another_centers_invitation_is_404(
    caller: Caller, globex: ContactCenter, method: str, suffix: str
) -> None:
    theirs, _ = invite_member(
        center=globex, email=NEW_EMAIL, role=Role.AGENT, by="tests", portal_url="http://t"
    )

    response = getattr(caller, method)(
        f"{INVITATIONS}{theirs.pk}/{suffix}", **({"data": {}} if method == "post" else {})
    )

    assert response.status_code == 404
    assert error_code(response) == "not_found"
    before = theirs.hashed_token
    theirs.refresh_from_db()
    assert (theirs.hashed_token, theirs.revoked_at) == (before, None)
    assert NEW_EMAIL not in str(caller.get(INVITATIONS).json())


def test_the_list_shows_open_invitations_of_the_callers_center(
    caller: Caller, globex: ContactCenter, on_commit
) -> None:
    invite_member(
        center=globex, email="theirs@example.org", role=Role.AGENT, by="tests", portal_url="http://t"
    )
    response, _ = invite(on_commit, caller.client, NEW_EMAIL, role="supervisor", **caller.headers)

    listed = caller.get(INVITATIONS)

    assert listed.status_code == 200
    assert listed.json()["results"] == [response.json()]
    assert caller.get(f"{INVITATIONS}{response.json()['id']}/").json() == response.json()


# --- two sessions ------------------------------------------------------------------------


def test_the_invited_person_s_sessions_stay_in_their_center_until_they_switch(
    admin: Persona, globex: ContactCenter, outsider: Persona, on_commit
) -> None:
    """Acme's administrator works in acme on a laptop and a phone; globex invites them."""
    make_queue(admin.center, name="Acme sales", extension="4001")
    make_queue(globex, name="Globex billing", extension="4002")
    laptop, phone = sign_in(admin.user.email), sign_in(admin.user.email)

    _, link = invite(on_commit, outsider.client, admin.user.email, role="supervisor")
    for session in (laptop, phone):
        assertContains(session.get("/routing/queues/"), "Acme sales")

    accepted = laptop.post(link, follow=True)
    assertContains(accepted, "Choose a contact center")  # the chooser, not a move

    for session in (laptop, phone):
        queues = session.get("/routing/queues/")
        assertContains(queues, "Acme sales")
        assertNotContains(queues, "Globex billing")
        assert session.session[SESSION_CENTER_KEY] == str(admin.center.pk)
        assert [q["name"] for q in session.get("/api/v1/queues/").json()["results"]] == ["Acme sales"]

    laptop.post("/switch/", {"center": "globex"})

    assertContains(laptop.get("/routing/queues/"), "Globex billing")
    assertContains(phone.get("/routing/queues/"), "Acme sales")
    assert phone.session[SESSION_CENTER_KEY] == str(admin.center.pk)


# --- the schema --------------------------------------------------------------------------


def test_the_schema_describes_invitations(anonymous: Client) -> None:
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]

    assert set(paths["/api/v1/invitations/"]) == {"get", "post"}
    assert set(paths["/api/v1/invitations/{id}/"]) == {"get", "delete"}
    assert set(paths["/api/v1/invitations/{id}/resend/"]) == {"post"}
    for path in ("/api/v1/members/", "/api/v1/invitations/"):
        post = paths[path]["post"]
        assert post["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/InviteRequest"
        }
        for code in ("200", "201"):
            assert post["responses"][code]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Invitation"
            }
    assert "requestBody" not in paths["/api/v1/invitations/{id}/resend/"]["post"]
    assert "409" in paths["/api/v1/invitations/{id}/resend/"]["post"]["responses"]
    assert {"204", "409"} <= set(paths["/api/v1/invitations/{id}/"]["delete"]["responses"])
    invitation = schema["components"]["schemas"]["Invitation"]
    assert set(invitation["properties"]) == {
        "id",
        "email",
        "role",
        "status",
        "invited_by",
        "created",
        "sent_at",
        "expires_at",
    }
    status_ref = invitation["properties"]["status"]["allOf"][0]["$ref"]
    status = schema["components"]["schemas"][status_ref.rsplit("/", 1)[1]]
    assert status["enum"] == ["pending", "expired", "accepted", "revoked"]
    assert invitation["properties"]["invited_by"]["nullable"] is True


def test_api_key_invitations_name_no_inviter(acme: ContactCenter, on_commit) -> None:
    key, raw = make_api_key(acme, ApiKeyScope.ADMIN)

    response, _ = invite(on_commit, Client(), NEW_EMAIL, **bearer(raw))

    assert response.json()["invited_by"] is None
    assert "An administrator of Acme Support invited you" in mail.outbox[-1].body
    assert AuditEvent.objects.get(action="invitation.sent").api_key == key


# --- races (PostgreSQL: row locks and the one-open constraint) ---------------------------


def _race(actions: list[Callable[[], object]]) -> list[object]:
    """Run the actions at the same moment in threads, each on its own connection."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(index: int, action: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = action()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_invites_of_one_address_leave_one_invitation() -> None:
    center = make_center("race")
    invite = lambda: invite_member(  # noqa: E731
        center=center, email=NEW_EMAIL, role=Role.AGENT, by="t", portal_url="http://t"
    )

    results = _race([invite, invite, invite])

    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({invitation.pk for invitation, _ in results}) == 1
    assert sorted(is_new for _, is_new in results) == [False, False, True]
    assert Invitation.objects.count() == 1
    actions = sorted(
        AuditEvent.objects.filter(action__startswith="invitation.").values_list("action", flat=True)
    )
    assert actions == ["invitation.resent", "invitation.resent", "invitation.sent"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_acceptances_of_one_link_make_one_membership() -> None:
    center = make_center("race")
    person = make_member(make_center("home"), email=NEW_EMAIL).user
    invitation, _ = invite_member(
        center=center, email=NEW_EMAIL, role=Role.AGENT, by="t", portal_url="http://t"
    )

    results = _race([lambda: accept_invitation(invitation=invitation, user=person)] * 3)

    assert sum(isinstance(r, Membership) for r in results) == 1
    assert {r.code for r in results if isinstance(r, DomainError)} == {"invitation_accepted"}
    assert Membership.objects.filter(user=person, contact_center=center).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sign_ups_from_one_link_make_one_account() -> None:
    center = make_center("race")
    invitation, _ = invite_member(
        center=center, email=NEW_EMAIL, role=Role.AGENT, by="t", portal_url="http://t"
    )
    sign_up = lambda: create_account_from_invitation(  # noqa: E731
        invitation=invitation, full_name="Nia", password=NEW_PASSWORD
    )

    results = _race([sign_up, sign_up])

    assert sum(isinstance(r, Membership) for r in results) == 1
    assert User.objects.filter(email=NEW_EMAIL).count() == 1
    assert Membership.objects.filter(contact_center=center, user__email=NEW_EMAIL).count() == 1
