"""An administrator creates a campaign, imports a CSV of leads, watches it import and starts it."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from campaigns.lead_imports import process_lead_imports
from campaigns.models import Campaign, CampaignStatus, LeadImportStatus
from routing.models import Queue
from tests.browser.conftest import snap
from tests.browser.test_portal import log_in
from voiso_byob.management.commands.seed_demo import ADMIN_EMAIL, SUPERVISOR_EMAIL

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LEADS_CSV = (
    "Number,Name,Source,Priority,X-Policy\n"
    "+14155550101,Ann Lee,web,10,P-100\n"
    "+14155550102,Bo Chan,web,,P-101\n"
    "not a number,Cy,web,,\n"
    "+14155550101,Ann Lee again,web,,\n"
)


def test_admin_creates_imports_and_starts_a_campaign(browser_page) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})

    log_in(page, ADMIN_EMAIL)
    page.click("nav.mainnav >> text=Campaigns")
    page.wait_for_url("**/campaigns/")
    assert page.locator("tr", has_text="Policy renewals").count() == 1
    snap(page, "campaigns-list")

    page.click("text=New campaign")
    page.fill("input[name=name]", "Spring winback")
    page.check("label:has-text('Demo renewals bot') >> input")
    sales = Queue.objects.get(contact_center__slug="acme", name="Sales")
    page.select_option("select[name=handoff_queue]", value=str(sales.pk))
    page.fill("input[name=max_attempts]", "2")
    # The default range is Mon-Fri 09:00-20:00; add Saturday mornings in the first empty row.
    page.check("input[name=hours-1-days][value=sat]")
    page.fill("input[name=hours-1-start]", "10:00")
    page.fill("input[name=hours-1-end]", "13:00")
    snap(page, "campaigns-form")
    page.click("button:has-text('Create campaign')")
    page.wait_for_url("**/campaigns/*/")
    campaign = Campaign.objects.get(name="Spring winback")
    assert campaign.calling_hours[1] == {"days": ["sat"], "start": "10:00", "end": "13:00"}
    assert campaign.max_attempts == 2

    page.set_input_files(
        "input[name=file]",
        files=[{"name": "leads.csv", "mimeType": "text/csv", "buffer": LEADS_CSV.encode()}],
    )
    page.click("button:has-text('Upload and import')")
    page.wait_for_selector("text=4 rows of leads.csv are being imported.")
    assert page.locator("#progress tr", has_text="leads.csv").locator("td").nth(1).inner_text() == "Waiting"

    # What a dialer worker does each tick; the page, polling, shows the result by itself.
    assert process_lead_imports() == 1
    assert campaign.lead_imports.get().status == LeadImportStatus.DONE
    row = page.locator("#progress tr", has_text="leads.csv")
    row.locator("td:has-text('Done')").wait_for()
    assert row.locator("a:has-text('Rejected rows')").count() == 1
    # The leads table refreshes by itself too, then filters as one types.
    page.locator("#leads tr", has_text="+14155550102").wait_for()
    page.fill("input[name=q]", "Ann")
    page.locator("#leads tr", has_text="+14155550102").wait_for(state="detached")
    assert page.locator("#leads tbody tr").count() == 1
    assert "Ann Lee" in page.locator("#leads tbody tr").inner_text()
    assert "q=Ann" in page.url
    snap(page, "campaigns-detail-imported")

    with page.expect_download() as download:
        row.locator("a:has-text('Rejected rows')").click()
    assert download.value.path().read_text().splitlines() == [
        "Row,Number,Reason",
        "4,not a number,invalid_number",
        "5,+14155550101,duplicate",
    ]

    page.click("#progress button:has-text('Start')")
    page.wait_for_selector("text=Campaign Spring winback is active.")
    assert page.locator("#progress .badge").inner_text() == "Active"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE

    page.click("#progress button:has-text('Pause')")
    page.wait_for_selector("text=Campaign Spring winback is paused.")
    assert page.locator("#progress .badge").inner_text() == "Paused"
    snap(page, "campaigns-detail-paused")

    page.click("text=Do-not-call list")
    page.fill("input[name=phone]", "+14155550199")
    page.click("button:has-text('Add')")
    page.wait_for_selector("text=+14155550199 will not be called.")
    snap(page, "campaigns-dnc")

    page.click("button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/")
    log_in(page, SUPERVISOR_EMAIL)
    page.goto(f"/campaigns/{campaign.pk}/")
    assert page.locator("#progress .badge").inner_text() == "Paused"
    assert page.locator("main form[method=post]").count() == 0
    response = page.goto(f"/campaigns/{campaign.pk}/edit/")
    assert response is not None and response.status == 403
