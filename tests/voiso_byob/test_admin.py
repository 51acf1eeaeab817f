"""Django admin for staff: every model listed, BYOB switch, read-only audit log, no key hashes."""

import pytest
from django.test import Client

from tests.factories import make_api_key, make_queue
from voiso_byob.models import AuditEvent, ContactCenter, User


@pytest.fixture
def staff(db) -> Client:
    user = User.objects.create_superuser("staff@voiso.example", "staff-pass-1234")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/voiso_byob/user/",
        "/admin/voiso_byob/contactcenter/",
        "/admin/voiso_byob/membership/",
        "/admin/voiso_byob/extension/",
        "/admin/voiso_byob/apikey/",
        "/admin/voiso_byob/auditevent/",
        "/admin/routing/queue/",
    ],
)
def test_changelists_render_with_search(staff, acme, url: str) -> None:
    make_queue(acme)
    make_api_key(acme, "telephony")
    assert staff.get(url).status_code == 200
    assert staff.get(url, {"q": "acme"}).status_code == 200


def test_staff_switch_byob_on_and_it_is_audited(staff, globex) -> None:
    assert not globex.byob_enabled
    response = staff.post(
        f"/admin/voiso_byob/contactcenter/{globex.pk}/change/",
        {
            "name": globex.name,
            "slug": globex.slug,
            "timezone": globex.timezone,
            "byob_enabled": "on",
            "extension_length": globex.extension_length,
            "external_transfer_policy": "allowed",
            "created_0": "2026-01-01",
            "created_1": "00:00:00",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    revision = globex.routing_revision
    globex.refresh_from_db()
    assert globex.byob_enabled
    assert globex.routing_revision == revision + 1  # compiled flows everywhere rebuild
    event = AuditEvent.objects.get(contact_center=globex, action="contact_center.updated")
    assert event.changes["byob_enabled"] is True


def test_audit_log_is_read_only(staff, acme) -> None:
    event = AuditEvent.objects.filter(contact_center=acme).first()
    assert staff.get("/admin/voiso_byob/auditevent/add/").status_code == 403
    assert staff.post(f"/admin/voiso_byob/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_api_key_page_never_shows_the_key_or_its_hash(staff, acme) -> None:
    key, raw = make_api_key(acme, "admin")
    for url in ("/admin/voiso_byob/apikey/", f"/admin/voiso_byob/apikey/{key.pk}/change/"):
        body = staff.get(url).content.decode()
        assert key.prefix in body
        assert raw not in body and key.hashed_key not in body


def test_non_staff_cannot_use_admin(admin) -> None:
    response = admin.client.get("/admin/voiso_byob/contactcenter/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert ContactCenter.objects.filter(byob_enabled=True).count() == 1
