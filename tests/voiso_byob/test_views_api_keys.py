"""API key pages: a key is shown once and stored only as its hash; revoking is POST-only and idempotent."""

from __future__ import annotations

import hashlib

from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from tests.conftest import Persona
from tests.factories import make_api_key
from voiso_byob.models import ApiKey, ApiKeyScope, AuditEvent


def test_create_shows_the_raw_key_once_and_stores_only_its_hash(admin: Persona) -> None:
    response = admin.client.post("/api-keys/new/", {"name": "Kamailio prod", "scope": ApiKeyScope.TELEPHONY})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(contact_center=admin.center, name="Kamailio prod")
    raw = response.context["raw_key"]
    assertContains(response, f'<code id="raw-key" class="secret">{raw}</code>', html=True)
    assert raw.startswith(key.prefix)
    assert key.scope == ApiKeyScope.TELEPHONY
    assert key.created_by == admin.user
    assert key.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    stored = [str(value) for value in ApiKey.objects.filter(pk=key.pk).values().get().values()]
    assert not any(raw in value for value in stored)
    event = AuditEvent.objects.for_center(admin.center).get(action="api_key.created")
    assert event.actor == admin.user
    assert event.changes == {"name": "Kamailio prod", "scope": "telephony"}
    assert raw not in str(event.changes)

    listing = admin.client.get("/api-keys/")
    assertContains(listing, key.prefix)
    assertContains(listing, "by admin@acme.example")
    assertNotContains(listing, raw)
    assertNotContains(admin.client.get("/api-keys/new/"), raw)
    assertNotContains(admin.client.get("/audit/"), raw)


def test_create_without_name_is_refused_next_to_the_field(admin: Persona) -> None:
    response = admin.client.post("/api-keys/new/", {"name": "  ", "scope": ApiKeyScope.READ})

    assert response.status_code == 200
    assertContains(
        response, '<ul class="errorlist" id="id_name_error"><li>This field is required.</li></ul>', html=True
    )
    assert not ApiKey.objects.exists()
    assert "raw_key" not in response.context


def test_create_with_unknown_scope_is_refused(admin: Persona) -> None:
    response = admin.client.post("/api-keys/new/", {"name": "root", "scope": "superuser"})

    assert response.status_code == 200
    assertContains(response, "Select a valid choice. superuser is not one of the available choices.")
    assert not ApiKey.objects.exists()


def test_revoke_sets_revoked_at_and_records_one_event_even_if_posted_twice(admin: Persona) -> None:
    key, _ = make_api_key(admin.center, ApiKeyScope.TELEPHONY)
    url = reverse("api_key_revoke", args=[key.pk])

    first = admin.client.post(url)
    key.refresh_from_db()
    revoked_at = key.revoked_at
    second = admin.client.post(url)

    assert first.status_code == second.status_code == 302
    assert first["Location"] == "/api-keys/"
    assert revoked_at is not None
    key.refresh_from_db()
    assert key.revoked_at == revoked_at
    events = AuditEvent.objects.for_center(admin.center).filter(action="api_key.revoked")
    assert [(event.target_id, event.actor) for event in events] == [(str(key.pk), admin.user)]
    listing = admin.client.get("/api-keys/")
    assertContains(listing, f"revoked {revoked_at:%Y-%m-%d}")
    assertNotContains(listing, url)


def test_revoked_key_no_longer_counts_on_the_dashboard(admin: Persona) -> None:
    key, _ = make_api_key(admin.center, ApiKeyScope.READ)
    make_api_key(admin.center, ApiKeyScope.ADMIN)
    assertContains(admin.client.get("/"), "<strong>2</strong> active API keys", html=True)

    admin.client.post(reverse("api_key_revoke", args=[key.pk]))

    assertContains(admin.client.get("/"), "<strong>1</strong> active API keys", html=True)


def test_supervisor_sees_the_list_without_create_or_revoke(admin: Persona, supervisor: Persona) -> None:
    key, _ = make_api_key(admin.center, ApiKeyScope.TELEPHONY)

    response = supervisor.client.get("/api-keys/")

    assert response.status_code == 200
    assertContains(response, key.prefix)
    assertNotContains(response, "Create API key")
    assertNotContains(response, reverse("api_key_create"))
    assertNotContains(response, reverse("api_key_revoke", args=[key.pk]))
    assertNotContains(response, "Revoke")
    # The administrator's page has both, so the checks above can fail.
    admin_page = admin.client.get("/api-keys/")
    assertContains(admin_page, reverse("api_key_create"))
    assertContains(admin_page, reverse("api_key_revoke", args=[key.pk]))


def test_supervisor_cannot_revoke(supervisor: Persona) -> None:
    key, _ = make_api_key(supervisor.center, ApiKeyScope.TELEPHONY)

    response = supervisor.client.post(reverse("api_key_revoke", args=[key.pk]))

    assert response.status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None
    assert not AuditEvent.objects.filter(action="api_key.revoked").exists()


def test_list_pages_and_uses_a_bounded_number_of_queries(
    admin: Persona, django_assert_max_num_queries
) -> None:
    for _ in range(30):
        make_api_key(admin.center, ApiKeyScope.READ)

    with django_assert_max_num_queries(8):
        response = admin.client.get("/api-keys/")

    assertContains(response, "Page 1 of 2 · 30 in all")
    assertContains(admin.client.get("/api-keys/?page=2"), "Page 2 of 2 · 30 in all")
