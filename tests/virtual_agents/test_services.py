"""Integrations and virtual agents against the local provider stand-ins: all or nothing, audited."""

from __future__ import annotations

import logging

import pytest

from routing.services import delete_queue, update_queue
from tests.factories import make_member, make_queue
from tests.virtual_agents.fake_providers import API_KEYS
from virtual_agents import services
from virtual_agents.models import HandoffTarget, IntegrationStatus, ProviderIntegration, VirtualAgent
from voiso_byob.errors import DomainError
from voiso_byob.models import AuditEvent, Extension, ExternalTransferPolicy


def integrate(center, provider: str) -> ProviderIntegration:
    return services.create_integration(
        center=center,
        provider=provider,
        label=provider.title(),
        credentials={"api_key": API_KEYS[provider]},
        by="t",
    )


def counts() -> tuple[int, ...]:
    return (
        ProviderIntegration.objects.count(),
        VirtualAgent.objects.count(),
        HandoffTarget.objects.count(),
        Extension.objects.count(),
        AuditEvent.objects.count(),
    )


def test_byob_must_be_enabled(globex, vapi_fake) -> None:
    before = counts()
    with pytest.raises(DomainError) as caught:
        integrate(globex, "vapi")
    assert (caught.value.code, caught.value.status_code) == ("byob_disabled", 403)
    assert counts() == before and vapi_fake.requests == []


def test_a_refused_key_stores_nothing(acme, vapi_fake) -> None:
    before = counts()
    with pytest.raises(DomainError) as caught:
        services.create_integration(
            center=acme, provider="vapi", label="Vapi", credentials={"api_key": "wrong-key"}, by="t"
        )
    assert caught.value.code == "provider_auth_failed"
    assert caught.value.message == "Vapi rejected the API key."
    assert counts() == before


def test_integration_is_verified_and_audited_without_the_key(acme, elevenlabs_fake) -> None:
    integration = integrate(acme, "elevenlabs")
    assert integration.status == IntegrationStatus.CONNECTED and integration.last_verified_at
    assert integration.credentials_hint == "…" + API_KEYS["elevenlabs"][-4:]
    event = AuditEvent.objects.get(action="integration.created")
    assert API_KEYS["elevenlabs"] not in str(event.changes)


@pytest.mark.parametrize("provider", ["elevenlabs", "vapi", "retell"])
def test_connect_configures_the_provider_and_stores_its_ids(
    provider: str,
    acme,
    sales,
    request,
    caplog,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = request.getfixturevalue(f"{provider}_fake")
    member = make_member(acme, extension="1001")
    integration = integrate(acme, provider)
    agent_id = services.list_provider_agents(integration=integration)[0].id

    agent = services.create_virtual_agent(
        integration=integration,
        by="t",
        name="Front desk bot",
        provider_agent_id=agent_id,
        extension="7001",
        handoff_targets=["4323", member.extension.digits, "+12125550199"],
        default_handoff="4323",
        connect=True,
    )

    assert fake.violations == []
    agent.refresh_from_db()
    assert agent.is_connected and agent.sip_uri.startswith("sip:+1999")
    assert agent.provider_state["identifier"] in agent.sip_uri
    assert agent.provider_state["transfers"] == [
        "sip:4323@acme.voiso.com",
        "sip:1001@acme.voiso.com",
        "sip:+12125550199@acme.voiso.com;user=phone",
    ]
    assert (
        services.adapter(integration).configured_transfers(agent_id=agent_id, state=agent.provider_state)
        == agent.provider_state["transfers"]
    )
    assert agent.extension.digits == "7001" and agent.extension.kind == "virtual_agent"
    assert agent.default_handoff_extension == sales.extension
    assert AuditEvent.objects.filter(target_id=str(agent.pk), action="virtual_agent.connected").exists()
    assert API_KEYS[provider] not in caplog.text


def test_a_provider_failure_during_connect_leaves_nothing_anywhere(acme, sales, vapi_fake) -> None:
    integration = integrate(acme, "vapi")
    before = counts()
    vapi_fake.fail("POST", "/tool", 503)

    with pytest.raises(DomainError) as caught:
        services.create_virtual_agent(
            integration=integration,
            by="t",
            name="Bot",
            provider_agent_id="asst-01",
            extension="7001",
            handoff_targets=["4323"],
            connect=True,
        )

    assert caught.value.code == "provider_provider_unavailable"
    assert counts() == before  # no agent, no extension, no audit row
    assert vapi_fake.credentials == {} and vapi_fake.phone_numbers == {}  # undone at the provider
    assert vapi_fake.violations == []


def test_external_targets_respect_the_center_policy(acme, sales, vapi_fake) -> None:
    acme.external_transfer_policy = ExternalTransferPolicy.BLOCKED
    acme.save()
    integration = integrate(acme, "vapi")
    with pytest.raises(DomainError) as caught:
        services.create_virtual_agent(
            integration=integration,
            by="t",
            name="Bot",
            provider_agent_id="asst-01",
            handoff_targets=["+12125550199"],
            connect=True,
        )
    assert caught.value.code == "external_not_allowed"
    assert not VirtualAgent.objects.exists()


@pytest.mark.parametrize(
    ("targets", "code"),
    [(["9999"], "unknown_extension"), (["+1 555"], "invalid_number"), (["12a4"], "unknown_extension")],
)
def test_bad_targets_are_refused_before_the_provider_is_called(acme, vapi_fake, targets, code) -> None:
    integration = integrate(acme, "vapi")
    calls = len(vapi_fake.requests)
    with pytest.raises(DomainError) as caught:
        services.create_virtual_agent(
            integration=integration,
            by="t",
            name="Bot",
            provider_agent_id="asst-01",
            handoff_targets=targets,
            connect=True,
        )
    assert caught.value.code == code
    assert len(vapi_fake.requests) == calls


def test_changed_targets_are_pushed_to_the_provider_first(acme, sales, retell_fake) -> None:
    integration = integrate(acme, "retell")
    agent_id = services.list_provider_agents(integration=integration)[0].id
    agent = services.create_virtual_agent(
        integration=integration,
        by="t",
        name="Bot",
        provider_agent_id=agent_id,
        handoff_targets=["4323"],
        connect=True,
    )
    support = make_queue(acme, name="Support", extension="4400")

    retell_fake.fail("PATCH", "/update-retell-llm/", 500)
    with pytest.raises(DomainError):
        services.update_virtual_agent(agent=agent, by="t", handoff_targets=["4323", "4400"])
    assert list(agent.handoff_targets.values_list("sip_uri", flat=True)) == ["sip:4323@acme.voiso.com"]

    services.update_virtual_agent(agent=agent, by="t", handoff_targets=["4400"])
    agent.refresh_from_db()
    assert services.adapter(integration).configured_transfers(
        agent_id=agent_id, state=agent.provider_state
    ) == [f"sip:{support.extension.digits}@acme.voiso.com"]
    assert retell_fake.violations == []


def test_handoff_check_finds_deleted_and_renumbered_targets(acme, elevenlabs_fake) -> None:
    sales = make_queue(acme, name="Sales", extension="4323")
    support = make_queue(acme, name="Support", extension="4400")
    member = make_member(acme, extension="1001")
    integration = integrate(acme, "elevenlabs")
    agent_id = services.list_provider_agents(integration=integration)[0].id
    agent = services.create_virtual_agent(
        integration=integration,
        by="t",
        name="Bot",
        provider_agent_id=agent_id,
        handoff_targets=["4323", "4400", "1001"],
        connect=True,
    )
    assert all(row.is_ok for row in services.check_handoffs(agent=agent))

    delete_queue(queue=sales, by="t")
    update_queue(queue=support, by="t", extension="4401")
    rows = {row.sip_uri: row for row in services.check_handoffs(agent=agent)}

    assert not rows["sip:4323@acme.voiso.com"].is_ok
    assert "deleted" in rows["sip:4323@acme.voiso.com"].problem
    assert not rows["sip:4400@acme.voiso.com"].is_ok
    assert "4401" in rows["sip:4400@acme.voiso.com"].problem
    assert (
        rows["sip:1001@acme.voiso.com"].is_ok
        and member.user.email in rows["sip:1001@acme.voiso.com"].resolves_to
    )


def test_disconnect_undoes_the_provider_setup_and_keeps_the_agent(acme, sales, vapi_fake) -> None:
    integration = integrate(acme, "vapi")
    agent = services.create_virtual_agent(
        integration=integration,
        by="t",
        name="Bot",
        provider_agent_id="asst-02",
        extension="7001",
        handoff_targets=["4323"],
        connect=True,
    )
    services.disconnect_virtual_agent(agent=agent, by="t")
    agent.refresh_from_db()
    assert not agent.is_connected and not agent.is_enabled and agent.provider_state == {}
    assert vapi_fake.credentials == {} and vapi_fake.phone_numbers == {}
    assert vapi_fake.assistants["asst-02"]["model"]["toolIds"] == list(vapi_fake.CUSTOMER_TOOLS)

    services.connect_virtual_agent(agent=agent, by="t")  # and back again
    agent.refresh_from_db()
    assert agent.is_connected and len(vapi_fake.phone_numbers) == 1
    assert vapi_fake.violations == []


def test_delete_needs_disconnect_first_and_frees_the_extension(acme, vapi_fake) -> None:
    integration = integrate(acme, "vapi")
    agent = services.create_virtual_agent(
        integration=integration,
        by="t",
        name="Bot",
        provider_agent_id="asst-02",
        extension="7001",
        connect=True,
    )
    with pytest.raises(DomainError, match="Disconnect"):
        services.delete_virtual_agent(agent=agent, by="t")
    with pytest.raises(DomainError) as caught:
        services.delete_integration(integration=integration, by="t")
    assert caught.value.code == "integration_in_use"
    services.disconnect_virtual_agent(agent=agent, by="t")
    services.delete_virtual_agent(agent=VirtualAgent.objects.get(pk=agent.pk), by="t")
    assert not Extension.objects.filter(digits="7001").exists()
    services.delete_integration(integration=integration, by="t")
    assert not ProviderIntegration.objects.exists()


def test_generic_sip_bot_needs_a_valid_uri_and_no_provider(acme, sales) -> None:
    integration = services.create_integration(
        center=acme, provider="generic_sip", label="House bot", credentials=None, by="t"
    )
    with pytest.raises(DomainError) as caught:
        services.create_virtual_agent(
            integration=integration, by="t", name="Bot", sip_uri="http://bot", connect=True
        )
    assert caught.value.code == "invalid_sip_uri"
    agent = services.create_virtual_agent(
        integration=integration,
        by="t",
        name="Bot",
        sip_uri="sip:bot@10.0.0.5:5080;transport=tcp",
        handoff_targets=["4323"],
        connect=True,
    )
    assert agent.is_connected and agent.sip_uri == "sip:bot@10.0.0.5:5080;transport=tcp"
    assert [row.is_ok for row in services.check_handoffs(agent=agent)] == [True]


def test_verify_records_a_revoked_key(acme, retell_fake) -> None:
    integration = integrate(acme, "retell")
    retell_fake.fail("GET", "/get-concurrency", 401)
    integration = services.verify_integration(integration=integration, by="t")
    assert integration.status == IntegrationStatus.ERROR
    assert integration.last_error == "Retell AI rejected the API key."
    assert AuditEvent.objects.filter(action="integration.verified").count() == 1


def test_a_virtual_agent_with_an_extension_can_be_a_queue_member(acme) -> None:
    integration = services.create_integration(
        center=acme, provider="generic_sip", label="House bot", credentials=None, by="t"
    )
    bot = services.create_virtual_agent(
        integration=integration, by="t", name="Overflow bot", sip_uri="sip:bot@10.0.0.5", extension="7002"
    )
    silent = services.create_virtual_agent(
        integration=integration, by="t", name="Silent", sip_uri="sip:s@10.0.0.6"
    )
    queue = make_queue(acme, name="Overflow", extension="4600", virtual_agent_members=[bot])
    assert list(queue.virtual_agent_members.all()) == [bot]

    with pytest.raises(DomainError) as caught:
        update_queue(queue=queue, by="t", virtual_agent_members=[bot, silent])
    assert caught.value.code == "member_without_extension"
    with pytest.raises(DomainError) as caught:
        services.update_virtual_agent(agent=bot, by="t", extension="")
    assert caught.value.code == "extension_in_use" and "Overflow" in caught.value.message
    bot.refresh_from_db()
    assert bot.extension.digits == "7002"


def test_connecting_twice_is_refused_before_the_provider_is_called(acme, vapi_fake) -> None:
    integration = integrate(acme, "vapi")
    agent = services.create_virtual_agent(
        integration=integration, by="t", name="Bot", provider_agent_id="asst-01", connect=True
    )
    calls = len(vapi_fake.requests)
    with pytest.raises(DomainError) as caught:
        services.connect_virtual_agent(agent=agent, by="t")
    assert caught.value.code == "already_connected"
    assert len(vapi_fake.requests) == calls


def test_disconnecting_a_disconnected_agent_records_nothing(acme, vapi_fake) -> None:
    integration = integrate(acme, "vapi")
    agent = services.create_virtual_agent(
        integration=integration, by="t", name="Bot", provider_agent_id="asst-01"
    )
    events = AuditEvent.objects.count()
    services.disconnect_virtual_agent(agent=agent, by="t")
    assert AuditEvent.objects.count() == events
