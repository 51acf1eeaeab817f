"""Setting up provider webhooks: the URL to paste, the write-only secret, on the page and the API.

Administrators set or replace the secret; supervisors see the URL and whether a secret is set;
agents and read/telephony keys are refused; another center's integration is 404. The secret
is never rendered, serialized, audited or logged.
"""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse

from reporting.models import ProviderCallReport
from tests.conftest import Caller, Persona, bearer, error_code
from tests.factories import PASSWORD, make_api_key, make_center
from tests.reporting import webhook_payloads as wp
from tests.virtual_agents.fake_providers import API_KEYS, ElevenLabsFake
from virtual_agents import services
from virtual_agents.models import ProviderIntegration
from voiso_byob.models import ApiKeyScope, AuditEvent, ContactCenter, Membership

SECRET = "wsec_setup_4f1c9e0b2a7d4c8e9f60a1b2c3d4e5f6"
NEW_SECRET = "wsec_setup_rotated_00112233445566778899"


@pytest.fixture
def eleven(acme: ContactCenter, elevenlabs_fake: ElevenLabsFake) -> ProviderIntegration:
    return services.create_integration(
        center=acme,
        provider="elevenlabs",
        label="ElevenLabs",
        credentials={"api_key": API_KEYS["elevenlabs"]},
        by="tests",
    )


@pytest.fixture
def initech_admin(db: None) -> Persona:
    """Administrator of another center that uses BYOB too: past the BYOB gate, acme's objects are 404."""
    center = make_center("initech", name="Initech", byob_enabled=True)
    client = Client()
    membership = Membership.objects.get(contact_center=center, user__email="admin@initech.example")
    assert client.login(username=membership.user.email, password=PASSWORD)
    return Persona(membership=membership, client=client)


@pytest.fixture
def house(acme: ContactCenter) -> ProviderIntegration:
    return services.create_integration(
        center=acme, provider="generic_sip", label="House bot", credentials=None, by="tests"
    )


def detail(integration: ProviderIntegration) -> str:
    return reverse("virtual_agents:integration_detail", args=[integration.pk])


def edit(integration: ProviderIntegration) -> str:
    return reverse("virtual_agents:integration_edit", args=[integration.pk])


def api(integration: ProviderIntegration) -> str:
    return f"/api/v1/integrations/{integration.pk}/"


def webhook_path(integration: ProviderIntegration) -> str:
    return f"/api/v1/webhooks/{integration.provider}/{integration.pk}/"


def stored_secret(integration: ProviderIntegration) -> str | None:
    integration.refresh_from_db()
    return integration.credentials.get("webhook_secret")


# --- the page ------------------------------------------------------------------------------


def test_the_integration_page_shows_the_url_to_paste_and_whether_a_secret_is_set(admin, eleven) -> None:
    page = admin.client.get(detail(eleven)).content.decode()
    assert f"http://testserver{webhook_path(eleven)}" in page
    assert "Not set: reports are refused until it is" in page

    services.update_integration(integration=eleven, by="tests", webhook_secret=SECRET)
    page = admin.client.get(detail(eleven)).content.decode()
    assert "Set <span" in page and SECRET not in page


def test_the_vapi_page_says_exactly_what_to_configure_and_other_pages_do_not(
    admin: Persona, acme, vapi_fake, eleven
) -> None:
    vapi = services.create_integration(
        center=acme, provider="vapi", label="Vapi", credentials={"api_key": API_KEYS["vapi"]}, by="tests"
    )
    page = admin.client.get(detail(vapi)).content.decode()

    # The names and values the verifier accepts, as Vapi's credential form asks for them.
    for hint in (
        "<code>x-signature</code>",
        "<code>x-timestamp</code>",
        "<code>{timestamp}.{body}</code>",
        "<code>sha256</code> or <code>sha512</code>",
        "<code>hex</code> or <code>base64</code>",
        "<code>Authorization</code>",
        "<code>X-Vapi-Secret</code>",
        "server.credentialId",
    ):
        assert hint in page, hint
    assert 'id="vapi-webhook-setup"' not in admin.client.get(detail(eleven)).content.decode()


def test_an_administrator_sets_then_replaces_the_secret_and_it_is_audited_not_shown(
    admin: Persona, eleven, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    form = admin.client.get(edit(eleven)).content.decode()
    assert 'name="webhook_secret"' in form and 'type="password"' in form

    response = admin.client.post(edit(eleven), {"label": "ElevenLabs", "webhook_secret": SECRET})
    assert response.status_code == 302
    assert stored_secret(eleven) == SECRET
    event = AuditEvent.objects.get(action="integration.updated")
    assert event.actor == admin.user and event.changes == {"webhook_secret": "set"}

    admin.client.post(edit(eleven), {"label": "ElevenLabs", "webhook_secret": NEW_SECRET})
    assert stored_secret(eleven) == NEW_SECRET
    assert AuditEvent.objects.filter(action="integration.updated").latest("id").changes == {
        "webhook_secret": "replaced"
    }
    # Empty keeps it.
    admin.client.post(edit(eleven), {"label": "ElevenLabs 2", "webhook_secret": ""})
    assert stored_secret(eleven) == NEW_SECRET

    everything = (
        admin.client.get(edit(eleven)).content.decode() + admin.client.get(detail(eleven)).content.decode()
    )
    audit_page = admin.client.get(reverse("audit_list")).content.decode()
    for secret in (SECRET, NEW_SECRET):
        assert secret not in everything and secret not in audit_page and secret not in caplog.text
        assert all(secret not in str(e.changes) for e in AuditEvent.objects.all())


def test_a_refused_secret_changes_nothing(admin: Persona, eleven) -> None:
    response = admin.client.post(edit(eleven), {"label": "Renamed", "webhook_secret": "short"})
    assert response.status_code == 400
    assert "Paste the signing secret exactly" in response.content.decode()
    eleven.refresh_from_db()
    assert eleven.label == "ElevenLabs" and "webhook_secret" not in eleven.credentials
    assert not AuditEvent.objects.filter(action="integration.updated").exists()


def test_a_new_api_key_keeps_the_webhook_secret(eleven, elevenlabs_fake) -> None:
    services.update_integration(integration=eleven, by="tests", webhook_secret=SECRET)
    elevenlabs_fake.api_key = API_KEYS["elevenlabs"] + "x"  # rotated at ElevenLabs
    services.update_integration(
        integration=eleven, by="tests", credentials={"api_key": API_KEYS["elevenlabs"] + "x"}
    )
    eleven.refresh_from_db()
    assert eleven.credentials == {"api_key": API_KEYS["elevenlabs"] + "x", "webhook_secret": SECRET}


def test_retell_asks_for_an_optional_webhook_key_and_generic_sip_for_nothing(
    admin: Persona, acme, retell_fake, house
) -> None:
    retell = services.create_integration(
        center=acme,
        provider="retell",
        label="Retell",
        credentials={"api_key": API_KEYS["retell"]},
        by="tests",
    )
    retell_form = admin.client.get(edit(retell)).content.decode()
    assert "Webhook key" in retell_form and "webhook badge" in retell_form
    assert "The API key above" in admin.client.get(detail(retell)).content.decode()

    assert 'name="webhook_secret"' not in admin.client.get(edit(house)).content.decode()
    assert "/api/v1/webhooks/" not in admin.client.get(detail(house)).content.decode()


def test_supervisors_see_the_url_but_cannot_set_the_secret(supervisor: Persona, eleven) -> None:
    page = supervisor.client.get(detail(eleven))
    assert page.status_code == 200 and webhook_path(eleven) in page.content.decode()
    assert edit(eleven) not in page.content.decode()
    assert supervisor.client.post(edit(eleven), {"label": "x", "webhook_secret": SECRET}).status_code == 403
    assert stored_secret(eleven) is None


def test_agents_outsiders_and_anonymous_are_refused(
    agent: Persona, initech_admin: Persona, anonymous, eleven
) -> None:
    data = {"label": "x", "webhook_secret": SECRET}
    assert agent.client.get(detail(eleven)).status_code == 403
    assert agent.client.post(edit(eleven), data).status_code == 403
    assert initech_admin.client.get(detail(eleven)).status_code == 404
    assert initech_admin.client.post(edit(eleven), data).status_code == 404
    response = anonymous.post(edit(eleven), data)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert stored_secret(eleven) is None


# --- the API -------------------------------------------------------------------------------


def test_the_api_sets_the_secret_write_only(caller: Caller, eleven) -> None:
    response = caller.patch(api(eleven), {"webhook_secret": SECRET})

    assert response.status_code == 200, response.content
    body = response.json()
    assert SECRET not in response.content.decode() and "webhook_secret" not in body
    assert body["webhook_secret_set"] is True
    assert body["webhook_url"] == f"http://testserver{webhook_path(eleven)}"
    assert stored_secret(eleven) == SECRET
    caller.assert_acted(AuditEvent.objects.get(action="integration.updated"))
    listed = caller.get("/api/v1/integrations/")
    assert SECRET not in listed.content.decode() and listed.json()["results"][0]["webhook_secret_set"] is True


def test_the_api_shows_no_secret_and_no_url_for_a_generic_sip_bot(caller: Caller, house) -> None:
    body = caller.get(api(house)).json()
    assert body["webhook_secret_set"] is False and body["webhook_url"] is None
    response = caller.patch(api(house), {"webhook_secret": SECRET})
    assert response.status_code == 400 and error_code(response) == "invalid"
    assert response.json()["error"]["fields"] == {"webhook_secret": [response.json()["error"]["message"]]}
    assert stored_secret(house) is None


@pytest.mark.parametrize("secret", ["short", "has whitespace inside", "x" * 513])
def test_the_api_refuses_a_malformed_secret_and_changes_nothing(caller: Caller, eleven, secret) -> None:
    response = caller.patch(api(eleven), {"label": "Renamed", "webhook_secret": secret})
    assert response.status_code == 400
    eleven.refresh_from_db()
    assert eleven.label == "ElevenLabs" and "webhook_secret" not in eleven.credentials


def test_the_secret_can_be_given_when_the_integration_is_created(caller: Caller, elevenlabs_fake) -> None:
    response = caller.post(
        "/api/v1/integrations/",
        {
            "provider": "elevenlabs",
            "label": "EL",
            "credentials": {"api_key": API_KEYS["elevenlabs"]},
            "webhook_secret": SECRET,
        },
    )
    assert response.status_code == 201 and response.json()["webhook_secret_set"] is True
    assert SECRET not in response.content.decode()
    created = ProviderIntegration.objects.get(label="EL")
    assert created.credentials["webhook_secret"] == SECRET
    assert AuditEvent.objects.get(action="integration.created").changes["webhook_secret"] == "set"


@pytest.mark.parametrize("who", ["supervisor-session", "agent-session", "read-key", "telephony-key"])
def test_other_roles_and_scopes_cannot_set_the_secret(who, request, api_keys, eleven) -> None:
    if who.endswith("session"):
        client, headers = request.getfixturevalue(who.split("-")[0]).client, {}
    else:
        client, headers = Client(), bearer(api_keys[who.split("-")[0]])
    response = client.patch(
        api(eleven), {"webhook_secret": SECRET}, content_type="application/json", **headers
    )
    assert response.status_code == 403 and error_code(response) == "permission_denied"
    assert stored_secret(eleven) is None


def test_another_center_and_anonymous_cannot_set_the_secret(initech_admin: Persona, eleven) -> None:
    data = {"webhook_secret": SECRET}
    their_key = make_api_key(initech_admin.center, ApiKeyScope.ADMIN)[1]
    as_outsider = initech_admin.client.patch(api(eleven), data, content_type="application/json")
    by_their_key = Client().patch(api(eleven), data, content_type="application/json", **bearer(their_key))
    anonymous = Client().patch(api(eleven), data, content_type="application/json")
    assert as_outsider.status_code == by_their_key.status_code == 404
    assert error_code(as_outsider) == error_code(by_their_key) == "not_found"
    assert anonymous.status_code == 401
    assert stored_secret(eleven) is None


def test_once_set_the_provider_can_post_signed_reports(caller: Caller, eleven) -> None:
    caller.patch(api(eleven), {"webhook_secret": SECRET})
    body = wp.dumps(wp.elevenlabs_transcription())
    response = Client().post(
        webhook_path(eleven),
        data=body,
        content_type="application/json",
        **wp.elevenlabs_headers(body, SECRET),
    )
    assert response.status_code == 200 and ProviderCallReport.objects.get().integration == eleven


def test_read_scope_sees_whether_a_secret_is_set(api_keys, eleven) -> None:
    services.update_integration(integration=eleven, by="tests", webhook_secret=SECRET)
    response = Client().get(api(eleven), **bearer(api_keys[ApiKeyScope.READ]))
    assert response.status_code == 200 and response.json()["webhook_secret_set"] is True
    assert SECRET not in response.content.decode()
