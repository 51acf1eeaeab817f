"""Integrations and virtual agents through the REST API, against the local provider stand-ins.

The administrator calls as a session and as an admin-scope key (`caller`); the role and scope
matrix at the end covers everyone else. Credentials are write-only: every response body is
checked for the raw key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from routing.models import Queue
from routing.services import delete_queue
from tests.conftest import Caller, Persona, bearer, error_code
from tests.factories import PASSWORD, make_api_key, make_center, make_member
from tests.virtual_agents.fake_providers import API_KEYS, VapiFake
from virtual_agents import services
from virtual_agents.models import (
    HandoffTarget,
    IntegrationStatus,
    ProviderIntegration,
    VirtualAgent,
)
from voiso_byob.models import (
    ApiKeyScope,
    AuditEvent,
    ContactCenter,
    Extension,
    ExternalTransferPolicy,
    Membership,
)

INTEGRATIONS = "/api/v1/integrations/"
VIRTUAL_AGENTS = "/api/v1/virtual-agents/"
VAPI_KEY = API_KEYS["vapi"]
# Rotated at the provider: Vapi accepts it once the fake is told to.
NEW_VAPI_KEY = "vapi-test-rotated-0f1e2d3c-4b5a-6978-8a9b-ab12cd34ef56"
WRONG_KEY = "vapi-wrong-key-9d8c7b6a-5f4e-3d2c-1b0a-feedfacecafe"


def integration_url(integration: ProviderIntegration, action: str = "") -> str:
    return f"{INTEGRATIONS}{integration.pk}/" + (f"{action}/" if action else "")


def agent_url(agent: VirtualAgent, action: str = "") -> str:
    return f"{VIRTUAL_AGENTS}{agent.pk}/" + (f"{action}/" if action else "")


@pytest.fixture
def house_bot(acme: ContactCenter) -> ProviderIntegration:
    """A generic SIP integration: no key, no provider API."""
    return services.create_integration(
        center=acme, provider="generic_sip", label="House bot", credentials=None, by="tests"
    )


@pytest.fixture
def bot(vapi: ProviderIntegration, sales: Queue) -> VirtualAgent:
    """Created, not connected yet."""
    return services.create_virtual_agent(
        integration=vapi,
        by="tests",
        name="Front desk",
        provider_agent_id="asst-01",
        extension="7001",
        handoff_targets=["4323"],
    )


@pytest.fixture
def live_bot(vapi: ProviderIntegration, sales: Queue, support: Queue) -> VirtualAgent:
    """Connected at Vapi, handing off to Sales and Support."""
    return services.create_virtual_agent(
        integration=vapi,
        by="tests",
        name="Night desk",
        provider_agent_id="asst-02",
        extension="7002",
        handoff_targets=["4323", "4400"],
        connect=True,
    )


@pytest.fixture
def initech(db: None) -> ContactCenter:
    """Another tenant with BYOB on: acme's objects are not found there, not forbidden."""
    return make_center("initech", name="Initech", byob_enabled=True)


# --- helpers -----------------------------------------------------------------------------


def state() -> tuple[Any, ...]:
    """Everything a refused request must leave as it was."""
    return (
        sorted(
            (str(i.pk), i.label, i.status, i.credentials_hint, i.last_error, str(i.credentials))
            for i in ProviderIntegration.objects.all()
        ),
        sorted(
            VirtualAgent.objects.values_list(
                "pk", "name", "max_concurrent_calls", "is_enabled", "is_connected", "sip_uri"
            )
        ),
        sorted(HandoffTarget.objects.values_list("virtual_agent_id", "sip_uri")),
        sorted(Extension.objects.values_list("contact_center_id", "digits")),
        AuditEvent.objects.count(),
    )


@contextmanager
def nothing_changes() -> Iterator[None]:
    before = state()
    yield
    assert state() == before


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("created", "id")


def _keys_of(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys_of(v)}
    return set()


def secret_free(response) -> Any:
    """The JSON body, after checking that no key (ours or the ones sent) is anywhere in it."""
    text = response.content.decode()
    for secret in (*API_KEYS.values(), NEW_VAPI_KEY, WRONG_KEY):
        assert secret not in text
    if not text:
        return None
    body = response.json()
    if not (isinstance(body, dict) and "error" in body):  # an error may name the field it is about
        assert "credentials" not in _keys_of(body)
    return body


def provider_writes(fake: VapiFake) -> list[tuple[str, str]]:
    return [call for call in fake.calls if call[0] != "GET"]


# --- integrations: create ----------------------------------------------------------------


def test_create_verifies_the_key_live_and_stores_it_encrypted(
    caller: Caller, acme: ContactCenter, vapi_fake: VapiFake
) -> None:
    response = caller.post(
        INTEGRATIONS, {"provider": "vapi", "label": "Vapi prod", "credentials": {"api_key": VAPI_KEY}}
    )

    assert response.status_code == 201, response.content
    body = secret_free(response)
    assert body["provider"] == "vapi" and body["label"] == "Vapi prod"
    assert body["status"] == "connected" and body["last_verified_at"] and body["last_error"] == ""
    assert body["credentials_hint"] == "…" + VAPI_KEY[-4:]
    integration = ProviderIntegration.objects.get(pk=body["id"])
    assert integration.contact_center == acme
    assert integration.credentials == {"api_key": VAPI_KEY}
    assert vapi_fake.sent("GET", "/assistant")[-1].headers["authorization"] == f"Bearer {VAPI_KEY}"
    assert vapi_fake.violations == []
    event = last_event("integration.created")
    assert event.contact_center == acme and event.target_id == str(integration.pk)
    assert VAPI_KEY not in str(event.changes)
    caller.assert_acted(event)


@pytest.mark.parametrize("provider", ["elevenlabs", "vapi", "retell"])
def test_a_wrong_key_is_refused_and_nothing_is_stored(
    provider: str, caller: Caller, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = request.getfixturevalue(f"{provider}_fake")

    with nothing_changes():
        response = caller.post(
            INTEGRATIONS, {"provider": provider, "label": "Mine", "credentials": {"api_key": WRONG_KEY}}
        )

    assert response.status_code == 400
    assert error_code(response) == "provider_auth_failed"
    body = secret_free(response)
    assert body["error"]["fields"] == {"api_key": [body["error"]["message"]]}
    assert fake.requests, "the key was not checked with the provider"
    assert fake.violations == []
    assert caplog.records and WRONG_KEY not in caplog.text


def test_a_generic_sip_integration_needs_no_key(caller: Caller) -> None:
    response = caller.post(INTEGRATIONS, {"provider": "generic_sip", "label": "House bot"})

    assert response.status_code == 201, response.content
    body = secret_free(response)
    assert (body["status"], body["credentials_hint"]) == ("connected", "")
    assert ProviderIntegration.objects.get(pk=body["id"]).credentials == {}
    caller.assert_acted(last_event("integration.created"))


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"provider": "vapi", "label": "Other"}, "required", "api_key"),
        (
            {"provider": "vapi", "label": "Other", "credentials": {"api_key": "  "}},
            "validation_error",
            "credentials",
        ),
        (
            {"provider": "vapi", "label": "Other", "credentials": {"api_key": "two words"}},
            "invalid",
            "api_key",
        ),
        (
            {"provider": "vapi", "label": "vapi PROD", "credentials": {"api_key": VAPI_KEY}},
            "label_taken",
            "label",
        ),
        ({"provider": "twilio", "label": "Other"}, "validation_error", "provider"),
        (
            {"provider": "vapi", "label": "", "credentials": {"api_key": VAPI_KEY}},
            "validation_error",
            "label",
        ),
    ],
    ids=["no-key", "blank-key", "spaced-key", "label-taken", "unknown-provider", "no-label"],
)
def test_create_validation_errors_store_nothing(
    caller: Caller, vapi: ProviderIntegration, vapi_fake: VapiFake, payload: dict, code: str, field: str
) -> None:
    requests_before = len(vapi_fake.requests)

    with nothing_changes():
        response = caller.post(INTEGRATIONS, payload)

    assert response.status_code == 400
    assert error_code(response) == code
    assert field in secret_free(response)["error"]["fields"]
    assert len(vapi_fake.requests) == requests_before  # refused before asking the provider


# --- integrations: list and retrieve -----------------------------------------------------


def test_list_and_retrieve_never_include_credentials(
    caller: Caller, vapi: ProviderIntegration, house_bot: ProviderIntegration
) -> None:
    listed = caller.get(INTEGRATIONS)
    retrieved = caller.get(integration_url(vapi))

    assert listed.status_code == retrieved.status_code == 200
    results = secret_free(listed)["results"]
    assert [row["label"] for row in results] == ["House bot", "Vapi prod"]
    body = secret_free(retrieved)
    assert set(body) == {
        "id",
        "provider",
        "label",
        "credentials_hint",
        "webhook_secret_set",
        "webhook_url",
        "status",
        "last_verified_at",
        "last_error",
        "created",
    }
    assert body["credentials_hint"] == "…" + VAPI_KEY[-4:]


def test_list_is_scoped_to_the_callers_center(
    caller: Caller, vapi: ProviderIntegration, initech: ContactCenter
) -> None:
    theirs = services.create_integration(
        center=initech, provider="generic_sip", label="Initech bot", credentials=None, by="tests"
    )

    ours = secret_free(caller.get(INTEGRATIONS))

    assert [row["id"] for row in ours["results"]] == [str(vapi.pk)]
    assert caller.get(integration_url(theirs)).status_code == 404


# --- integrations: update ----------------------------------------------------------------


def test_rename(caller: Caller, vapi: ProviderIntegration, vapi_fake: VapiFake) -> None:
    requests_before = len(vapi_fake.requests)

    response = caller.patch(integration_url(vapi), {"label": "Vapi staging"})

    assert response.status_code == 200, response.content
    assert secret_free(response)["label"] == "Vapi staging"
    vapi.refresh_from_db()
    assert vapi.label == "Vapi staging" and vapi.credentials == {"api_key": VAPI_KEY}
    assert len(vapi_fake.requests) == requests_before  # a rename asks nobody
    event = last_event("integration.updated")
    assert event.changes == {"label": {"from": "Vapi prod", "to": "Vapi staging"}}
    caller.assert_acted(event)


def test_replace_the_key_verifies_it_first(
    caller: Caller, vapi: ProviderIntegration, vapi_fake: VapiFake
) -> None:
    vapi_fake.api_key = NEW_VAPI_KEY  # rotated at Vapi: the stored key no longer works

    response = caller.patch(integration_url(vapi), {"credentials": {"api_key": NEW_VAPI_KEY}})

    assert response.status_code == 200, response.content
    body = secret_free(response)
    assert body["credentials_hint"] == "…" + NEW_VAPI_KEY[-4:] and body["status"] == "connected"
    vapi.refresh_from_db()
    assert vapi.credentials == {"api_key": NEW_VAPI_KEY}
    assert vapi_fake.sent("GET", "/assistant")[-1].headers["authorization"] == f"Bearer {NEW_VAPI_KEY}"
    event = last_event("integration.updated")
    assert event.changes == {"credentials": {"from": "…" + VAPI_KEY[-4:], "to": "…" + NEW_VAPI_KEY[-4:]}}
    caller.assert_acted(event)


def test_a_refused_replacement_key_keeps_the_old_one(
    caller: Caller, vapi: ProviderIntegration, vapi_fake: VapiFake
) -> None:
    with nothing_changes():
        response = caller.patch(
            integration_url(vapi), {"label": "Renamed too", "credentials": {"api_key": WRONG_KEY}}
        )

    assert response.status_code == 400
    assert error_code(response) == "provider_auth_failed"
    secret_free(response)
    vapi.refresh_from_db()
    assert (vapi.label, vapi.credentials) == ("Vapi prod", {"api_key": VAPI_KEY})


def test_put_replaces_label_and_the_provider_cannot_change(caller: Caller, vapi: ProviderIntegration) -> None:
    with nothing_changes():
        refused = caller.put(integration_url(vapi), {"provider": "retell", "label": "Retell now"})
    assert refused.status_code == 400
    assert error_code(refused) == "immutable"

    response = caller.put(integration_url(vapi), {"provider": "vapi", "label": "Vapi EU"})
    assert response.status_code == 200, response.content
    vapi.refresh_from_db()
    assert vapi.label == "Vapi EU" and vapi.credentials == {"api_key": VAPI_KEY}


# --- integrations: actions ---------------------------------------------------------------


def test_verify_records_the_outcome(caller: Caller, vapi: ProviderIntegration, vapi_fake: VapiFake) -> None:
    vapi_fake.fail("GET", "/assistant", 401)

    revoked = caller.post(integration_url(vapi, "verify"), {})

    assert revoked.status_code == 200, revoked.content
    body = secret_free(revoked)
    assert (body["status"], body["last_error"]) == ("error", "Vapi rejected the API key.")
    vapi.refresh_from_db()
    assert vapi.status == IntegrationStatus.ERROR
    event = last_event("integration.verified")
    assert event.changes == {"status": {"from": "connected", "to": "error"}}
    caller.assert_acted(event)

    again = caller.post(integration_url(vapi, "verify"), {})

    assert secret_free(again)["status"] == "connected" and again.json()["last_error"] == ""
    vapi.refresh_from_db()
    assert vapi.status == IntegrationStatus.CONNECTED and vapi.last_error == ""
    assert last_event("integration.verified").changes["status"] == {"from": "error", "to": "connected"}


def test_agents_lists_the_providers_agents_live(
    caller: Caller, vapi: ProviderIntegration, vapi_fake: VapiFake
) -> None:
    response = caller.get(integration_url(vapi, "agents"))

    assert response.status_code == 200
    assert secret_free(response) == [
        {"id": assistant_id, "name": name or assistant_id} for assistant_id, name in VapiFake.ASSISTANTS
    ]
    assert vapi_fake.violations == []


def test_agents_reports_a_provider_outage(
    caller: Caller, vapi: ProviderIntegration, vapi_fake: VapiFake
) -> None:
    vapi_fake.fail("GET", "/assistant", 503)

    response = caller.get(integration_url(vapi, "agents"))

    assert response.status_code == 502
    assert error_code(response) == "provider_provider_unavailable"
    secret_free(response)


def test_delete_is_refused_while_virtual_agents_use_it(
    caller: Caller, vapi: ProviderIntegration, bot: VirtualAgent
) -> None:
    with nothing_changes():
        response = caller.delete(integration_url(vapi))

    assert response.status_code == 400
    assert error_code(response) == "integration_in_use"
    assert "Front desk" in response.json()["error"]["message"]

    assert caller.delete(agent_url(bot)).status_code == 204
    response = caller.delete(integration_url(vapi))

    assert response.status_code == 204
    assert not ProviderIntegration.objects.filter(pk=vapi.pk).exists()
    event = last_event("integration.deleted")
    assert event.target_id == str(vapi.pk)
    caller.assert_acted(event)


# --- virtual agents: create --------------------------------------------------------------


def test_create_a_virtual_agent_disconnected(
    caller: Caller, vapi: ProviderIntegration, vapi_fake: VapiFake, sales: Queue, agent: Persona
) -> None:
    requests_before = len(vapi_fake.requests)

    response = caller.post(
        VIRTUAL_AGENTS,
        {
            "integration": str(vapi.pk),
            "provider_agent_id": "asst-01",
            "name": "Front desk",
            "extension": "7001",
            "max_concurrent_calls": 4,
            "handoff_targets": ["4323", "1001", "+12125550199"],
            "default_handoff": "4323",
        },
    )

    assert response.status_code == 201, response.content
    body = secret_free(response)
    assert body["connected"] is False and body["enabled"] is True and body["sip_uri"] == ""
    assert (body["extension"], body["max_concurrent_calls"], body["default_handoff"]) == ("7001", 4, "4323")
    assert sorted(t["sip_uri"] for t in body["handoff_targets"]) == [
        "sip:+12125550199@acme.voiso.com;user=phone",
        "sip:1001@acme.voiso.com",
        "sip:4323@acme.voiso.com",
    ]
    created = VirtualAgent.objects.get(pk=body["id"])
    assert created.contact_center == vapi.contact_center and not created.is_connected
    assert created.extension.digits == "7001" and created.extension.kind == "virtual_agent"
    assert created.default_handoff_extension == sales.extension
    assert len(vapi_fake.requests) == requests_before  # connecting is a separate step
    event = last_event("virtual_agent.created")
    assert event.target_id == str(created.pk)
    caller.assert_acted(event)


def test_create_a_generic_sip_agent(caller: Caller, house_bot: ProviderIntegration, sales: Queue) -> None:
    response = caller.post(
        VIRTUAL_AGENTS,
        {
            "integration": str(house_bot.pk),
            "name": "IVR bot",
            "sip_uri": "sip:bot@10.0.0.5:5080;transport=tcp",
        },
    )

    assert response.status_code == 201, response.content
    assert secret_free(response)["sip_uri"] == "sip:bot@10.0.0.5:5080;transport=tcp"
    assert VirtualAgent.objects.get(name="IVR bot").integration == house_bot


def test_list_and_retrieve(caller: Caller, bot: VirtualAgent, live_bot: VirtualAgent) -> None:
    listed = caller.get(VIRTUAL_AGENTS)
    retrieved = caller.get(agent_url(live_bot))

    assert listed.status_code == retrieved.status_code == 200
    assert [row["name"] for row in secret_free(listed)["results"]] == ["Front desk", "Night desk"]
    body = secret_free(retrieved)
    assert body["connected"] is True and body["sip_uri"].startswith("sip:+1999")
    assert [t["extension"] for t in body["handoff_targets"]] == ["4323", "4400"]


def test_listing_makes_a_constant_number_of_queries(
    caller: Caller,
    house_bot: ProviderIntegration,
    sales: Queue,
    support: Queue,
    django_assert_max_num_queries: Any,
) -> None:
    def add_agents(first: int, count: int) -> None:
        for n in range(first, first + count):
            services.create_virtual_agent(
                integration=house_bot,
                by="tests",
                name=f"Bot {n:02}",
                sip_uri=f"sip:bot{n}@10.0.0.5",
                extension=f"{7100 + n}",
                handoff_targets=["4323", "4400"],
                default_handoff="4323",
            )

    add_agents(0, 1)
    with CaptureQueriesContext(connection) as one_agent:
        assert caller.get(VIRTUAL_AGENTS).status_code == 200
    add_agents(1, 9)

    with django_assert_max_num_queries(len(one_agent)):
        response = caller.get(VIRTUAL_AGENTS)

    results = secret_free(response)["results"]
    assert len(results) == 10
    assert all(len(row["handoff_targets"]) == 2 and row["default_handoff"] == "4323" for row in results)


VALIDATION_CASES = [
    ({"handoff_targets": ["9999"]}, "unknown_extension", "handoff_targets"),
    ({"default_handoff": "9999"}, "unknown_extension", "default_handoff"),
    ({"handoff_targets": ["+12125550199"]}, "external_not_allowed", "handoff_targets"),
    ({"name": "front DESK"}, "name_taken", "name"),
    ({"extension": "7001"}, "extension_taken", "extension"),
    ({"extension": "4323"}, "extension_taken", "extension"),
    ({"extension": "70"}, "invalid_extension", "extension"),
    ({"max_concurrent_calls": 0}, "validation_error", "max_concurrent_calls"),
    ({"provider_agent_id": ""}, "required", "provider_agent_id"),
]
VALIDATION_IDS = [
    "unknown-target",
    "unknown-default",
    "external-blocked",
    "duplicate-name",
    "duplicate-extension",
    "extension-of-a-queue",
    "short-extension",
    "no-capacity",
    "no-provider-agent",
]


@pytest.mark.parametrize(("overrides", "code", "field"), VALIDATION_CASES, ids=VALIDATION_IDS)
def test_create_validation_errors_change_nothing(
    caller: Caller,
    acme: ContactCenter,
    vapi: ProviderIntegration,
    vapi_fake: VapiFake,
    bot: VirtualAgent,
    overrides: dict[str, Any],
    code: str,
    field: str,
) -> None:
    acme.external_transfer_policy = ExternalTransferPolicy.BLOCKED
    acme.save()
    payload = {"integration": str(vapi.pk), "provider_agent_id": "asst-03", "name": "Second", **overrides}
    requests_before = len(vapi_fake.requests)

    with nothing_changes():
        response = caller.post(VIRTUAL_AGENTS, payload)

    assert response.status_code == 400, response.content
    assert error_code(response) == code
    assert field in secret_free(response)["error"]["fields"]
    assert len(vapi_fake.requests) == requests_before


@pytest.mark.parametrize("sip_uri", ["", "http://bot.example.com", "sip:bot@host name", "bot@10.0.0.5"])
def test_a_generic_sip_agent_needs_a_valid_sip_uri(
    caller: Caller, house_bot: ProviderIntegration, sip_uri: str
) -> None:
    with nothing_changes():
        response = caller.post(
            VIRTUAL_AGENTS, {"integration": str(house_bot.pk), "name": "IVR bot", "sip_uri": sip_uri}
        )

    assert response.status_code == 400
    assert error_code(response) == "invalid_sip_uri"
    assert "sip_uri" in response.json()["error"]["fields"]


def test_another_centers_integration_cannot_be_used(caller: Caller, initech: ContactCenter) -> None:
    theirs = services.create_integration(
        center=initech, provider="generic_sip", label="Initech bot", credentials=None, by="tests"
    )

    with nothing_changes():
        response = caller.post(
            VIRTUAL_AGENTS, {"integration": str(theirs.pk), "name": "Stolen", "sip_uri": "sip:bot@10.0.0.5"}
        )

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["fields"]["integration"] == [
        f'Invalid pk "{theirs.pk}" - object does not exist.'
    ]


# --- virtual agents: actions -------------------------------------------------------------


def test_connect_configures_the_provider(caller: Caller, bot: VirtualAgent, vapi_fake: VapiFake) -> None:
    response = caller.post(agent_url(bot, "connect"), {})

    assert response.status_code == 200, response.content
    body = secret_free(response)
    assert body["connected"] is True and body["sip_uri"].startswith("sip:+1999")
    assert vapi_fake.violations == []
    bot.refresh_from_db()
    assert bot.is_connected and bot.sip_uri == body["sip_uri"]
    assert len(vapi_fake.phone_numbers) == 1 and len(vapi_fake.credentials) == 1
    assert services.adapter(bot.integration).configured_transfers(
        agent_id="asst-01", state=bot.provider_state
    ) == ["sip:4323@acme.voiso.com"]
    event = last_event("virtual_agent.connected")
    assert event.target_id == str(bot.pk)
    caller.assert_acted(event)


def test_a_provider_failure_during_connect_changes_nothing(
    caller: Caller, bot: VirtualAgent, vapi_fake: VapiFake
) -> None:
    vapi_fake.fail("POST", "/tool", 503)

    with nothing_changes():
        response = caller.post(agent_url(bot, "connect"), {})

    assert response.status_code == 502
    assert error_code(response) == "provider_provider_unavailable"
    secret_free(response)
    assert vapi_fake.phone_numbers == {} and vapi_fake.credentials == {}  # undone at Vapi
    assert vapi_fake.violations == []


def test_check_handoffs_finds_a_deleted_queue(
    caller: Caller, live_bot: VirtualAgent, sales: Queue, vapi_fake: VapiFake
) -> None:
    ok = caller.get(agent_url(live_bot, "check_handoffs"))
    assert ok.status_code == 200
    assert [row["is_ok"] for row in secret_free(ok)] == [True, True]

    delete_queue(queue=sales, by="tests")
    with nothing_changes():
        response = caller.get(agent_url(live_bot, "check_handoffs"))

    assert response.status_code == 200
    rows = {row["sip_uri"]: row for row in secret_free(response)}
    assert rows["sip:4323@acme.voiso.com"]["is_ok"] is False
    assert rows["sip:4323@acme.voiso.com"]["problem"] == "Queue Sales (4323) was deleted."
    assert rows["sip:4400@acme.voiso.com"] == {
        "sip_uri": "sip:4400@acme.voiso.com",
        "is_ok": True,
        "resolves_to": "Queue Support (4400)",
        "problem": "",
    }
    assert vapi_fake.violations == []


def test_check_handoffs_needs_a_connected_agent(caller: Caller, bot: VirtualAgent) -> None:
    response = caller.get(agent_url(bot, "check_handoffs"))

    assert response.status_code == 400
    assert error_code(response) == "not_connected"


def test_disconnect_undoes_the_provider_setup(
    caller: Caller, live_bot: VirtualAgent, vapi_fake: VapiFake
) -> None:
    response = caller.post(agent_url(live_bot, "disconnect"), {})

    assert response.status_code == 200, response.content
    body = secret_free(response)
    assert body["connected"] is False and body["enabled"] is False and body["sip_uri"] == ""
    live_bot.refresh_from_db()
    assert not live_bot.is_connected and live_bot.provider_state == {}
    assert vapi_fake.phone_numbers == {} and vapi_fake.credentials == {}
    assert vapi_fake.assistants["asst-02"]["model"]["toolIds"] == list(VapiFake.CUSTOMER_TOOLS)
    assert vapi_fake.violations == []
    event = last_event("virtual_agent.disconnected")
    assert event.target_id == str(live_bot.pk)
    caller.assert_acted(event)


def test_disconnect_reports_what_the_provider_kept(
    caller: Caller, live_bot: VirtualAgent, vapi_fake: VapiFake
) -> None:
    vapi_fake.fail("DELETE", "/tool/", 409, body={"message": "tool_pinned", "statusCode": 409})

    response = caller.post(agent_url(live_bot, "disconnect"), {})

    assert response.status_code == 200, response.content
    body = secret_free(response)
    assert body["connected"] is False
    assert len(body["left_at_provider"]) == 1 and "Vapi kept the transfer tool" in body["left_at_provider"][0]
    assert vapi_fake.phone_numbers == {} and vapi_fake.credentials == {}
    assert caller.get(agent_url(live_bot)).json()["left_at_provider"] == body["left_at_provider"]


def test_changing_handoff_targets_pushes_them_to_the_provider(
    caller: Caller, live_bot: VirtualAgent, vapi_fake: VapiFake, agent: Persona
) -> None:
    response = caller.patch(agent_url(live_bot), {"handoff_targets": ["4400", "1001"]})

    assert response.status_code == 200, response.content
    assert [t["sip_uri"] for t in secret_free(response)["handoff_targets"]] == [
        "sip:4400@acme.voiso.com",
        "sip:1001@acme.voiso.com",
    ]
    live_bot.refresh_from_db()
    assert services.adapter(live_bot.integration).configured_transfers(
        agent_id="asst-02", state=live_bot.provider_state
    ) == ["sip:4400@acme.voiso.com", "sip:1001@acme.voiso.com"]
    assert vapi_fake.violations == []
    event = last_event("virtual_agent.updated")
    assert event.changes["handoff_targets"] == {
        "from": ["sip:4323@acme.voiso.com", "sip:4400@acme.voiso.com"],
        "to": ["sip:4400@acme.voiso.com", "sip:1001@acme.voiso.com"],
    }
    caller.assert_acted(event)


def test_a_provider_refusing_new_targets_changes_nothing(
    caller: Caller, live_bot: VirtualAgent, vapi_fake: VapiFake
) -> None:
    vapi_fake.fail("PATCH", "/tool", 500)

    with nothing_changes():
        response = caller.patch(agent_url(live_bot), {"handoff_targets": ["4400"], "name": "Renamed"})

    assert response.status_code == 502
    assert error_code(response) == "provider_provider_unavailable"
    assert response.json()["error"]["fields"] == {"handoff_targets": [response.json()["error"]["message"]]}


def test_update_fields(caller: Caller, bot: VirtualAgent) -> None:
    response = caller.patch(
        agent_url(bot),
        {"name": "Reception", "extension": "7005", "max_concurrent_calls": 25, "enabled": False},
    )

    assert response.status_code == 200, response.content
    body = secret_free(response)
    assert (body["name"], body["extension"], body["max_concurrent_calls"], body["enabled"]) == (
        "Reception",
        "7005",
        25,
        False,
    )
    bot.refresh_from_db()
    assert (bot.name, bot.extension.digits, bot.max_concurrent_calls, bot.is_enabled) == (
        "Reception",
        "7005",
        25,
        False,
    )
    event = last_event("virtual_agent.updated")
    assert event.changes["name"] == {"from": "Front desk", "to": "Reception"}
    assert event.changes["extension"] == {"from": "7001", "to": "7005"}
    caller.assert_acted(event)


@pytest.mark.parametrize(("overrides", "code", "field"), VALIDATION_CASES[:7], ids=VALIDATION_IDS[:7])
def test_update_validation_errors_change_nothing(
    caller: Caller,
    acme: ContactCenter,
    vapi: ProviderIntegration,
    bot: VirtualAgent,
    overrides: dict[str, Any],
    code: str,
    field: str,
) -> None:
    acme.external_transfer_policy = ExternalTransferPolicy.BLOCKED
    acme.save()
    other = services.create_virtual_agent(
        integration=vapi, by="tests", name="Other", provider_agent_id="asst-03", extension="7009"
    )
    # The same clashes, seen from the other agent: bot holds the name and extension 7001.

    with nothing_changes():
        response = caller.patch(agent_url(other), overrides)

    assert response.status_code == 400, response.content
    assert error_code(response) == code
    assert field in response.json()["error"]["fields"]


def test_update_the_sip_uri_of_a_generic_sip_agent(caller: Caller, house_bot: ProviderIntegration) -> None:
    house_agent = services.create_virtual_agent(
        integration=house_bot, by="tests", name="IVR bot", sip_uri="sip:bot@10.0.0.5"
    )

    with nothing_changes():
        refused = caller.patch(agent_url(house_agent), {"sip_uri": "tel:+12125550199"})
    assert refused.status_code == 400 and error_code(refused) == "invalid_sip_uri"

    response = caller.patch(agent_url(house_agent), {"sip_uri": "sips:bot@bots.example.com"})
    assert response.status_code == 200, response.content
    house_agent.refresh_from_db()
    assert house_agent.sip_uri == "sips:bot@bots.example.com"


def test_delete_is_refused_while_connected(
    caller: Caller, live_bot: VirtualAgent, vapi_fake: VapiFake
) -> None:
    with nothing_changes():
        response = caller.delete(agent_url(live_bot))

    assert response.status_code == 400
    assert error_code(response) == "still_connected"
    assert len(vapi_fake.phone_numbers) == 1

    assert caller.post(agent_url(live_bot, "disconnect"), {}).status_code == 200
    response = caller.delete(agent_url(live_bot))

    assert response.status_code == 204
    assert not VirtualAgent.objects.filter(pk=live_bot.pk).exists()
    assert not Extension.objects.filter(digits="7002").exists()
    assert not HandoffTarget.objects.filter(virtual_agent_id=live_bot.pk).exists()
    event = last_event("virtual_agent.deleted")
    assert event.changes == {"name": "Night desk", "extension": "7002"}
    caller.assert_acted(event)


# --- who may call what -------------------------------------------------------------------


@dataclass
class Objects:
    vapi: ProviderIntegration
    spare: ProviderIntegration  # no virtual agents: can be changed and deleted
    idle: VirtualAgent  # disconnected: can be connected, changed and deleted
    live: VirtualAgent  # connected: can be disconnected and checked


@pytest.fixture
def objects(
    vapi: ProviderIntegration, house_bot: ProviderIntegration, bot: VirtualAgent, live_bot: VirtualAgent
) -> Objects:
    return Objects(vapi=vapi, spare=house_bot, idle=bot, live=live_bot)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    url: Callable[[Objects], str]
    payload: Callable[[Objects], dict[str, Any]] | None
    allowed: int  # the administrator's status
    is_read: bool
    is_detail: bool = True


ENDPOINTS = [
    Endpoint("integration-list", "get", lambda o: INTEGRATIONS, None, 200, True, is_detail=False),
    Endpoint(
        "integration-create",
        "post",
        lambda o: INTEGRATIONS,
        lambda o: {"provider": "generic_sip", "label": "Another bot"},
        201,
        False,
        is_detail=False,
    ),
    Endpoint("integration-retrieve", "get", lambda o: integration_url(o.vapi), None, 200, True),
    Endpoint(
        "integration-patch",
        "patch",
        lambda o: integration_url(o.spare),
        lambda o: {"label": "Renamed"},
        200,
        False,
    ),
    Endpoint(
        "integration-put",
        "put",
        lambda o: integration_url(o.spare),
        lambda o: {"provider": "generic_sip", "label": "Renamed"},
        200,
        False,
    ),
    Endpoint("integration-delete", "delete", lambda o: integration_url(o.spare), None, 204, False),
    Endpoint(
        "integration-verify", "post", lambda o: integration_url(o.vapi, "verify"), lambda o: {}, 200, False
    ),
    Endpoint("integration-agents", "get", lambda o: integration_url(o.vapi, "agents"), None, 200, True),
    Endpoint("agent-list", "get", lambda o: VIRTUAL_AGENTS, None, 200, True, is_detail=False),
    Endpoint(
        "agent-create",
        "post",
        lambda o: VIRTUAL_AGENTS,
        lambda o: {"integration": str(o.vapi.pk), "name": "New bot", "provider_agent_id": "asst-04"},
        201,
        False,
        is_detail=False,
    ),
    Endpoint("agent-retrieve", "get", lambda o: agent_url(o.idle), None, 200, True),
    Endpoint(
        "agent-patch", "patch", lambda o: agent_url(o.idle), lambda o: {"max_concurrent_calls": 3}, 200, False
    ),
    Endpoint(
        "agent-put",
        "put",
        lambda o: agent_url(o.idle),
        lambda o: {"name": "Front desk", "max_concurrent_calls": 3},
        200,
        False,
    ),
    Endpoint("agent-delete", "delete", lambda o: agent_url(o.idle), None, 204, False),
    Endpoint("agent-connect", "post", lambda o: agent_url(o.idle, "connect"), lambda o: {}, 200, False),
    Endpoint("agent-disconnect", "post", lambda o: agent_url(o.live, "disconnect"), lambda o: {}, 200, False),
    Endpoint("agent-check-handoffs", "get", lambda o: agent_url(o.live, "check_handoffs"), None, 200, True),
]
ENDPOINT_IDS = [e.name for e in ENDPOINTS]


def call(client: Client, endpoint: Endpoint, objects: Objects, headers: dict[str, str]) -> Any:
    url = endpoint.url(objects)
    if endpoint.payload is None:
        return getattr(client, endpoint.method)(url, **headers)
    return getattr(client, endpoint.method)(
        url, endpoint.payload(objects), content_type="application/json", **headers
    )


def session(membership: Membership) -> Client:
    client = Client()
    assert client.login(username=membership.user.email, password=PASSWORD)
    return client


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_administrators_may_call_everything(
    caller: Caller, objects: Objects, vapi_fake: VapiFake, endpoint: Endpoint
) -> None:
    response = call(caller.client, endpoint, objects, caller.headers)

    assert response.status_code == endpoint.allowed, response.content
    secret_free(response)
    assert vapi_fake.violations == []
    if not endpoint.is_read and endpoint.name != "integration-verify":  # verify audits a change only
        caller.assert_acted(AuditEvent.objects.latest("created", "id"))


@pytest.fixture(params=["supervisor-session", "read-key"])
def reader(request: pytest.FixtureRequest, api_keys: dict[str, str]) -> tuple[Client, dict[str, str]]:
    if request.param == "supervisor-session":
        return request.getfixturevalue("supervisor").client, {}
    return Client(), bearer(api_keys[ApiKeyScope.READ])


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_supervisors_and_read_keys_see_but_cannot_change(
    reader: tuple[Client, dict[str, str]], objects: Objects, vapi_fake: VapiFake, endpoint: Endpoint
) -> None:
    client, headers = reader
    provider_writes_before = provider_writes(vapi_fake)

    with nothing_changes():
        response = call(client, endpoint, objects, headers)

    if endpoint.is_read:
        assert response.status_code == 200, response.content
        secret_free(response)
    else:
        assert response.status_code == 403
        assert error_code(response) == "permission_denied"
    assert provider_writes(vapi_fake) == provider_writes_before


@pytest.fixture(params=["agent-session", "telephony-key"])
def refused(request: pytest.FixtureRequest, api_keys: dict[str, str]) -> tuple[Client, dict[str, str]]:
    if request.param == "agent-session":
        return request.getfixturevalue("agent").client, {}
    return Client(), bearer(api_keys[ApiKeyScope.TELEPHONY])


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_agents_and_telephony_keys_are_refused(
    refused: tuple[Client, dict[str, str]], objects: Objects, vapi_fake: VapiFake, endpoint: Endpoint
) -> None:
    client, headers = refused
    requests_before = len(vapi_fake.requests)

    with nothing_changes():
        response = call(client, endpoint, objects, headers)

    assert response.status_code == 403
    assert error_code(response) == "permission_denied"
    assert len(vapi_fake.requests) == requests_before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_anonymous_callers_are_401(objects: Objects, vapi_fake: VapiFake, endpoint: Endpoint) -> None:
    requests_before = len(vapi_fake.requests)

    with nothing_changes():
        response = call(Client(), endpoint, objects, {})

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"
    assert len(vapi_fake.requests) == requests_before


@pytest.fixture(params=["session", "admin-key"])
def globex_admin(
    request: pytest.FixtureRequest, outsider: Persona, globex_admin_key: str
) -> tuple[Client, dict[str, str]]:
    if request.param == "session":
        return outsider.client, {}
    return Client(), bearer(globex_admin_key)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_center_without_byob_is_refused_with_byob_disabled(
    globex_admin: tuple[Client, dict[str, str]], objects: Objects, vapi_fake: VapiFake, endpoint: Endpoint
) -> None:
    client, headers = globex_admin
    requests_before = len(vapi_fake.requests)

    with nothing_changes():
        response = call(client, endpoint, objects, headers)

    assert response.status_code == 403
    assert error_code(response) == "byob_disabled"
    secret_free(response)
    assert len(vapi_fake.requests) == requests_before


@pytest.fixture(params=["session", "admin-key"])
def initech_admin(request: pytest.FixtureRequest, initech: ContactCenter) -> tuple[Client, dict[str, str]]:
    if request.param == "session":
        return session(
            Membership.objects.get(contact_center=initech, user__email="admin@initech.example")
        ), {}
    return Client(), bearer(make_api_key(initech, ApiKeyScope.ADMIN)[1])


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.is_detail], ids=lambda e: e.name)
def test_another_tenants_objects_are_not_found(
    initech_admin: tuple[Client, dict[str, str]], objects: Objects, vapi_fake: VapiFake, endpoint: Endpoint
) -> None:
    client, headers = initech_admin
    requests_before = len(vapi_fake.requests)

    with nothing_changes():
        response = call(client, endpoint, objects, headers)

    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert len(vapi_fake.requests) == requests_before


def test_another_tenant_lists_none_of_acmes_objects(
    initech_admin: tuple[Client, dict[str, str]], objects: Objects
) -> None:
    client, headers = initech_admin

    integrations = client.get(INTEGRATIONS, **headers)
    agents = client.get(VIRTUAL_AGENTS, **headers)

    assert integrations.status_code == agents.status_code == 200
    assert integrations.json()["results"] == [] and agents.json()["results"] == []


def test_a_members_own_extension_can_be_a_target(
    caller: Caller, bot: VirtualAgent, acme: ContactCenter
) -> None:
    member = make_member(acme, extension="1077")

    response = caller.patch(agent_url(bot), {"handoff_targets": ["1077"], "default_handoff": "1077"})

    assert response.status_code == 200, response.content
    body = secret_free(response)
    assert body["default_handoff"] == "1077"
    assert body["handoff_targets"] == [
        {
            "label": f"{member.user.display_name} (1077)",
            "sip_uri": "sip:1077@acme.voiso.com",
            "extension": "1077",
            "number": "",
        }
    ]
