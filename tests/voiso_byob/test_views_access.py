"""Who may open which portal page: the role matrix, tenant isolation, sign-in and sign-out."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains

from routing.models import Queue
from tests.conftest import Persona
from tests.factories import PASSWORD, make_api_key, make_member, make_queue
from voiso_byob.models import ApiKey, ApiKeyScope, AuditEvent, ContactCenter, Invitation, Membership, Role
from voiso_byob.services import invite_member

PERSONAS = ("admin", "supervisor", "agent", "anonymous")


@dataclass
class Objects:
    """One of each of acme's objects with its own URL."""

    member: Membership
    queue: Queue
    api_key: ApiKey
    invitation: Invitation


@pytest.fixture
def objects(acme: ContactCenter) -> Objects:
    return Objects(
        member=make_member(acme, Role.AGENT, email="target@acme.example", extension="1050"),
        queue=make_queue(acme, name="Billing", extension="4100"),
        api_key=make_api_key(acme, ApiKeyScope.READ)[0],
        invitation=invite_member(
            center=acme,
            email="invited@acme.example",
            role=Role.AGENT,
            by="tests",
            portal_url="http://testserver",
        )[0],
    )


def client_of(request: pytest.FixtureRequest, persona: str) -> Client:
    value = request.getfixturevalue(persona)
    return value if isinstance(value, Client) else value.client


def assert_sent_to_login(response, path: str) -> None:
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/accounts/login/"
    assert parse_qs(location.query) == {"next": [path]}


# --- the role matrix ---------------------------------------------------------------------

# (url name, how to build its args from Objects, method, status for admin, supervisor, agent)
# Anonymous visitors are always sent to the login page.
MATRIX = [
    ("dashboard", None, "get", 200, 200, 302),
    ("member_list", None, "get", 200, 200, 403),
    ("member_create", None, "get", 200, 403, 403),
    ("member_edit", lambda o: [o.member.pk], "get", 200, 403, 403),
    ("member_delete", lambda o: [o.member.pk], "get", 200, 403, 403),
    ("api_key_list", None, "get", 200, 200, 403),
    ("api_key_create", None, "get", 200, 403, 403),
    ("api_key_revoke", lambda o: [o.api_key.pk], "post", 302, 403, 403),
    ("invitation_resend", lambda o: [o.invitation.pk], "post", 302, 403, 403),
    ("invitation_revoke", lambda o: [o.invitation.pk], "post", 302, 403, 403),
    ("audit_list", None, "get", 200, 200, 403),
    ("profile", None, "get", 200, 200, 200),
    ("switch_center", None, "post", 302, 302, 302),
    ("virtual_agents:index", None, "get", 200, 200, 403),
    ("campaigns:campaign_list", None, "get", 200, 200, 403),
    ("reports:index", None, "get", 302, 302, 403),
    ("live", None, "get", 200, 200, 403),
    ("routing:queue_list", None, "get", 200, 200, 403),
    ("routing:queue_create", None, "get", 200, 403, 403),
    ("routing:queue_edit", lambda o: [o.queue.pk], "get", 200, 403, 403),
    ("routing:queue_delete", lambda o: [o.queue.pk], "get", 200, 403, 403),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("name", "args", "method", "for_admin", "for_supervisor", "for_agent"),
    MATRIX,
    ids=[row[0] for row in MATRIX],
)
def test_status_by_role(
    request: pytest.FixtureRequest,
    objects: Objects,
    persona: str,
    name: str,
    args,
    method: str,
    for_admin: int,
    for_supervisor: int,
    for_agent: int,
) -> None:
    url = reverse(name, args=args(objects) if args else None)
    client = client_of(request, persona)

    response = getattr(client, method)(url)

    if persona == "anonymous":
        assert_sent_to_login(response, url)
    else:
        expected = {"admin": for_admin, "supervisor": for_supervisor, "agent": for_agent}[persona]
        assert response.status_code == expected


def test_agent_opening_the_dashboard_lands_on_their_profile(agent: Persona) -> None:
    response = agent.client.get("/", follow=True)

    assert response.redirect_chain == [("/profile/", 302)]
    assert response.status_code == 200
    assert "sip:1001@acme.voiso.com" in response.content.decode()


def test_agent_pages_have_no_configuration_navigation(agent: Persona) -> None:
    response = agent.client.get("/profile/")

    assert response.status_code == 200
    assert reverse("member_list") not in response.content.decode()
    assert reverse("routing:queue_list") not in response.content.decode()


@pytest.mark.parametrize(
    ("persona", "url", "reason"),
    [
        ("agent", "/members/", "Your role has no access to this page."),
        ("supervisor", "/members/new/", "Only administrators can change configuration."),
    ],
)
def test_forbidden_page_says_why_inside_the_portal_layout(
    request: pytest.FixtureRequest, persona: str, url: str, reason: str
) -> None:
    response = client_of(request, persona).get(url)

    assertContains(response, reason, status_code=403)
    assertContains(response, 'href="/profile/"', status_code=403)


@pytest.mark.parametrize(
    ("headers", "back_to"),
    [
        ({}, "/members/?q=ann"),
        ({"HTTP_HX_CURRENT_URL": "http://testserver/members/?page=2"}, "/members/?page=2"),
    ],
    ids=["no-current-url", "current-url"],
)
def test_anonymous_htmx_request_is_sent_to_the_login_page_as_a_full_redirect(
    anonymous: Client, headers: dict[str, str], back_to: str
) -> None:
    response = anonymous.get("/members/?q=ann", HTTP_HX_REQUEST="true", **headers)

    assert response.status_code == 200
    location = urlsplit(response["HX-Redirect"])
    assert location.path == "/accounts/login/"
    assert parse_qs(location.query) == {"next": [back_to]}


def test_revoke_answers_only_post(admin: Persona, objects: Objects) -> None:
    response = admin.client.get(reverse("api_key_revoke", args=[objects.api_key.pk]))

    assert response.status_code == 405
    objects.api_key.refresh_from_db()
    assert objects.api_key.revoked_at is None


# --- refused writes change nothing -------------------------------------------------------

WRITES = [
    ("member_create", None, {"email": "new@acme.example", "role": Role.AGENT, "extension": "1077"}),
    ("member_edit", lambda o: [o.member.pk], {"role": Role.ADMINISTRATOR, "extension": "1077"}),
    ("member_delete", lambda o: [o.member.pk], {}),
    ("api_key_create", None, {"name": "sneaky", "scope": ApiKeyScope.ADMIN}),
    ("api_key_revoke", lambda o: [o.api_key.pk], {}),
    ("invitation_resend", lambda o: [o.invitation.pk], {}),
    ("invitation_revoke", lambda o: [o.invitation.pk], {}),
    (
        "routing:queue_create",
        None,
        {
            "name": "Sneaky",
            "extension": "4200",
            "strategy": "ring_all",
            "max_wait_seconds": 60,
            "failover_action": "hangup",
        },
    ),
    (
        "routing:queue_edit",
        lambda o: [o.queue.pk],
        {
            "name": "Renamed",
            "extension": "4100",
            "strategy": "ring_all",
            "max_wait_seconds": 60,
            "failover_action": "hangup",
        },
    ),
    ("routing:queue_delete", lambda o: [o.queue.pk], {}),
]


def snapshot(center: ContactCenter) -> dict[str, object]:
    """Everything a refused write could have touched."""
    return {
        "members": sorted(
            Membership.objects.for_center(center).values_list("pk", "role", "extension__digits")
        ),
        "queues": sorted(Queue.objects.for_center(center).values_list("pk", "name", "extension__digits")),
        "keys": sorted(ApiKey.objects.for_center(center).values_list("pk", "revoked_at")),
        "invitations": sorted(
            Invitation.objects.for_center(center).values_list("pk", "hashed_token", "revoked_at")
        ),
        "audit": AuditEvent.objects.for_center(center).count(),
    }


@pytest.mark.parametrize("persona", ["supervisor", "agent"])
@pytest.mark.parametrize(("name", "args", "data"), WRITES, ids=[row[0] for row in WRITES])
def test_write_posts_by_non_administrators_are_refused(
    request: pytest.FixtureRequest, objects: Objects, persona: str, name: str, args, data: dict
) -> None:
    client = client_of(request, persona)
    before = snapshot(objects.member.contact_center)

    response = client.post(reverse(name, args=args(objects) if args else None), data)

    assert response.status_code == 403
    assert snapshot(objects.member.contact_center) == before


def test_supervisor_pages_show_no_write_controls(supervisor: Persona, objects: Objects) -> None:
    for url in ("/", "/members/", "/api-keys/", "/routing/queues/", "/audit/"):
        html = supervisor.client.get(url).content.decode()
        for write_url in (
            reverse("member_create"),
            reverse("member_edit", args=[objects.member.pk]),
            reverse("member_delete", args=[objects.member.pk]),
            reverse("api_key_create"),
            reverse("api_key_revoke", args=[objects.api_key.pk]),
            reverse("invitation_resend", args=[objects.invitation.pk]),
            reverse("invitation_revoke", args=[objects.invitation.pk]),
            reverse("routing:queue_create"),
            reverse("routing:queue_edit", args=[objects.queue.pk]),
            reverse("routing:queue_delete", args=[objects.queue.pk]),
        ):
            assert write_url not in html, f"{url} links to {write_url}"


# --- another contact center's objects ----------------------------------------------------

CROSS_TENANT = [
    ("member_edit", "get", lambda o: [o.member.pk], {}),
    ("member_edit", "post", lambda o: [o.member.pk], {"role": Role.ADMINISTRATOR, "extension": "1077"}),
    ("member_delete", "get", lambda o: [o.member.pk], {}),
    ("member_delete", "post", lambda o: [o.member.pk], {}),
    ("routing:queue_edit", "get", lambda o: [o.queue.pk], {}),
    (
        "routing:queue_edit",
        "post",
        lambda o: [o.queue.pk],
        {
            "name": "Hijacked",
            "extension": "4100",
            "strategy": "ring_all",
            "max_wait_seconds": 60,
            "failover_action": "hangup",
        },
    ),
    ("routing:queue_delete", "get", lambda o: [o.queue.pk], {}),
    ("routing:queue_delete", "post", lambda o: [o.queue.pk], {}),
    ("api_key_revoke", "post", lambda o: [o.api_key.pk], {}),
    ("invitation_resend", "post", lambda o: [o.invitation.pk], {}),
    ("invitation_revoke", "post", lambda o: [o.invitation.pk], {}),
]


@pytest.mark.parametrize(
    ("name", "method", "args", "data"), CROSS_TENANT, ids=[f"{row[0]}-{row[1]}" for row in CROSS_TENANT]
)
def test_another_centers_object_is_not_found_and_unchanged(
    outsider: Persona, objects: Objects, name: str, method: str, args, data: dict
) -> None:
    acme = objects.member.contact_center
    before = snapshot(acme)
    outsider_audit = AuditEvent.objects.for_center(outsider.center).count()

    response = getattr(outsider.client, method)(reverse(name, args=args(objects)), data)

    assert response.status_code == 404
    assert snapshot(acme) == before
    assert AuditEvent.objects.for_center(outsider.center).count() == outsider_audit


def test_another_centers_lists_show_only_the_own_center(outsider: Persona, objects: Objects) -> None:
    for url in ("/members/", "/routing/queues/", "/api-keys/", "/audit/"):
        html = outsider.client.get(url).content.decode()
        assert "target@acme.example" not in html
        assert "invited@acme.example" not in html
        assert "Billing" not in html
        assert objects.api_key.prefix not in html


# --- signing in and out ------------------------------------------------------------------


def test_login_with_email_in_any_case(acme: ContactCenter, anonymous: Client) -> None:
    response = anonymous.post("/accounts/login/", {"username": "  ADMIN@Acme.Example", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert anonymous.get("/").status_code == 200


def test_login_page_sends_a_signed_in_user_on(admin: Persona) -> None:
    response = admin.client.get("/accounts/login/")

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_login_follows_next(acme: ContactCenter, anonymous: Client) -> None:
    response = anonymous.post(
        "/accounts/login/?next=/routing/queues/",
        {"username": "admin@acme.example", "password": PASSWORD, "next": "/routing/queues/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/routing/queues/"


def test_login_with_wrong_password_shows_an_error(acme: ContactCenter, anonymous: Client) -> None:
    response = anonymous.post("/accounts/login/", {"username": "admin@acme.example", "password": "wrong"})

    assert response.status_code == 200
    assert "Please enter a correct email and password." in response.content.decode()
    assert "_auth_user_id" not in anonymous.session
    assert_sent_to_login(anonymous.get("/"), "/")


def test_login_with_an_empty_field_says_which(acme: ContactCenter, anonymous: Client) -> None:
    response = anonymous.post("/accounts/login/", {"username": "admin@acme.example", "password": ""})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()


def test_logout_is_post_only(admin: Persona) -> None:
    assert admin.client.get("/accounts/logout/").status_code == 405
    assert admin.client.get("/").status_code == 200

    response = admin.client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert_sent_to_login(admin.client.get("/"), "/")
