"""An administrator connects a Vapi bot through the wizard, against the local Vapi stand-in."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.browser.conftest import snap
from tests.browser.test_portal import log_in
from tests.virtual_agents.fake_providers import API_KEYS
from virtual_agents.models import VirtualAgent
from voiso_byob.management.commands.seed_demo import ADMIN_EMAIL, SUPERVISOR_EMAIL

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_wizard_connects_a_vapi_bot_and_shows_copy_ready_handoff_uris(
    browser_page, vapi_fake, settings
) -> None:
    settings.SIP_PROXY_ADDRESSES = ["203.0.113.10"]
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    log_in(page, ADMIN_EMAIL)
    page.click("nav.mainnav >> text=Virtual agents")
    page.click("text=Connect a bot")
    page.check("input[value=vapi]")
    page.click("button:has-text('Next')")

    # A wrong key: the provider's refusal in plain words, nothing stored.
    page.fill("input[name=label]", "Vapi production")
    page.fill("input[name=api_key]", "not-the-key")
    page.click("button:has-text('Verify and continue')")
    page.wait_for_selector(".field.has-error")
    assert "Vapi rejected the API key." in page.locator(".field.has-error").inner_text()
    assert page.locator("input[name=api_key]").input_value() == ""  # never rendered back

    page.fill("input[name=api_key]", API_KEYS["vapi"])
    page.click("button:has-text('Verify and continue')")
    page.wait_for_url("**/integrations/*/agents/new/")

    snap(page, "wizard-pick-agent")
    page.check("text=Sales bot (asst-01)")
    page.fill("input[name=name]", "Sales assistant")
    page.fill("input[name=extension]", "7001")
    page.check("text=Queue Sales · 4323")
    page.check("text=Ana Duarte · 1001")
    page.fill("textarea[name=external_numbers]", "+12125550199")
    page.click("button:has-text('Connect')")
    page.wait_for_url("**/virtual-agents/*/")

    assert page.locator("h1").inner_text() == "Sales assistant"
    assert "connected" in page.locator("dl.facts").first.inner_text()
    targets = page.locator("section", has_text="Handoff targets in the bot's transfer tool").inner_text()
    assert "sip:4323@acme.voiso.com" in targets and "sip:1001@acme.voiso.com" in targets
    assert "sip:+12125550199@acme.voiso.com;user=phone" in targets
    assert page.locator("#uri-4400").inner_text() == "sip:4400@acme.voiso.com"
    page.click("button[data-copy='#uri-4323']")
    assert page.evaluate("navigator.clipboard.readText()") == "sip:4323@acme.voiso.com"

    page.click("button:has-text('Check handoff targets')")
    page.wait_for_selector("#check table")
    assert page.locator("#check .badge.danger").count() == 0
    assert page.locator("#check .badge.ok").count() == 3
    snap(page, "wizard-connected-agent")

    # The stand-in received only documented requests, and the secret never reached the page.
    assert vapi_fake.violations == []
    assert ("POST", "/credential") in vapi_fake.calls and ("POST", "/tool") in vapi_fake.calls
    assert API_KEYS["vapi"] not in page.content()
    agent = VirtualAgent.objects.get(name="Sales assistant")
    assert agent.is_connected and agent.provider_state["tool_id"]

    page.click("button:has-text('Log out')")
    log_in(page, SUPERVISOR_EMAIL)
    page.goto(f"/virtual-agents/{agent.pk}/")
    assert page.locator("h1").inner_text() == "Sales assistant"
    assert (
        page.locator("text=Edit").count() == 0 and page.locator("button:has-text('Disconnect')").count() == 0
    )
    assert page.goto(f"/virtual-agents/{agent.pk}/edit/").status == 403


@pytest.mark.parametrize("provider", ["elevenlabs", "retell", "generic_sip"])
def test_wizard_connects_each_provider_kind(browser_page, provider: str, request) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    fake = request.getfixturevalue(f"{provider}_fake") if provider != "generic_sip" else None
    page = browser_page
    log_in(page, ADMIN_EMAIL)
    page.goto("/virtual-agents/connect/")
    page.check(f"input[value={provider}]")
    page.click("button:has-text('Next')")
    page.fill("input[name=label]", f"{provider} account")
    if fake is not None:
        page.fill("input[name=api_key]", API_KEYS[provider])
        page.click("button:has-text('Verify and continue')")
    else:
        page.click("#step button:has-text('Next')")
    page.wait_for_url("**/integrations/*/agents/new/")

    if fake is not None:
        page.check("text=Support bot (agent_02)")
    else:
        page.fill("input[name=sip_uri]", "sip:frontdesk@bots.example.net;transport=tls")
    page.fill("input[name=name]", "Front desk")
    page.check("text=Queue Support · 4400")
    page.click("button:has-text('Connect')")
    page.wait_for_url("**/virtual-agents/*/")

    agent = VirtualAgent.objects.get(name="Front desk")
    assert agent.is_connected
    assert agent.provider_state["transfers"] == ["sip:4400@acme.voiso.com"]
    facts = page.locator("dl.facts").first.inner_text()
    assert agent.sip_uri in facts
    if fake is None:
        assert agent.sip_uri == "sip:frontdesk@bots.example.net;transport=tls"
        assert "paste the handoff URIs" in page.content()
    else:
        assert fake.violations == []
        assert API_KEYS[provider] not in page.content()
    assert page.locator("#uri-4323").inner_text() == "sip:4323@acme.voiso.com"
