"""Members through the REST API, as an administrator's session and as an admin-scope API key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.http import HttpResponse as Response
from django.test import Client

from tests.conftest import Caller, Persona, bearer, error_code
from tests.factories import PASSWORD, make_member, make_queue
from voiso_byob.models import (
    AuditEvent,
    ContactCenter,
    Extension,
    Invitation,
    Membership,
    Role,
    User,
)

MEMBERS = "/api/v1/members/"
NEW_PASSWORD = "a-brand-new-passphrase-77"


def detail(membership: Membership) -> str:
    return f"{MEMBERS}{membership.pk}/"


def assert_no_password(response: Response) -> None:
    """A successful response names no password field and carries no password value."""
    assert "password" not in response.content.decode().lower()
    assert_no_password_value(response)


def assert_no_password_value(response: Response) -> None:
    assert NEW_PASSWORD not in response.content.decode()


def _counts() -> tuple[int, int, int, int, int]:
    return (
        User.objects.count(),
        Membership.objects.count(),
        Extension.objects.count(),
        AuditEvent.objects.count(),
        Invitation.objects.count(),
    )


@contextmanager
def nothing_changes() -> Iterator[None]:
    """A refused request writes nothing: no account, membership, extension, audit row or invitation."""
    before = _counts()
    yield
    assert _counts() == before


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("created", "id")


def can_log_in(email: str, password: str) -> bool:
    return Client().login(username=email, password=password)


# --- create: an invitation (tests/voiso_byob/test_invitations.py has its rules) -----------


def test_create_invites_rather_than_adds(caller: Caller, outsider: Persona) -> None:
    response = caller.post(MEMBERS, {"email": "ADMIN@globex.example", "role": "agent"})

    assert response.status_code == 201, response.content
    assert response.json()["email"] == "admin@globex.example"
    assert response.json()["status"] == "pending"
    assert response["Location"] == f"/api/v1/invitations/{response.json()['id']}/"
    assert Invitation.objects.get(pk=response.json()["id"]).contact_center.slug == "acme"
    assert not Membership.objects.filter(user=outsider.user, contact_center__slug="acme").exists()


def test_already_a_member_is_refused(caller: Caller, agent: Persona) -> None:
    with nothing_changes():
        response = caller.post(MEMBERS, {"email": "Agent@acme.example", "role": "supervisor"})

    assert response.status_code == 400
    assert error_code(response) == "already_member"
    agent.membership.refresh_from_db()
    assert agent.membership.role == Role.AGENT


@pytest.mark.parametrize(
    ("payload", "field_name"),
    [
        ({"email": "not-an-email", "role": "agent"}, "email"),
        ({"email": "", "role": "agent"}, "email"),
        ({"role": "agent"}, "email"),
        ({"email": "x@acme.example", "role": "owner"}, "role"),
        ({"email": "x@acme.example"}, "role"),
        ({"email": "x@acme.example", "role": "agent", "full_name": "x" * 151}, "full_name"),
        # Valid by RFC length limits (320), too long for the column (254).
        (
            {
                "email": "a" * 64 + "@" + "b" * 60 + ".example." + "c" * 60 + ".example." + "d" * 60 + ".com",
                "role": "agent",
            },
            "email",
        ),
    ],
)
def test_invalid_fields_are_400_with_the_field(
    caller: Caller, payload: dict[str, str], field_name: str
) -> None:
    with nothing_changes():
        response = caller.post(MEMBERS, payload)

    assert response.status_code == 400
    assert field_name in response.json()["error"]["fields"]


@pytest.mark.parametrize("owner", ["member", "queue"])
def test_extension_in_use_is_taken(caller: Caller, agent: Persona, owner: str) -> None:
    digits = "1001" if owner == "member" else make_queue(agent.center, extension="4323").extension.digits
    newcomer = make_member(agent.center, email="new@acme.example")

    with nothing_changes():
        response = caller.patch(detail(newcomer), {"extension": digits})

    assert response.status_code == 400
    assert error_code(response) == "extension_taken"
    newcomer.refresh_from_db()
    assert newcomer.extension is None


@pytest.mark.parametrize("extension", ["100", "10011", "١٠٠٢", "１００２"])
def test_invalid_extension(caller: Caller, acme: ContactCenter, extension: str) -> None:
    newcomer = make_member(acme, email="new@acme.example")

    with nothing_changes():
        response = caller.patch(detail(newcomer), {"extension": extension})

    assert response.status_code == 400
    assert error_code(response) == "invalid_extension"


def test_malformed_body_is_400_in_the_error_shape(caller: Caller) -> None:
    with nothing_changes():
        response = caller.post(MEMBERS, '{"email": ')

    assert response.status_code == 400
    assert error_code(response) == "parse_error"


# --- list and retrieve -------------------------------------------------------------------


def test_list_is_scoped_to_the_callers_center(
    caller: Caller, admin: Persona, agent: Persona, outsider: Persona
) -> None:
    response = caller.get(MEMBERS)

    assert response.status_code == 200
    assert [m["email"] for m in response.json()["results"]] == ["admin@acme.example", "agent@acme.example"]
    assert [m["email"] for m in outsider.client.get(MEMBERS).json()["results"]] == ["admin@globex.example"]
    assert_no_password(response)


def test_retrieve(caller: Caller, agent: Persona) -> None:
    response = caller.get(detail(agent.membership))

    assert response.status_code == 200
    assert response.json() == {
        "id": str(agent.membership.pk),
        "email": "agent@acme.example",
        "full_name": "",
        "role": "agent",
        "extension": "1001",
        "created": response.json()["created"],
    }


# --- update ------------------------------------------------------------------------------


def test_update_role_and_extension(caller: Caller, agent: Persona) -> None:
    response = caller.patch(detail(agent.membership), {"role": "supervisor", "extension": "1009"})

    assert response.status_code == 200, response.content
    assert_no_password(response)
    agent.membership.refresh_from_db()
    assert (agent.membership.role, agent.membership.extension.digits) == ("supervisor", "1009")
    assert not Extension.objects.filter(contact_center=agent.center, digits="1001").exists()
    event = last_event("member.updated")
    assert event.changes == {
        "role": {"from": "agent", "to": "supervisor"},
        "extension": {"from": "1001", "to": "1009"},
    }
    caller.assert_acted(event)


def test_update_full_name_only(caller: Caller, agent: Persona) -> None:
    response = caller.patch(detail(agent.membership), {"full_name": "Alice Agent"})

    assert response.status_code == 200, response.content
    agent.user.refresh_from_db()
    agent.membership.refresh_from_db()
    assert agent.user.full_name == "Alice Agent"
    assert (agent.membership.role, agent.membership.extension.digits) == ("agent", "1001")
    assert last_event("member.updated").changes == {"full_name": {"from": "", "to": "Alice Agent"}}


def test_put_with_the_same_email_updates(caller: Caller, agent: Persona) -> None:
    response = caller.put(
        detail(agent.membership), {"email": "AGENT@acme.example", "role": "supervisor", "extension": "1001"}
    )

    assert response.status_code == 200, response.content
    agent.membership.refresh_from_db()
    assert agent.membership.role == Role.SUPERVISOR


@pytest.mark.parametrize("extension", [None, ""])
def test_remove_the_extension(caller: Caller, agent: Persona, extension: str | None) -> None:
    response = caller.patch(detail(agent.membership), {"extension": extension})

    assert response.status_code == 200, response.content
    assert response.json()["extension"] is None
    agent.membership.refresh_from_db()
    assert agent.membership.extension is None
    assert not Extension.objects.filter(contact_center=agent.center, digits="1001").exists()


def test_email_cannot_be_changed(caller: Caller, agent: Persona) -> None:
    with nothing_changes():
        response = caller.patch(detail(agent.membership), {"email": "someone.else@acme.example"})

    assert response.status_code == 400
    assert error_code(response) == "immutable"
    agent.user.refresh_from_db()
    assert agent.user.email == "agent@acme.example"


def test_password_cannot_be_changed(caller: Caller, agent: Persona) -> None:
    with nothing_changes():
        response = caller.patch(detail(agent.membership), {"password": NEW_PASSWORD})

    assert response.status_code == 400
    assert error_code(response) == "password_not_allowed"
    assert_no_password_value(response)
    agent.user.refresh_from_db()
    assert agent.user.check_password(PASSWORD)


def test_extension_of_someone_else_is_taken(caller: Caller, agent: Persona, supervisor: Persona) -> None:
    with nothing_changes():
        response = caller.patch(detail(supervisor.membership), {"extension": "1001", "role": "agent"})

    assert response.status_code == 400
    assert error_code(response) == "extension_taken"
    supervisor.membership.refresh_from_db()
    assert (supervisor.membership.role, supervisor.membership.extension) == ("supervisor", None)


@pytest.mark.parametrize("role", ["supervisor", "agent"])
def test_the_last_administrator_cannot_be_demoted(caller: Caller, admin: Persona, role: str) -> None:
    with nothing_changes():
        response = caller.patch(detail(admin.membership), {"role": role})

    assert response.status_code == 400
    assert error_code(response) == "last_administrator"
    admin.membership.refresh_from_db()
    assert admin.membership.role == Role.ADMINISTRATOR


def test_an_administrator_can_be_demoted_when_another_remains(caller: Caller, admin: Persona) -> None:
    other = make_member(admin.center, Role.ADMINISTRATOR)

    response = caller.patch(detail(other), {"role": "agent"})

    assert response.status_code == 200
    other.refresh_from_db()
    assert other.role == Role.AGENT


# --- delete ------------------------------------------------------------------------------


def test_delete_frees_the_extension(caller: Caller, agent: Persona) -> None:
    response = caller.delete(detail(agent.membership))

    assert response.status_code == 204
    assert not Membership.objects.filter(pk=agent.membership.pk).exists()
    assert User.objects.filter(pk=agent.user.pk).exists()  # the account outlives the membership
    assert not Extension.objects.filter(contact_center=agent.center, digits="1001").exists()
    event = last_event("member.removed")
    assert event.target_id == str(agent.membership.pk)
    assert event.changes == {"email": "agent@acme.example", "role": "agent", "extension": "1001"}
    caller.assert_acted(event)

    newcomer = make_member(agent.center, email="new@acme.example")
    reused = caller.patch(detail(newcomer), {"extension": "1001"})

    assert reused.status_code == 200, reused.content
    assert Membership.objects.get(user__email="new@acme.example").extension.digits == "1001"


def test_a_removed_member_can_be_invited_back(caller: Caller, agent: Persona) -> None:
    assert caller.delete(detail(agent.membership)).status_code == 204

    response = caller.post(MEMBERS, {"email": "agent@acme.example", "role": "agent"})

    assert response.status_code == 201
    assert not Membership.objects.filter(user=agent.user, contact_center=agent.center).exists()
    assert can_log_in("agent@acme.example", PASSWORD)


def test_the_last_administrator_cannot_be_removed(caller: Caller, admin: Persona) -> None:
    with nothing_changes():
        response = caller.delete(detail(admin.membership))

    assert response.status_code == 400
    assert error_code(response) == "last_administrator"
    assert Membership.objects.filter(pk=admin.membership.pk).exists()


def test_an_administrator_can_be_removed_when_another_remains(caller: Caller, admin: Persona) -> None:
    other = make_member(admin.center, Role.ADMINISTRATOR)

    assert caller.delete(detail(other)).status_code == 204

    assert not Membership.objects.filter(pk=other.pk).exists()


# --- another center's member -------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("get", None),
        ("put", {"email": "admin@globex.example", "role": "agent"}),
        ("patch", {"role": "agent", "extension": "1234"}),
        ("delete", None),
    ],
)
def test_another_centers_member_is_404(
    caller: Caller, outsider: Persona, method: str, payload: dict[str, str] | None
) -> None:
    args = (detail(outsider.membership),) if payload is None else (detail(outsider.membership), payload)

    with nothing_changes():
        response = getattr(caller, method)(*args)

    assert response.status_code == 404
    assert error_code(response) == "not_found"
    outsider.membership.refresh_from_db()
    assert (outsider.membership.role, outsider.membership.extension) == ("administrator", None)


def test_a_shared_account_is_changed_only_in_the_callers_center(
    caller: Caller, acme: ContactCenter, outsider: Persona
) -> None:
    added = {"id": make_member(acme, email="admin@globex.example", password=None).pk}

    response = caller.patch(f"{MEMBERS}{added['id']}/", {"role": "supervisor"})

    assert response.status_code == 200
    outsider.membership.refresh_from_db()
    assert outsider.membership.role == Role.ADMINISTRATOR
    assert Membership.objects.get(pk=added["id"]).role == Role.SUPERVISOR


# --- roles -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "read_status", "write_status"),
    [("supervisor", 200, 403), ("agent", 403, 403)],
)
def test_roles_without_write_access(
    request: pytest.FixtureRequest, admin: Persona, persona: str, read_status: int, write_status: int
) -> None:
    who: Persona = request.getfixturevalue(persona)
    target = admin.membership

    with nothing_changes():
        reads = [who.client.get(MEMBERS), who.client.get(detail(target))]
        writes = [
            who.client.post(
                MEMBERS, {"email": "new@acme.example", "role": "agent"}, content_type="application/json"
            ),
            who.client.patch(detail(target), {"role": "agent"}, content_type="application/json"),
            who.client.delete(detail(target)),
        ]

    assert [r.status_code for r in reads] == [read_status] * 2
    assert [r.status_code for r in writes] == [write_status] * 3
    assert {error_code(r) for r in writes} == {"permission_denied"}


def test_read_key_lists_but_cannot_create(api_keys: dict[str, str], admin: Persona) -> None:
    client = Client()

    listed = client.get(MEMBERS, **bearer(api_keys["read"]))
    with nothing_changes():
        created = client.post(
            MEMBERS,
            {"email": "new@acme.example", "role": "agent"},
            content_type="application/json",
            **bearer(api_keys["read"]),
        )

    assert listed.status_code == 200
    assert created.status_code == 403
    assert error_code(created) == "permission_denied"


def test_anonymous_is_401(anonymous: Client, admin: Persona) -> None:
    with nothing_changes():
        responses = [
            anonymous.get(MEMBERS),
            anonymous.post(
                MEMBERS, {"email": "new@acme.example", "role": "agent"}, content_type="application/json"
            ),
            anonymous.delete(detail(admin.membership)),
        ]

    assert [r.status_code for r in responses] == [401] * 3
    assert {error_code(r) for r in responses} == {"not_authenticated"}
