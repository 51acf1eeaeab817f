"""Django admin for staff: every model listed, BYOB switch, read-only audit log, no key hashes."""

import re

import pytest
from django.apps import apps
from django.contrib import admin as django_admin
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from campaigns.models import Campaign, Lead, RegionalCallingRule
from reporting.models import (
    CallEvent,
    CallRecord,
    CallRollup,
    Handoff,
    HandoffRollup,
    ProviderCallReport,
    StaleBucket,
)
from reporting.rollups import rebuild_rollups
from routing.models import Flow, FlowVersion, MenuState, PhoneNumber
from tests.factories import make_api_key, make_queue
from tests.reporting.factories import make_call, make_event, make_handoff, make_report
from virtual_agents.models import HandoffTarget, ProviderIntegration, VirtualAgent
from voiso_byob.models import AuditEvent, ContactCenter, Invitation, User
from voiso_byob.services import invite_member

PROJECT_APPS = ["voiso_byob", "virtual_agents", "routing", "campaigns", "reporting"]


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


def test_invitations_are_shown_read_only_without_their_token_hash(staff, acme) -> None:
    invitation, _ = invite_member(
        center=acme, email="invited@example.org", role="agent", by="tests", portal_url="http://t"
    )
    url = "/admin/voiso_byob/invitation/"
    for page in (url, f"{url}{invitation.pk}/change/", f"{url}?q=invited"):
        body = staff.get(page).content.decode()
        assert "invited@example.org" in body
        assert invitation.hashed_token not in body
    assert staff.get(f"{url}add/").status_code == 403
    assert staff.post(f"{url}{invitation.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Invitation.objects.filter(pk=invitation.pk).exists()


def test_non_staff_cannot_use_admin(admin) -> None:
    response = admin.client.get("/admin/voiso_byob/contactcenter/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert ContactCenter.objects.filter(byob_enabled=True).count() == 1


def test_every_model_of_the_project_is_registered() -> None:
    models = [model for app in PROJECT_APPS for model in apps.get_app_config(app).get_models()]
    assert len(models) >= 17
    missing = [model._meta.label for model in models if not django_admin.site.is_registered(model)]
    assert not missing, f"not in Django admin: {missing}"


@pytest.fixture
def calls(db) -> ContactCenter:
    """The demo center with a few calls, handoffs, events and provider reports."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    center = ContactCenter.objects.get(slug="acme")
    bot = VirtualAgent.objects.filter(contact_center=center).first()
    queue = make_queue(center, name="Admin queue", extension="4777")
    for n in range(3):
        record = make_call(center, call_id=f"admin-call-{n}", virtual_agent=bot, queue=queue)
        make_handoff(record, virtual_agent=bot)
        make_event(center, record.call_id, "call.started", record.started_at)
        make_report(record, summary=f"summary {n}")
    rebuild_rollups(center_id=center.pk)
    StaleBucket.objects.create(contact_center=center, bucket=record.started_at.replace(minute=0, second=0))
    MenuState.objects.create(
        contact_center=center, call_id="admin-call-0", state={"node": "menu"}, expires_at=timezone.now()
    )
    return center


READ_ONLY_MODELS = [
    CallEvent,
    CallRecord,
    Handoff,
    ProviderCallReport,
    FlowVersion,
    Flow,
    PhoneNumber,
    HandoffTarget,
    Campaign,  # the demo's
    Lead,
    CallRollup,
    HandoffRollup,
    StaleBucket,
    MenuState,
]


@pytest.mark.parametrize("model", READ_ONLY_MODELS, ids=lambda m: m.__name__)
def test_new_changelists_search_filter_and_open_a_row(
    staff, calls, model, django_assert_max_num_queries
) -> None:
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    # list_select_related: the page costs the same whatever the number of rows.
    with django_assert_max_num_queries(12):
        response = staff.get(url)
    assert response.status_code == 200
    assert not re.search(r"(?<![0-9])0 results", response.content.decode())  # "200 results" has rows
    assert staff.get(url, {"q": "acme"}).status_code == 200
    row = model.objects.first()
    page = staff.get(f"{url}{row.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()  # a view, not a form


@pytest.mark.parametrize("model", READ_ONLY_MODELS, ids=lambda m: m.__name__)
def test_append_only_and_folded_data_cannot_be_added_changed_or_deleted(staff, calls, model) -> None:
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    row = model.objects.first()
    count = model.objects.count()
    assert staff.get(f"{url}add/").status_code == 403
    assert staff.post(f"{url}{row.pk}/change/", {}).status_code == 403
    assert staff.post(f"{url}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert model.objects.count() == count
    assert model.objects.filter(pk=row.pk).exists()


def test_integration_secrets_are_never_shown(staff, calls) -> None:
    integration = ProviderIntegration.objects.filter(contact_center=calls).first()
    integration.credentials = {"api_key": "sk-live-very-secret-1234", "webhook_secret": "whsec-hidden-5678"}
    integration.save(update_fields=["credentials"])
    report = ProviderCallReport.objects.filter(contact_center=calls).first()
    target = HandoffTarget.objects.filter(virtual_agent__integration=integration).first()
    pages = [
        "/admin/virtual_agents/providerintegration/",
        f"/admin/virtual_agents/providerintegration/{integration.pk}/change/",
        f"/admin/virtual_agents/virtualagent/{integration.virtual_agents.first().pk}/change/",
        "/admin/virtual_agents/handofftarget/",
        f"/admin/virtual_agents/handofftarget/{target.pk}/change/",
        "/admin/reporting/providercallreport/",
        f"/admin/reporting/providercallreport/{report.pk}/change/",
    ]
    for url in pages:
        response = staff.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert "sk-live-very-secret-1234" not in body and "whsec-hidden-5678" not in body, url
        assert integration._meta.get_field("credentials").get_prep_value(integration.credentials) not in body


def test_non_staff_member_cannot_read_calls_in_admin(admin, calls) -> None:
    response = admin.client.get("/admin/reporting/callrecord/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_edit_the_legal_frame_of_the_dialer(staff, calls) -> None:
    """Regional calling rules and a center's dialer policy are data staff keep (laws change)."""
    florida = RegionalCallingRule.objects.get(region="US-FL")
    page = staff.get(f"/admin/campaigns/regionalcallingrule/{florida.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' in page.content.decode()
    assert staff.get("/admin/campaigns/dialerpolicy/").status_code == 200
