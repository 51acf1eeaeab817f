"""Personas and service-availability markers shared by every test.

Personas: `admin`, `supervisor`, `agent` of acme; `outsider`, administrator of globex.
Tests marked postgres / redis / browser / sip are skipped when that part is missing,
unless REQUIRE_SERVICES=1 (CI), where a missing part fails the test instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client

from tests.factories import PASSWORD, make_api_key, make_center, make_member
from voiso_byob.models import ApiKey, ApiKeyScope, AuditEvent, ContactCenter, Membership, Role, User


def _redis_available() -> str | None:
    url = os.environ.get("REDIS_URL")
    if not url:
        return "REDIS_URL is not set"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:
        return f"Redis at {url} is not reachable: {exc}"
    return None


def _browser_available() -> str | None:
    if not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"):
        return "Chromium (/usr/bin/chromium) is not installed"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None


# The Kamailio modules the SIP edge's configuration loads beyond the base package's: Debian ships
# http_client in kamailio-utils-modules and jansson in kamailio-extra-modules.
SIP_EDGE_MODULES = ("http_client.so", "jansson.so", "dialog.so", "async.so")


def _sip_available() -> str | None:
    import glob

    kamailio = shutil.which("kamailio") or (
        "/usr/sbin/kamailio" if os.path.exists("/usr/sbin/kamailio") else None
    )
    if kamailio is None:
        return "Kamailio is not installed (kamailio, kamailio-utils-modules, kamailio-extra-modules)"
    missing = [m for m in SIP_EDGE_MODULES if not glob.glob(f"/usr/lib/*/kamailio/modules/{m}")]
    if missing:
        return (
            f"Kamailio modules missing: {', '.join(missing)} (kamailio-utils-modules, kamailio-extra-modules)"
        )
    if not shutil.which("sipp"):
        return "SIPp is not installed (apt-get install sip-tester)"
    return None


def _missing(marker: str) -> str | None:
    if marker == "postgres":
        return None if settings.IS_POSTGRES else "DATABASE_URL is not PostgreSQL"
    if marker == "redis":
        return _redis_available()
    if marker == "browser":
        return _browser_available()
    if marker == "sip":
        return _sip_available()
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("postgres", "redis", "browser", "sip"):
        if item.get_closest_marker(marker) is None:
            continue
        reason = _missing(marker)
        if reason is None:
            continue
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"{marker} test cannot run: {reason} (REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(f"{marker}: {reason}")


@pytest.fixture(autouse=True)
def clear_cache() -> Iterator[None]:
    # API keys, menu state and compiled flows live in the cache, telephony answers in each
    # process's memory (routing.hotpath); tests must not share them.
    from routing import hotpath
    from voiso_byob.cache import outage

    cache.clear()
    hotpath.forget_everything()
    outage.started = 0.0  # each test's Redis outage is logged as a new one
    yield
    hotpath.forget_everything()
    cache.clear()


@pytest.fixture(autouse=True)
def rollups_follow_factories(request, monkeypatch) -> None:
    """Factories write call records directly, not through ingestion, which keeps the reports'
    rollups: before each report reads them they are rebuilt from the records, so the report tests
    check the rollup path. Tests marked `ingested_rollups` read what ingestion kept (test_rollups)."""
    if request.node.get_closest_marker("ingested_rollups"):
        return
    from reporting.reports import from_rollups
    from reporting.rollups import rebuild_rollups

    for name in ("virtual_agent_report", "queue_report", "campaign_report"):
        report = getattr(from_rollups, name)

        def rebuilt_first(filters, *args, _report=report, **kwargs):
            rebuild_rollups(center_id=filters.center.pk)
            return _report(filters, *args, **kwargs)

        monkeypatch.setattr(from_rollups, name, rebuilt_first)


@pytest.fixture(autouse=True)
def fast_password_hasher(settings) -> None:
    # PBKDF2 at production strength makes every persona login cost ~0.3 s.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Persona:
    membership: Membership
    client: Client

    @property
    def user(self):
        return self.membership.user

    @property
    def center(self) -> ContactCenter:
        return self.membership.contact_center


def _login(membership: Membership) -> Persona:
    client = Client()
    assert client.login(username=membership.user.email, password=PASSWORD)
    return Persona(membership=membership, client=client)


@pytest.fixture
def acme(db) -> ContactCenter:
    return make_center("acme", name="Acme Support", admin_email="admin@acme.example", byob_enabled=True)


@pytest.fixture
def globex(db) -> ContactCenter:
    return make_center("globex", name="Globex", admin_email="admin@globex.example")


@pytest.fixture
def admin(acme: ContactCenter) -> Persona:
    return _login(Membership.objects.get(contact_center=acme, user__email="admin@acme.example"))


@pytest.fixture
def supervisor(acme: ContactCenter) -> Persona:
    return _login(make_member(acme, Role.SUPERVISOR, email="supervisor@acme.example"))


@pytest.fixture
def agent(acme: ContactCenter) -> Persona:
    return _login(make_member(acme, Role.AGENT, email="agent@acme.example", extension="1001"))


@pytest.fixture
def outsider(globex: ContactCenter) -> Persona:
    return _login(Membership.objects.get(contact_center=globex, user__email="admin@globex.example"))


@pytest.fixture
def anonymous() -> Client:
    return Client()


@pytest.fixture
def api_keys(acme: ContactCenter) -> dict[str, str]:
    """Raw keys of acme by scope."""
    return {scope: make_api_key(acme, scope)[1] for scope in ApiKeyScope.values}


@pytest.fixture
def globex_admin_key(globex: ContactCenter) -> str:
    return make_api_key(globex, ApiKeyScope.ADMIN)[1]


def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def error_code(response: HttpResponse) -> str:
    """The error code of an API error response, checking the one error shape on the way."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return body["error"]["code"]


@dataclass
class Caller:
    """An administrator of acme calling the API, by session or by admin key."""

    client: Client
    headers: dict[str, str] = field(default_factory=dict)
    user: User | None = None
    api_key: ApiKey | None = None

    def get(self, url: str) -> HttpResponse:
        return self.client.get(url, **self.headers)

    def post(self, url: str, data: Any) -> HttpResponse:
        return self.client.post(url, data, content_type="application/json", **self.headers)

    def put(self, url: str, data: Any) -> HttpResponse:
        return self.client.put(url, data, content_type="application/json", **self.headers)

    def patch(self, url: str, data: Any) -> HttpResponse:
        return self.client.patch(url, data, content_type="application/json", **self.headers)

    def delete(self, url: str) -> HttpResponse:
        return self.client.delete(url, **self.headers)

    def assert_acted(self, event: AuditEvent) -> None:
        assert event.actor == self.user
        assert event.api_key == self.api_key


@pytest.fixture(params=["session", "api_key"])
def caller(request: pytest.FixtureRequest, admin: Persona) -> Caller:
    if request.param == "session":
        return Caller(client=admin.client, user=admin.user)
    key, raw = make_api_key(admin.center, ApiKeyScope.ADMIN)
    return Caller(client=Client(), headers=bearer(raw), api_key=key)
