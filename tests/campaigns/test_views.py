"""Campaign pages: who may see and change what, the forms through the services, the detail page."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from campaigns.lead_imports import process_lead_imports
from campaigns.models import CallAttempt, Campaign, CampaignStatus, Lead, LeadImport, LeadImportStatus
from campaigns.services import LeadRow, create_campaign, import_leads
from tests.campaigns.conftest import add_leads
from tests.conftest import Persona
from tests.factories import make_queue
from tests.reporting.factories import make_bot
from virtual_agents.models import VirtualAgent
from voiso_byob.models import AuditEvent, ContactCenter

pytestmark = pytest.mark.django_db


def detail_url(campaign: Campaign) -> str:
    return reverse("campaigns:campaign_detail", args=[campaign.pk])


def form_data(bot: VirtualAgent, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "Winback",
        "virtual_agents": [str(bot.pk)],
        "handoff_queue": "",
        "handoff_queue_threshold": "7",
        "timezone": "Europe/Lisbon",
        "max_attempts": "4",
        "priority": "20",
        "retry_busy": "10",
        "retry_no_answer": "20",
        "retry_machine": "30",
        "retry_failed": "5",
        "hours-TOTAL_FORMS": "3",
        "hours-INITIAL_FORMS": "1",
        "hours-MIN_NUM_FORMS": "0",
        "hours-MAX_NUM_FORMS": "28",
        "hours-0-days": ["mon", "wed"],
        "hours-0-start": "09:30",
        "hours-0-end": "18:00",
        "hours-1-days": ["sat"],
        "hours-1-start": "10:00",
        "hours-1-end": "14:00",
    }
    data.update(overrides)
    return data


# --- list ----------------------------------------------------------------------------------


def test_list_shows_each_campaigns_progress_in_a_fixed_number_of_queries(
    admin: Persona, acme: ContactCenter, bot: VirtualAgent, django_assert_max_num_queries
) -> None:
    for n in range(6):
        campaign = create_campaign(center=acme, by="tests", name=f"Campaign {n}", virtual_agents=[bot])
        lead_ids = add_leads(campaign, *(f"+1415555{n}1{k:02d}" for k in range(3)))
    Lead.objects.filter(pk=lead_ids[0]).update(status="done")
    CallAttempt.objects.create(
        contact_center=acme,
        campaign=campaign,
        lead_id=lead_ids[0],
        number=1,
        phone="+14155555100",
        call_id="dial-1",
        answered_at=timezone.now(),
        handed_off=True,
    )

    with django_assert_max_num_queries(8):
        response = admin.client.get(reverse("campaigns:campaign_list"))

    assert response.status_code == 200
    rows = {row.name: row for row in response.context["page"]}
    last = rows["Campaign 5"].progress
    assert (last.total, last.finished) == (3, 1)
    assert (last.attempts_today, last.connects_today, last.handoffs_today) == (1, 1, 1)
    assert (last.attempts, last.connects, last.handoffs) == (1, 1, 1)
    assert rows["Campaign 0"].progress.attempts_today == 0
    assert reverse("campaigns:campaign_create") in response.content.decode()


def test_supervisor_sees_the_list_without_write_links(supervisor: Persona, campaign: Campaign) -> None:
    response = supervisor.client.get(reverse("campaigns:campaign_list"))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Renewals" in body
    assert reverse("campaigns:campaign_create") not in body
    assert reverse("campaigns:campaign_edit", args=[campaign.pk]) not in body


def test_agent_and_anonymous_are_refused_every_page(agent: Persona, anonymous, campaign: Campaign) -> None:
    urls = [
        reverse("campaigns:campaign_list"),
        reverse("campaigns:campaign_create"),
        detail_url(campaign),
        reverse("campaigns:campaign_edit", args=[campaign.pk]),
        reverse("campaigns:dnc_list"),
    ]
    for url in urls:
        assert agent.client.get(url).status_code == 403
        assert anonymous.get(url).status_code == 302
    assert (
        agent.client.post(reverse("campaigns:campaign_transition", args=[campaign.pk, "start"])).status_code
        == 403
    )


# --- create and edit -----------------------------------------------------------------------


def test_admin_creates_a_campaign_with_every_setting(admin: Persona, acme: ContactCenter, bot) -> None:
    queue = make_queue(acme, name="Sales", extension="4300")

    response = admin.client.post(
        reverse("campaigns:campaign_create"), form_data(bot, handoff_queue=str(queue.pk))
    )

    campaign = Campaign.objects.get(name="Winback")
    assert response.status_code == 302
    assert response["Location"] == detail_url(campaign)
    assert campaign.contact_center == acme
    assert list(campaign.virtual_agents.all()) == [bot]
    assert campaign.handoff_queue == queue
    assert (campaign.handoff_queue_threshold, campaign.max_attempts, campaign.priority) == (7, 4, 20)
    assert campaign.timezone == "Europe/Lisbon"
    assert campaign.calling_hours == [
        {"days": ["mon", "wed"], "start": "09:30", "end": "18:00"},
        {"days": ["sat"], "start": "10:00", "end": "14:00"},
    ]
    assert campaign.retry_minutes == {"busy": 10, "no_answer": 20, "machine": 30, "failed": 5}
    assert AuditEvent.objects.filter(action="campaign.created").count() == 1


def test_create_form_offers_only_this_centers_bots_and_queues(
    admin: Persona, bot: VirtualAgent, globex: ContactCenter
) -> None:
    foreign_bot = make_bot(globex, "Foreign bot")
    foreign_queue = make_queue(globex, name="Foreign queue", extension="4900")

    response = admin.client.get(reverse("campaigns:campaign_create"))
    body = response.content.decode()
    assert "Outbound bot" in body
    assert "Foreign bot" not in body and "Foreign queue" not in body

    response = admin.client.post(
        reverse("campaigns:campaign_create"),
        form_data(bot, virtual_agents=[str(foreign_bot.pk)], handoff_queue=str(foreign_queue.pk)),
    )
    assert response.status_code == 400
    assert not Campaign.objects.filter(name="Winback").exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "Renewals"}, "name", "already"),
        ({"hours-1-end": ""}, None, "both times"),
        ({"hours-0-end": "08:00"}, None, "end after it starts"),
        (
            {
                "hours-0-days": [],
                "hours-1-days": [],
                "hours-0-start": "",
                "hours-0-end": "",
                "hours-1-start": "",
                "hours-1-end": "",
            },
            None,
            "at least one range",
        ),
        ({"retry_busy": "0"}, "retry_busy", "greater than or equal to 1"),
        ({"virtual_agents": []}, "virtual_agents", "required"),
    ],
)
def test_a_refused_campaign_shows_the_reason_and_changes_nothing(
    admin: Persona, campaign: Campaign, bot: VirtualAgent, overrides, field, message
) -> None:
    response = admin.client.post(reverse("campaigns:campaign_create"), form_data(bot, **overrides))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert Campaign.objects.count() == 1
    if field:
        assert response.context["form"].errors[field]


def test_admin_edits_a_campaign(admin: Persona, campaign: Campaign, bot: VirtualAgent) -> None:
    page = admin.client.get(reverse("campaigns:campaign_edit", args=[campaign.pk]))
    assert page.status_code == 200
    assert 'value="09:00"' in page.content.decode()  # the saved range is pre-filled

    response = admin.client.post(
        reverse("campaigns:campaign_edit", args=[campaign.pk]), form_data(bot, name="Renewals 2")
    )

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Renewals 2"
    assert campaign.max_attempts == 4
    assert AuditEvent.objects.filter(action="campaign.updated").count() == 1


def test_a_stopped_campaign_cannot_be_edited(admin: Persona, campaign: Campaign, bot: VirtualAgent) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.STOPPED)

    response = admin.client.post(
        reverse("campaigns:campaign_edit", args=[campaign.pk]), form_data(bot, name="Changed")
    )

    assert response.status_code == 400
    assert "cannot change" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.name == "Renewals"


def test_supervisor_and_outsider_cannot_create_or_edit(
    supervisor: Persona, outsider: Persona, campaign: Campaign, bot: VirtualAgent
) -> None:
    edit = reverse("campaigns:campaign_edit", args=[campaign.pk])
    assert supervisor.client.get(reverse("campaigns:campaign_create")).status_code == 403
    assert supervisor.client.post(reverse("campaigns:campaign_create"), form_data(bot)).status_code == 403
    assert supervisor.client.post(edit, form_data(bot, name="Changed")).status_code == 403
    assert outsider.client.get(edit).status_code == 404
    assert outsider.client.post(edit, form_data(bot, name="Changed")).status_code == 404
    campaign.refresh_from_db()
    assert campaign.name == "Renewals"
    assert Campaign.objects.count() == 1


# --- detail, transitions -------------------------------------------------------------------


def test_detail_shows_progress_leads_and_attempts(admin: Persona, campaign: Campaign) -> None:
    ids = add_leads(campaign, "+14155550101", "+14155550102", "+14155550103")
    Lead.objects.filter(pk=ids[0]).update(status="done", name="Ann")
    CallAttempt.objects.create(
        contact_center=campaign.contact_center,
        campaign=campaign,
        lead_id=ids[0],
        number=1,
        phone="+14155550101",
        call_id="dial-x",
        outcome="completed",
    )

    response = admin.client.get(detail_url(campaign))

    body = response.content.decode()
    assert response.status_code == 200
    assert response.context["progress"].finished == 1
    assert response.context["progress"].total == 3
    assert 'aria-valuenow="1"' in body
    assert "+14155550103" in body
    assert "Completed" in body  # the recent attempt
    assert ">Start</button>" in body


def test_detail_partials_answer_htmx_alone(admin: Persona, campaign: Campaign) -> None:
    add_leads(campaign, "+14155550101", "+14155550102")
    Lead.objects.filter(phone="+14155550101").update(name="Ann")

    progress = admin.client.get(detail_url(campaign), headers={"HX-Request": "true", "HX-Target": "progress"})
    leads = admin.client.get(
        detail_url(campaign), {"q": "Ann"}, headers={"HX-Request": "true", "HX-Target": "leads"}
    )

    assert progress.content.decode().lstrip().startswith('<section id="progress"')
    assert "<html" not in progress.content.decode()
    body = leads.content.decode()
    assert body.lstrip().startswith('<div id="leads"')
    assert "+14155550101" in body and "+14155550102" not in body


def test_leads_filter_by_status_and_page(admin: Persona, campaign: Campaign) -> None:
    import_leads(campaign=campaign, rows=[LeadRow(f"+1415555{n:04d}") for n in range(100, 130)], by="tests")
    Lead.objects.filter(phone="+14155550100").update(status="dnc")

    dnc = admin.client.get(detail_url(campaign), {"status": "dnc"})
    second = admin.client.get(detail_url(campaign), {"page": "2"})
    bad = admin.client.get(detail_url(campaign), {"status": "nonsense", "page": "x"})

    assert [lead.phone for lead in dnc.context["page"]] == ["+14155550100"]
    assert second.context["page"].number == 2
    assert len(second.context["page"]) == 5
    assert bad.status_code == 200


def test_admin_starts_pauses_and_stops(admin: Persona, campaign: Campaign) -> None:
    add_leads(campaign, "+14155550101")
    url = lambda action: reverse("campaigns:campaign_transition", args=[campaign.pk, action])  # noqa: E731

    assert admin.client.post(url("start")).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE
    assert admin.client.post(url("pause")).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert admin.client.post(url("stop")).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.STOPPED

    again = admin.client.post(url("start"))
    assert again.status_code == 409
    assert "A stopped campaign cannot be started." in again.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.STOPPED


def test_starting_without_leads_shows_why(admin: Persona, campaign: Campaign) -> None:
    response = admin.client.post(reverse("campaigns:campaign_transition", args=[campaign.pk, "start"]))

    assert response.status_code == 409
    assert "Import at least one active lead" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_transitions_are_refused_to_supervisor_outsider_and_unknown_actions(
    admin: Persona, supervisor: Persona, outsider: Persona, campaign: Campaign
) -> None:
    add_leads(campaign, "+14155550101")
    start = reverse("campaigns:campaign_transition", args=[campaign.pk, "start"])

    assert supervisor.client.post(start).status_code == 403
    assert outsider.client.post(start).status_code == 404
    assert admin.client.get(start).status_code == 405
    assert (
        admin.client.post(reverse("campaigns:campaign_transition", args=[campaign.pk, "delete"])).status_code
        == 404
    )
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_supervisor_sees_the_detail_without_buttons_or_forms(supervisor: Persona, campaign: Campaign) -> None:
    add_leads(campaign, "+14155550101")

    response = supervisor.client.get(detail_url(campaign))

    body = response.content.decode()
    assert response.status_code == 200
    assert "+14155550101" in body
    assert 'method="post"' not in body.split("<main>")[1]
    assert reverse("campaigns:lead_import_create", args=[campaign.pk]) not in body


def test_outsider_gets_404_for_another_centers_campaign(outsider: Persona, campaign: Campaign) -> None:
    assert outsider.client.get(detail_url(campaign)).status_code == 404
    assert outsider.client.get(reverse("campaigns:campaign_dnc_list", args=[campaign.pk])).status_code == 404


# --- lead files ------------------------------------------------------------------------------


def csv_file(text: str, name: str = "leads.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def test_admin_uploads_a_file_and_downloads_its_rejects(admin: Persona, campaign: Campaign) -> None:
    upload = reverse("campaigns:lead_import_create", args=[campaign.pk])
    text = "Number,Name,X-Policy\n+14155550101,Ann,P-1\nnope,Bob,\n+14155550101,Ann,P-1\n"

    response = admin.client.post(upload, {"file": csv_file(text)})

    assert response.status_code == 302
    lead_import = LeadImport.objects.get()
    assert (lead_import.rows, lead_import.status, lead_import.created_by) == (3, "pending", admin.user)
    page = admin.client.get(detail_url(campaign))
    assert 'hx-trigger="every 3s"' in page.content.decode()  # polls while the file imports

    process_lead_imports()

    lead_import.refresh_from_db()
    assert lead_import.status == LeadImportStatus.DONE
    page = admin.client.get(detail_url(campaign), headers={"HX-Request": "true", "HX-Target": "progress"})
    rejects_url = reverse("campaigns:lead_import_rejects", args=[campaign.pk, lead_import.pk])
    assert rejects_url in page.content.decode()
    assert "hx-trigger" not in page.content.decode()  # nothing moves any more: polling stops

    download = admin.client.get(rejects_url)
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    assert "attachment" in download["Content-Disposition"]
    assert b"".join(download.streaming_content).decode().splitlines() == [
        "Row,Number,Reason",
        "3,nope,invalid_number",
        "4,+14155550101,duplicate",
    ]


def test_a_file_without_a_number_column_is_refused_on_the_form(admin: Persona, campaign: Campaign) -> None:
    response = admin.client.post(
        reverse("campaigns:lead_import_create", args=[campaign.pk]), {"file": csv_file("Phone,Name\n1,Ann\n")}
    )

    assert response.status_code == 400
    assert "one of them Number" in response.content.decode()
    assert not LeadImport.objects.exists()


def test_uploads_and_rejects_are_refused_to_other_roles_and_centers(
    supervisor: Persona, outsider: Persona, agent: Persona, campaign: Campaign, admin: Persona
) -> None:
    upload = reverse("campaigns:lead_import_create", args=[campaign.pk])
    assert supervisor.client.post(upload, {"file": csv_file("Number\n+14155550101\n")}).status_code == 403
    assert outsider.client.post(upload, {"file": csv_file("Number\n+14155550101\n")}).status_code == 404
    assert not LeadImport.objects.exists()

    admin.client.post(upload, {"file": csv_file("Number\nnope\n")})
    lead_import = LeadImport.objects.get()
    rejects = reverse("campaigns:lead_import_rejects", args=[campaign.pk, lead_import.pk])
    assert supervisor.client.get(rejects).status_code == 200  # supervisors read everything
    assert agent.client.get(rejects).status_code == 403
    assert outsider.client.get(rejects).status_code == 404


def test_the_page_polls_only_while_the_campaign_dials(admin: Persona, campaign: Campaign) -> None:
    add_leads(campaign, "+14155550101")
    draft = admin.client.get(detail_url(campaign)).content.decode()
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.ACTIVE)
    active = admin.client.get(detail_url(campaign)).content.decode()

    assert 'hx-trigger="every' not in draft
    assert 'hx-trigger="every 3s"' in active  # the progress
    assert 'hx-trigger="every 10s"' in active  # the leads table


def test_a_file_for_a_stopped_campaign_is_refused_with_the_reason(admin: Persona, campaign: Campaign) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.STOPPED)

    response = admin.client.post(
        reverse("campaigns:lead_import_create", args=[campaign.pk]),
        {"file": csv_file("Number\n+14155550101\n")},
    )

    assert response.status_code == 409
    assert "Leads cannot be added to a finished campaign." in response.content.decode()
    assert not LeadImport.objects.exists()
