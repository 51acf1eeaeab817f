"""Who may call the REST API: API keys (Bearer), the portal session, and the public schema and docs."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from routing.models import Queue
from tests.conftest import Persona, bearer
from tests.factories import PASSWORD, make_api_key, make_queue
from voiso_byob.access import SESSION_CENTER_KEY
from voiso_byob.authentication import TelephonyAccess, api_access
from voiso_byob.models import ApiKey, ApiKeyScope, AuditEvent, ContactCenter, Role, User
from voiso_byob.services import add_member, revoke_api_key

QUEUES = "/api/v1/queues/"
MEMBERS = "/api/v1/members/"


def error_code(response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return body["error"]["code"]


def key_for(raw: str) -> ApiKey:
    return ApiKey.objects.get(prefix=ApiKey.prefix_of(raw))


@pytest.fixture
def queue(acme: ContactCenter) -> Queue:
    return make_queue(acme, name="Sales", extension="4323")


# --- API keys: authentication ------------------------------------------------------------


def test_missing_credentials_are_401(anonymous: Client, acme: ContactCenter) -> None:
    response = anonymous.get(QUEUES)

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer two parts", "bearer vbk_a b", "Bearer clé"],
    ids=["no-key", "three-parts", "lower-case-three-parts", "non-ascii"],
)
def test_malformed_authorization_header_is_401(anonymous: Client, acme: ContactCenter, header: str) -> None:
    response = anonymous.get(QUEUES, HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert error_code(response) == "invalid_api_key"


def test_other_authorization_schemes_are_not_api_keys(anonymous: Client, api_keys: dict[str, str]) -> None:
    response = anonymous.get(QUEUES, HTTP_AUTHORIZATION=f"Token {api_keys['admin']}")

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


@pytest.mark.parametrize("tamper", ["unknown-prefix", "wrong-secret", "truncated"])
def test_wrong_key_is_401(anonymous: Client, api_keys: dict[str, str], tamper: str) -> None:
    raw = api_keys["admin"]
    wrong = {
        "unknown-prefix": "vbk_00000000_" + raw.split("_", 2)[2],
        "wrong-secret": raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB"),
        "truncated": raw[:-1],
    }[tamper]

    response = anonymous.get(QUEUES, **bearer(wrong))

    assert response.status_code == 401
    assert error_code(response) == "invalid_api_key"


def test_revoked_key_is_401(anonymous: Client, acme: ContactCenter, admin: Persona) -> None:
    key, raw = make_api_key(acme, ApiKeyScope.ADMIN)
    assert anonymous.get(QUEUES, **bearer(raw)).status_code == 200

    revoke_api_key(key=key, by=admin.user)
    response = anonymous.get(QUEUES, **bearer(raw))

    assert response.status_code == 401
    assert error_code(response) == "revoked_api_key"


def test_key_is_stored_only_as_its_sha256(acme: ContactCenter) -> None:
    key, raw = make_api_key(acme, ApiKeyScope.ADMIN)
    key.refresh_from_db()

    assert key.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    stored = [str(getattr(key, field.attname)) for field in ApiKey._meta.concrete_fields]
    assert not any(raw in value for value in stored)
    # The secret part must not leak into the visible prefix either.
    assert raw.startswith(key.prefix) and len(raw) > len(key.prefix) + 32
    audit = AuditEvent.objects.get(action="api_key.created", target_id=str(key.pk))
    assert raw not in str(audit.changes) and raw not in audit.target_repr


def test_use_sets_last_used_at_at_most_once_a_minute(
    anonymous: Client, acme: ContactCenter, settings
) -> None:
    # The once-a-minute decision lives in the cache; Redis keeps its own clock, which
    # time_machine cannot move, so this test runs on the in-process cache.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    key, raw = make_api_key(acme, ApiKeyScope.READ)
    assert key.last_used_at is None

    with time_machine.travel(timezone.now(), tick=False) as traveller:
        first_use = timezone.now()
        assert anonymous.get(QUEUES, **bearer(raw)).status_code == 200
        key.refresh_from_db()
        assert key.last_used_at == first_use

        traveller.shift(timedelta(seconds=30))
        assert anonymous.get(QUEUES, **bearer(raw)).status_code == 200
        key.refresh_from_db()
        assert key.last_used_at == first_use

        traveller.shift(timedelta(seconds=31))
        assert anonymous.get(QUEUES, **bearer(raw)).status_code == 200
        key.refresh_from_db()
        assert key.last_used_at == first_use + timedelta(seconds=61)


def test_key_acts_in_its_own_center_only(
    anonymous: Client, queue: Queue, globex_admin_key: str, outsider: Persona
) -> None:
    make_queue(outsider.center, name="Globex line")

    response = anonymous.get(QUEUES, **bearer(globex_admin_key))

    assert response.status_code == 200
    assert [q["name"] for q in response.json()["results"]] == ["Globex line"]
    assert anonymous.get(f"{QUEUES}{queue.pk}/", **bearer(globex_admin_key)).status_code == 404


# --- API keys: scopes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "can_read", "can_write"),
    [("telephony", False, False), ("read", True, False), ("admin", True, True)],
)
@pytest.mark.parametrize("url", [QUEUES, MEMBERS])
def test_key_scope_decides_reads(
    anonymous: Client, api_keys: dict[str, str], scope: str, can_read: bool, can_write: bool, url: str
) -> None:
    response = anonymous.get(url, **bearer(api_keys[scope]))

    assert response.status_code == (200 if can_read else 403)
    if not can_read:
        assert error_code(response) == "permission_denied"


@pytest.mark.parametrize(
    ("scope", "expected"),
    [("telephony", 403), ("read", 403), ("admin", 201)],
)
def test_key_scope_decides_create(
    anonymous: Client, api_keys: dict[str, str], acme: ContactCenter, scope: str, expected: int
) -> None:
    response = anonymous.post(
        QUEUES,
        {"name": "Support", "extension": "4500"},
        content_type="application/json",
        **bearer(api_keys[scope]),
    )

    assert response.status_code == expected
    assert Queue.objects.filter(contact_center=acme, name="Support").exists() == (expected == 201)


@pytest.mark.parametrize(("scope", "expected"), [("telephony", 403), ("read", 403), ("admin", 200)])
def test_key_scope_decides_update(
    anonymous: Client, api_keys: dict[str, str], queue: Queue, scope: str, expected: int
) -> None:
    response = anonymous.patch(
        f"{QUEUES}{queue.pk}/",
        {"name": "Renamed"},
        content_type="application/json",
        **bearer(api_keys[scope]),
    )

    assert response.status_code == expected
    queue.refresh_from_db()
    assert queue.name == ("Renamed" if expected == 200 else "Sales")


@pytest.mark.parametrize(("scope", "expected"), [("telephony", 403), ("read", 403), ("admin", 204)])
def test_key_scope_decides_delete(
    anonymous: Client, api_keys: dict[str, str], queue: Queue, scope: str, expected: int
) -> None:
    response = anonymous.delete(f"{QUEUES}{queue.pk}/", **bearer(api_keys[scope]))

    assert response.status_code == expected
    assert Queue.objects.filter(pk=queue.pk).exists() == (expected != 204)


def test_refused_key_writes_leave_no_audit_row(
    anonymous: Client, api_keys: dict[str, str], queue: Queue
) -> None:
    events = AuditEvent.objects.count()

    for scope in ("telephony", "read"):
        anonymous.post(
            QUEUES,
            {"name": "X", "extension": "4501"},
            content_type="application/json",
            **bearer(api_keys[scope]),
        )
        anonymous.delete(f"{QUEUES}{queue.pk}/", **bearer(api_keys[scope]))

    assert AuditEvent.objects.count() == events


# --- the portal session ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "read_status", "write_status"),
    [("admin", 200, 201), ("supervisor", 200, 403), ("agent", 403, 403), ("outsider", 200, 201)],
)
def test_session_access_follows_the_role(
    request: pytest.FixtureRequest, acme: ContactCenter, persona: str, read_status: int, write_status: int
) -> None:
    who: Persona = request.getfixturevalue(persona)

    read = who.client.get(QUEUES)
    write = who.client.post(QUEUES, {"name": "Support", "extension": "4500"}, content_type="application/json")

    assert read.status_code == read_status
    assert write.status_code == write_status
    if write_status == 403:
        assert error_code(write) == "permission_denied"
    # The session's contact center is the tenant: the queue lands in the persona's own center.
    assert list(Queue.objects.filter(name="Support").values_list("contact_center", flat=True)) == (
        [who.center.pk] if write_status == 201 else []
    )


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_agent_is_refused_everything(agent: Persona, queue: Queue, method: str) -> None:
    url = QUEUES if method in ("get", "post") else f"{QUEUES}{queue.pk}/"

    response = getattr(agent.client, method)(url, {"name": "X"}, content_type="application/json")

    assert response.status_code == 403
    assert error_code(response) == "permission_denied"
    queue.refresh_from_db()
    assert queue.name == "Sales"


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("url", [QUEUES, MEMBERS])
def test_anonymous_is_401(anonymous: Client, acme: ContactCenter, method: str, url: str) -> None:
    response = getattr(anonymous, method)(url, {}, content_type="application/json")

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


def test_signed_in_user_without_membership_is_403(db) -> None:
    User.objects.create_user("loner@example.com", PASSWORD)
    client = Client()
    assert client.login(username="loner@example.com", password=PASSWORD)

    response = client.get(QUEUES)

    assert response.status_code == 403
    assert error_code(response) == "permission_denied"


@pytest.fixture
def csrf_admin(admin: Persona) -> Client:
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=admin.user.email, password=PASSWORD)
    return client


def test_session_writes_need_the_csrf_token(csrf_admin: Client, acme: ContactCenter) -> None:
    refused = csrf_admin.post(
        QUEUES, {"name": "Support", "extension": "4500"}, content_type="application/json"
    )

    assert refused.status_code == 403
    assert error_code(refused) == "permission_denied"
    assert "CSRF" in refused.json()["error"]["message"]
    assert not Queue.objects.filter(contact_center=acme).exists()

    csrf_admin.get("/")  # any portal page sets the CSRF cookie
    token = csrf_admin.cookies["csrftoken"].value
    accepted = csrf_admin.post(
        QUEUES,
        {"name": "Support", "extension": "4500"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert accepted.status_code == 201
    assert Queue.objects.filter(contact_center=acme, name="Support").exists()


def test_session_reads_do_not_need_the_csrf_token(csrf_admin: Client) -> None:
    assert csrf_admin.get(QUEUES).status_code == 200


def test_api_keys_do_not_need_the_csrf_token(api_keys: dict[str, str], acme: ContactCenter) -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        QUEUES,
        {"name": "Support", "extension": "4500"},
        content_type="application/json",
        **bearer(api_keys["admin"]),
    )

    assert response.status_code == 201


# --- schema and docs ---------------------------------------------------------------------


def test_openapi_schema_is_public_and_describes_the_endpoints(anonymous: Client) -> None:
    response = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert {"/api/v1/queues/", "/api/v1/queues/{id}/", "/api/v1/members/", "/api/v1/members/{id}/"} <= set(
        schema["paths"]
    )
    assert set(schema["paths"]["/api/v1/queues/{id}/"]) == {"get", "put", "patch", "delete"}
    components = schema["components"]["schemas"]
    # People choose their own passwords (when they accept an invitation): the API offers none.
    assert "password" not in components["MemberRequest"]["properties"]
    assert "password" not in components["Member"]["properties"]
    assert set(components["InviteRequest"]["properties"]) == {"email", "role"}
    assert "ApiKey" in schema["components"]["securitySchemes"]


def test_api_docs_render_from_vendored_assets(anonymous: Client) -> None:
    response = anonymous.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    # The start-up script, which names the schema, is a file of its own (the page has no inline script).
    assert '<script src="/api/docs/?script="></script>' in html
    assert "/api/schema/" in anonymous.get("/api/docs/?script=").content.decode()
    assert "cdn.jsdelivr" not in html and "unpkg" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js") is not None


def test_session_follows_the_current_contact_center(admin: Persona, outsider: Persona) -> None:
    add_member(center=outsider.center, email=admin.user.email, role=Role.AGENT, by="tests")
    make_queue(admin.center, name="Acme line")
    assert admin.client.get(QUEUES).status_code == 200

    session = admin.client.session
    session[SESSION_CENTER_KEY] = str(outsider.center.pk)
    session.save()
    response = admin.client.get(QUEUES)

    # An agent in globex: the administrator role in acme does not carry over.
    assert response.status_code == 403
    assert "Acme line" not in response.content.decode()


# --- the error shape ---------------------------------------------------------------------


def test_method_not_allowed_has_the_error_shape(admin: Persona, acme: ContactCenter) -> None:
    response = admin.client.post(f"{QUEUES}{admin.membership.pk}/", {}, content_type="application/json")

    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"


def test_unsupported_media_type_has_the_error_shape(admin: Persona) -> None:
    response = admin.client.post(QUEUES, "name=Support", content_type="text/plain")

    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"
    assert not Queue.objects.exists()


# --- the telephony permission ------------------------------------------------------------


class TelephonyProbe(APIView):
    permission_classes = [TelephonyAccess]

    def get(self, request: Request) -> Response:
        return Response({"center": str(api_access(request).center.pk)})


@pytest.mark.parametrize(("scope", "expected"), [("telephony", 200), ("read", 403), ("admin", 403)])
def test_telephony_endpoints_take_telephony_keys_only(
    api_keys: dict[str, str], acme: ContactCenter, scope: str, expected: int
) -> None:
    request = APIRequestFactory().get("/api/v1/telephony/probe", **bearer(api_keys[scope]))

    response = TelephonyProbe.as_view()(request)

    assert response.status_code == expected
    if expected == 200:
        assert response.data == {"center": str(acme.pk)}
    else:
        assert response.data["error"]["code"] == "permission_denied"


def test_telephony_endpoints_refuse_anonymous_callers(db) -> None:
    response = TelephonyProbe.as_view()(APIRequestFactory().get("/api/v1/telephony/probe"))

    assert response.status_code == 401
    assert response.data["error"]["code"] == "not_authenticated"
