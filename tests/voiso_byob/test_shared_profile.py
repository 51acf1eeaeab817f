"""A name shared by several contact centers is the person's own (issue 15, item 2)."""

from __future__ import annotations

import pytest

from tests.conftest import Caller, Persona, error_code
from voiso_byob.models import AuditEvent, ContactCenter, Membership, Role, User
from voiso_byob.services import add_member


@pytest.fixture
def shared(agent: Persona, globex: ContactCenter) -> Persona:
    """acme's agent, also an agent of globex."""
    add_member(center=globex, email=agent.user.email, role=Role.AGENT, by="globex admin")
    User.objects.filter(pk=agent.user.pk).update(full_name="Ana Original")
    return agent


def test_an_administrator_cannot_rename_a_shared_account(caller: Caller, shared: Persona) -> None:
    response = caller.patch(f"/api/v1/members/{shared.membership.pk}/", {"full_name": "Renamed By Acme"})

    assert response.status_code == 403 and error_code(response) == "shared_profile"
    assert User.objects.get(pk=shared.user.pk).full_name == "Ana Original"
    assert not AuditEvent.objects.filter(action="member.updated").exists()


def test_the_refusal_changes_nothing_else_in_the_same_request(caller: Caller, shared: Persona) -> None:
    response = caller.patch(
        f"/api/v1/members/{shared.membership.pk}/", {"full_name": "Renamed", "role": "supervisor"}
    )
    assert response.status_code == 403
    assert Membership.objects.get(pk=shared.membership.pk).role == Role.AGENT


def test_per_center_fields_stay_the_administrators(caller: Caller, shared: Persona) -> None:
    response = caller.patch(f"/api/v1/members/{shared.membership.pk}/", {"role": "supervisor"})
    assert response.status_code == 200
    assert Membership.objects.get(pk=shared.membership.pk).role == Role.SUPERVISOR
    # Sending the unchanged name along is fine.
    same = caller.patch(f"/api/v1/members/{shared.membership.pk}/", {"full_name": "Ana Original"})
    assert same.status_code == 200


def test_the_portal_form_refuses_it_too(admin: Persona, shared: Persona) -> None:
    response = admin.client.post(
        f"/members/{shared.membership.pk}/", {"full_name": "Renamed", "role": "agent", "extension": "1001"}
    )
    assert response.status_code == 200 and b"only they can change" in response.content
    assert User.objects.get(pk=shared.user.pk).full_name == "Ana Original"


def test_an_account_of_one_center_is_still_named_by_its_administrator(caller: Caller, agent: Persona) -> None:
    response = caller.patch(f"/api/v1/members/{agent.membership.pk}/", {"full_name": "Ana Agent"})
    assert response.status_code == 200
    assert User.objects.get(pk=agent.user.pk).full_name == "Ana Agent"


def test_the_person_renames_themselves_on_their_profile(shared: Persona, globex: ContactCenter) -> None:
    response = shared.client.post("/profile/", {"full_name": "Ana Chosen"})

    assert response.status_code == 302
    assert User.objects.get(pk=shared.user.pk).full_name == "Ana Chosen"
    event = AuditEvent.objects.get(action="user.profile_updated")
    assert event.actor == shared.user and event.contact_center == shared.center
    assert event.changes == {"full_name": {"from": "Ana Original", "to": "Ana Chosen"}}


def test_a_too_long_name_is_refused_on_the_profile(shared: Persona) -> None:
    response = shared.client.post("/profile/", {"full_name": "x" * 151})
    assert response.status_code == 400
    assert User.objects.get(pk=shared.user.pk).full_name == "Ana Original"


def test_the_profile_is_for_signed_in_members_only(anonymous, outsider: Persona, shared: Persona) -> None:
    assert anonymous.post("/profile/", {"full_name": "Hacker"}).status_code == 302
    # Another center's administrator editing their own profile touches only their own account.
    assert outsider.client.post("/profile/", {"full_name": "Globex Boss"}).status_code == 302
    assert User.objects.get(pk=shared.user.pk).full_name == "Ana Original"
    assert User.objects.get(pk=outsider.user.pk).full_name == "Globex Boss"
