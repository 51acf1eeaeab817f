"""The toll-fraud guard on handoffs to external numbers: REFER answers, flows, bots, the portal page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from routing.models import Flow
from routing.route import simulate_flow
from tests.conftest import Persona, bearer, error_code
from virtual_agents import services as va_services
from voiso_byob import services
from voiso_byob.errors import DomainError
from voiso_byob.models import AuditEvent, ContactCenter, NumberType

REFER = "/api/v1/telephony/refer"
PAGE = reverse("routing:external_transfers")
NEW_YORK = "+12125550199"  # fixed line or mobile, US
LONDON = "+442079460000"  # fixed line, GB
US_PREMIUM = "+19005550100"
UK_PREMIUM = "+449098790000"
UK_PERSONAL = "+447012345678"


@pytest.fixture
def telephony(api_keys) -> Client:
    client = Client()
    client.defaults.update(bearer(api_keys["telephony"]))
    return client


def refer(client: Client, number: str) -> Any:
    body = {"call_id": "c-1", "refer_to": f"<tel:{number}>"}
    return client.post(REFER, body, content_type="application/json")


def guard(center: ContactCenter, **changes: Any) -> ContactCenter:
    fields = {
        "is_allowed": True,
        "allowed_destinations": [],
        "denied_number_types": [NumberType.PREMIUM_RATE, NumberType.SHARED_COST, NumberType.PERSONAL_NUMBER],
        "is_only_bot_targets": False,
        **changes,
    }
    return services.update_external_transfers(center=center, by="test", **fields)


def assert_denied(response: Any, *, code: str = "destination_denied") -> None:
    assert response.status_code == 403, response.json()
    assert error_code(response) == code
    assert response.json()["error"]["sip_status"] == 403


# --- REFER ---------------------------------------------------------------------------------


def test_new_centers_refuse_premium_and_personal_numbers_by_default(acme, telephony) -> None:
    assert acme.denied_number_types == ["premium_rate", "shared_cost", "personal_number"]
    for number in (US_PREMIUM, UK_PREMIUM, UK_PERSONAL):
        response = refer(telephony, number)
        assert_denied(response)
        assert number in response.json()["error"]["message"]
    allowed = refer(telephony, NEW_YORK)
    assert allowed.status_code == 200 and allowed.json()["destination"]["number"] == NEW_YORK


def test_allowed_countries_and_prefixes(acme, telephony) -> None:
    guard(acme, allowed_destinations=["gb", "+1212"])
    assert refer(telephony, LONDON).status_code == 200  # GB by country
    assert refer(telephony, NEW_YORK).status_code == 200  # +1212 by prefix
    assert_denied(refer(telephony, "+13125550199"))  # Chicago: US, but not +1212
    assert_denied(refer(telephony, "+4915123456789"))  # Germany
    # A denied type wins over an allowed country.
    assert_denied(refer(telephony, UK_PREMIUM))


def test_denied_types_are_the_centers_choice(acme, telephony) -> None:
    guard(acme, denied_number_types=[NumberType.FIXED_LINE_OR_MOBILE])
    assert refer(telephony, UK_PREMIUM).status_code == 200
    assert_denied(refer(telephony, NEW_YORK))


def test_switched_off_keeps_its_own_code(acme, telephony) -> None:
    guard(acme, is_allowed=False)
    assert_denied(refer(telephony, NEW_YORK), code="external_not_allowed")


def test_only_the_bots_configured_targets(acme, telephony) -> None:
    integration = va_services.create_integration(
        center=acme, provider="generic_sip", label="House", credentials=None, by="t"
    )
    va_services.create_virtual_agent(
        integration=integration,
        by="t",
        name="Bot",
        sip_uri="sip:bot@10.0.0.5",
        handoff_targets=[NEW_YORK],
        default_handoff=LONDON,
    )
    guard(acme, is_only_bot_targets=True)
    assert refer(telephony, NEW_YORK).status_code == 200  # a handoff target
    assert refer(telephony, LONDON).status_code == 200  # the default handoff
    response = refer(telephony, "+13125550199")
    assert_denied(response)
    assert "handoff target" in response.json()["error"]["message"]


def test_another_centers_bot_targets_do_not_count(acme, globex, telephony) -> None:
    globex.byob_enabled = True
    globex.save()
    integration = va_services.create_integration(
        center=globex, provider="generic_sip", label="House", credentials=None, by="t"
    )
    va_services.create_virtual_agent(
        integration=integration, by="t", name="Bot", sip_uri="sip:bot@10.0.0.5", handoff_targets=[NEW_YORK]
    )
    guard(acme, is_only_bot_targets=True)
    assert_denied(refer(telephony, NEW_YORK))


def test_a_change_is_seen_by_the_next_refer(acme, telephony) -> None:
    assert refer(telephony, NEW_YORK).status_code == 200
    guard(acme, allowed_destinations=["GB"])
    assert_denied(refer(telephony, NEW_YORK))


# --- bots' configured targets and flows ------------------------------------------------------


def test_a_bot_cannot_be_given_a_denied_number(acme) -> None:
    integration = va_services.create_integration(
        center=acme, provider="generic_sip", label="House", credentials=None, by="t"
    )
    with pytest.raises(DomainError) as refused:
        va_services.create_virtual_agent(
            integration=integration,
            by="t",
            name="Bot",
            sip_uri="sip:bot@10.0.0.5",
            handoff_targets=[US_PREMIUM],
        )
    assert refused.value.code == "destination_denied"


def _flow_to(admin: Persona, number: str) -> Flow:
    graph = {
        "nodes": {
            "start": {"type": "start", "config": {}, "next": {"next": "out"}},
            "out": {
                "type": "route",
                "config": {"target": {"type": "external", "number": number}},
                "next": {},
            },
        }
    }
    response = admin.client.post(
        "/api/v1/flows/", {"name": f"To {number}", "graph": graph}, content_type="application/json"
    )
    assert response.status_code == 201, response.json()
    return Flow.objects.get(pk=response.json()["id"])


@pytest.mark.parametrize(("number", "is_dialled"), [(NEW_YORK, True), (US_PREMIUM, False), (LONDON, False)])
def test_flows_external_routes_follow_the_same_rules(admin, number: str, is_dialled: bool) -> None:
    guard(admin.center, allowed_destinations=["US"])
    flow = _flow_to(admin, number)
    steps = simulate_flow(
        flow=flow,
        version=flow.versions.get(state="draft"),
        caller="+442079460999",
        at=timezone.now(),
        digits=[],
        is_http_allowed=False,
    )
    verb = steps[-1].instructions[-1]
    if is_dialled:
        assert verb["verb"] == "dial" and number in verb["sip_uri"]
    else:
        assert verb == {"verb": "hangup", "reason": "destination_denied"}
        assert any(number in note for note in steps[-1].notes)


# --- the portal page -----------------------------------------------------------------------


def test_administrator_saves_the_guard_and_it_is_audited(admin: Persona, telephony) -> None:
    page = admin.client.get(PAGE)
    assert page.status_code == 200 and b'name="allowed_destinations"' in page.content
    response = admin.client.post(
        PAGE,
        {
            "is_allowed": "on",
            "allowed_destinations": "gb, +1212\nus",
            "denied_number_types": ["premium_rate", "toll_free"],
        },
    )
    assert response.status_code == 302
    center = ContactCenter.objects.get(pk=admin.center.pk)
    assert center.allowed_destinations == ["GB", "+1212", "US"]
    assert center.denied_number_types == ["toll_free", "premium_rate"]
    assert center.allows_external_transfers and not center.external_only_bot_targets
    event = AuditEvent.objects.get(action="contact_center.external_transfers_updated")
    assert event.actor == admin.user and event.contact_center == center
    assert event.changes["allowed_destinations"] == {"from": [], "to": ["GB", "+1212", "US"]}
    assert set(event.changes) == {"allowed_destinations", "denied_number_types"}
    # The REFER endpoint follows at once: shared cost and personal numbers are no longer denied.
    assert refer(telephony, UK_PERSONAL).status_code == 200
    assert_denied(refer(telephony, "+18005551234"))  # US toll free, now denied


@pytest.mark.parametrize("bad", ["XX", "+0123", "GBR", "+12a", "premium"])
def test_invalid_destinations_are_refused_and_change_nothing(admin: Persona, bad: str) -> None:
    response = admin.client.post(PAGE, {"is_allowed": "on", "allowed_destinations": f"GB {bad}"})
    assert response.status_code == 400
    assert b"neither a country code" in response.content
    center = ContactCenter.objects.get(pk=admin.center.pk)
    assert center.allowed_destinations == [] and center.denied_number_types == [
        "premium_rate",
        "shared_cost",
        "personal_number",
    ]
    assert not AuditEvent.objects.filter(action="contact_center.external_transfers_updated").exists()


def test_unknown_number_type_is_refused(admin: Persona) -> None:
    response = admin.client.post(PAGE, {"is_allowed": "on", "denied_number_types": ["free_money"]})
    assert response.status_code == 400
    assert ContactCenter.objects.get(pk=admin.center.pk).denied_number_types == [
        "premium_rate",
        "shared_cost",
        "personal_number",
    ]


def test_saving_the_same_settings_records_nothing(admin: Persona) -> None:
    data = {"is_allowed": "on", "denied_number_types": ["personal_number", "premium_rate", "shared_cost"]}
    assert admin.client.post(PAGE, data).status_code == 302
    assert not AuditEvent.objects.filter(action="contact_center.external_transfers_updated").exists()


def test_supervisor_reads_but_cannot_change(supervisor: Persona) -> None:
    page = supervisor.client.get(PAGE)
    assert page.status_code == 200
    assert b"Only administrators can change" in page.content and b">Save</button>" not in page.content
    assert page.context["form"]["allowed_destinations"].field.disabled
    assert re.search(rb'<textarea name="allowed_destinations"[^>]* disabled', page.content)
    response = supervisor.client.post(PAGE, {"allowed_destinations": "GB"})
    assert response.status_code == 403
    assert ContactCenter.objects.get(pk=supervisor.center.pk).allowed_destinations == []


def test_agent_and_anonymous_are_refused(agent: Persona, anonymous: Client) -> None:
    assert agent.client.get(PAGE).status_code == 403
    assert agent.client.post(PAGE, {"allowed_destinations": "GB"}).status_code == 403
    assert anonymous.get(PAGE).status_code == 302
    assert ContactCenter.objects.get(pk=agent.center.pk).allowed_destinations == []


def test_each_administrator_changes_only_their_own_center(admin: Persona, outsider: Persona) -> None:
    assert outsider.client.post(PAGE, {"is_allowed": "on", "allowed_destinations": "DE"}).status_code == 302
    assert ContactCenter.objects.get(pk=admin.center.pk).allowed_destinations == []
    assert ContactCenter.objects.get(pk=outsider.center.pk).allowed_destinations == ["DE"]
