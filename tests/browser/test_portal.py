"""An administrator creates a queue in the browser; a supervisor sees it but cannot change it."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from routing.models import Queue
from voiso_byob.management.commands.seed_demo import ADMIN_EMAIL, DEMO_PASSWORD, SUPERVISOR_EMAIL

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_admin_creates_queue_and_supervisor_cannot_edit(browser_page) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = browser_page

    log_in(page, ADMIN_EMAIL)
    assert page.locator("h1").inner_text() == "Acme Support"
    page.click("nav.mainnav >> text=Routing")
    page.click("text=New queue")
    page.fill("input[name=name]", "Escalations")
    page.fill("input[name=extension]", "4600")
    page.check("text=Ana Duarte · 1001")
    page.click("button:has-text('Create queue')")
    page.wait_for_url("**/routing/queues/")
    row = page.locator("tr", has_text="Escalations")
    assert row.locator("td").nth(1).inner_text() == "4600"
    assert "sip:4600@acme.voiso.com" in row.inner_text()
    assert Queue.objects.get(name="Escalations").members.get().user.email == "ana@acme.example"

    # A taken extension is refused inline, and nothing is created.
    page.click("text=New queue")
    page.fill("input[name=name]", "Duplicate")
    page.fill("input[name=extension]", "4600")
    page.click("button:has-text('Create queue')")
    assert "Extension 4600 is already in use." in page.locator(".field.has-error").inner_text()
    assert not Queue.objects.filter(name="Duplicate").exists()

    page.click("button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/")

    log_in(page, SUPERVISOR_EMAIL)
    page.click("nav.mainnav >> text=Routing")
    assert page.locator("tr", has_text="Escalations").count() == 1
    assert page.locator("text=New queue").count() == 0
    assert page.locator("a:has-text('Edit'), a:has-text('Delete')").count() == 0
    # The server refuses the write even if the supervisor types the URL.
    response = page.goto("/routing/queues/new/")
    assert response is not None and response.status == 403
