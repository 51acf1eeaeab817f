"""The do-not-call pages: the center's list and each campaign's; add, remove, import a file."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.models import Campaign, DoNotCall, Lead, LeadStatus
from campaigns.services import add_do_not_call
from tests.campaigns.conftest import add_leads
from tests.conftest import Persona
from voiso_byob.models import AuditEvent, ContactCenter

pytestmark = pytest.mark.django_db


def csv_file(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("dnc.csv", text.encode(), content_type="text/csv")


def test_admin_adds_and_removes_a_center_number(admin: Persona, campaign: Campaign) -> None:
    add_leads(campaign, "+14155550101")

    response = admin.client.post(
        reverse("campaigns:dnc_add"), {"phone": "+1 415 555 0101", "reason": "asked"}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:dnc_list")
    entry = DoNotCall.objects.get()
    assert (entry.phone, entry.campaign, entry.reason, entry.added_by) == (
        "+14155550101",
        None,
        "asked",
        admin.user,
    )
    assert Lead.objects.get().status == LeadStatus.DNC
    page = admin.client.get(reverse("campaigns:dnc_list"))
    assert "+14155550101" in page.content.decode()
    assert "Up to 10000 numbers per file, added at once" in page.content.decode()

    removed = admin.client.post(reverse("campaigns:dnc_remove", args=[entry.pk]))

    assert removed.status_code == 302
    assert not DoNotCall.objects.exists()
    assert AuditEvent.objects.filter(action="dnc.removed").count() == 1


def test_a_campaigns_own_list(admin: Persona, campaign: Campaign) -> None:
    add_url = reverse("campaigns:campaign_dnc_add", args=[campaign.pk])

    response = admin.client.post(add_url, {"phone": "+14155550101"})

    assert response["Location"] == reverse("campaigns:campaign_dnc_list", args=[campaign.pk])
    assert DoNotCall.objects.get().campaign == campaign
    center_page = admin.client.get(reverse("campaigns:dnc_list"))
    campaign_page = admin.client.get(reverse("campaigns:campaign_dnc_list", args=[campaign.pk]))
    assert "+14155550101" not in center_page.content.decode().split('id="list"')[1]
    assert "+14155550101" in campaign_page.content.decode()


def test_an_invalid_number_is_refused_on_the_form(admin: Persona) -> None:
    response = admin.client.post(reverse("campaigns:dnc_add"), {"phone": "12", "reason": ""})

    assert response.status_code == 400
    assert "is not a valid phone number" in response.content.decode()
    assert not DoNotCall.objects.exists()


def test_admin_imports_a_file(admin: Persona, campaign: Campaign) -> None:
    add_leads(campaign, "+14155550102")
    text = "Number,Reason\n+14155550101,asked\n+14155550102,\nbad,\n"

    response = admin.client.post(
        reverse("campaigns:campaign_dnc_import", args=[campaign.pk]), {"file": csv_file(text)}, follow=True
    )

    body = response.content.decode()
    assert "2 numbers added; 0 were already on the list." in body
    assert "1 rows are not phone numbers: row 4 (bad)." in body
    assert set(DoNotCall.objects.filter(campaign=campaign).values_list("phone", flat=True)) == {
        "+14155550101",
        "+14155550102",
    }
    assert Lead.objects.get().status == LeadStatus.DNC


def test_a_file_without_a_number_column_is_refused(admin: Persona) -> None:
    response = admin.client.post(reverse("campaigns:dnc_import"), {"file": csv_file("Phone\n+14155550101\n")})

    assert response.status_code == 400
    assert "one of them Number" in response.content.decode()
    assert not DoNotCall.objects.exists()


def test_supervisor_reads_but_cannot_change(supervisor: Persona, acme: ContactCenter) -> None:
    entry = add_do_not_call(center=acme, phone="+14155550101", by="tests")

    page = supervisor.client.get(reverse("campaigns:dnc_list"))
    body = page.content.decode()
    assert page.status_code == 200
    assert "+14155550101" in body
    assert 'method="post"' not in body.split("<main>")[1]
    assert supervisor.client.post(reverse("campaigns:dnc_add"), {"phone": "+14155550102"}).status_code == 403
    assert (
        supervisor.client.post(
            reverse("campaigns:dnc_import"), {"file": csv_file("Number\n+14155550102\n")}
        ).status_code
        == 403
    )
    assert supervisor.client.post(reverse("campaigns:dnc_remove", args=[entry.pk])).status_code == 403
    assert list(DoNotCall.objects.values_list("phone", flat=True)) == ["+14155550101"]


def test_agent_is_refused_and_outsider_cannot_touch_another_centers_entries(
    agent: Persona, outsider: Persona, acme: ContactCenter, campaign: Campaign
) -> None:
    entry = add_do_not_call(center=acme, phone="+14155550101", by="tests")

    assert agent.client.get(reverse("campaigns:dnc_list")).status_code == 403
    assert agent.client.post(reverse("campaigns:dnc_add"), {"phone": "+14155550102"}).status_code == 403
    assert outsider.client.post(reverse("campaigns:dnc_remove", args=[entry.pk])).status_code == 404
    assert (
        outsider.client.post(
            reverse("campaigns:campaign_dnc_add", args=[campaign.pk]), {"phone": "+14155550102"}
        ).status_code
        == 404
    )
    outsider_page = outsider.client.get(reverse("campaigns:dnc_list"))
    assert "+14155550101" not in outsider_page.content.decode()
    assert list(DoNotCall.objects.values_list("phone", flat=True)) == ["+14155550101"]
