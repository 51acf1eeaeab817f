"""Campaign status machine, lead import and do-not-call lists, through the services."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from campaigns.models import (
    AutoPauseReason,
    CallAttempt,
    Campaign,
    CampaignStatus,
    DoNotCall,
    Lead,
    LeadStatus,
    RegionalCallingRule,
)
from campaigns.services import (
    LeadRow,
    add_do_not_call,
    auto_pause_campaign,
    auto_resume_campaign,
    complete_campaign,
    create_campaign,
    import_leads,
    pause_campaign,
    start_campaign,
    stop_campaign,
    update_campaign,
)
from tests.campaigns.conftest import add_leads
from tests.factories import make_center
from tests.reporting.factories import make_bot
from virtual_agents.models import VirtualAgent
from voiso_byob.errors import DomainError
from voiso_byob.models import AuditEvent, ContactCenter

pytestmark = pytest.mark.django_db


def _refused(code: str, call, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as refused:
        call(**kwargs)
    assert refused.value.code == code
    return refused.value


# --- status machine -------------------------------------------------------------------------


def test_start_needs_an_enabled_bot_and_an_active_lead(campaign: Campaign, bot: VirtualAgent) -> None:
    error = _refused("no_leads", start_campaign, campaign=campaign, by="tests")
    assert error.status_code == 409
    add_leads(campaign, "+12125550123")
    VirtualAgent.objects.filter(pk=bot.pk).update(is_enabled=False)
    _refused("no_virtual_agent", start_campaign, campaign=campaign, by="tests")
    VirtualAgent.objects.filter(pk=bot.pk).update(is_enabled=True)
    assert start_campaign(campaign=campaign, by="tests").status == CampaignStatus.ACTIVE
    assert AuditEvent.objects.filter(action="campaign.started", target_id=str(campaign.pk)).exists()


def test_the_whole_status_machine(campaign: Campaign) -> None:
    add_leads(campaign, "+12125550123")
    campaign = start_campaign(campaign=campaign, by="tests")
    campaign = pause_campaign(campaign=campaign, by="tests")
    assert campaign.status == CampaignStatus.PAUSED
    campaign = start_campaign(campaign=campaign, by="tests")
    campaign = auto_pause_campaign(campaign=campaign, reason=AutoPauseReason.OUTSIDE_HOURS)
    assert (campaign.status, campaign.status_reason) == (CampaignStatus.AUTO_PAUSED, "outside_hours")
    campaign = auto_resume_campaign(campaign=campaign)
    assert (campaign.status, campaign.status_reason) == (CampaignStatus.ACTIVE, "")
    campaign = complete_campaign(campaign=campaign)
    assert campaign.status == CampaignStatus.COMPLETED
    actions = list(
        AuditEvent.objects.filter(target_id=str(campaign.pk))
        .order_by("created")
        .values_list("action", flat=True)
    )
    assert actions == [
        "campaign.created",
        "campaign.leads_imported",
        "campaign.started",
        "campaign.paused",
        "campaign.started",
        "campaign.auto_paused",
        "campaign.auto_resumed",
        "campaign.completed",
    ]


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (CampaignStatus.DRAFT, pause_campaign),
        (CampaignStatus.DRAFT, stop_campaign),
        (CampaignStatus.STOPPED, start_campaign),
        (CampaignStatus.STOPPED, pause_campaign),
        (CampaignStatus.COMPLETED, start_campaign),
        (CampaignStatus.PAUSED, pause_campaign),
        (CampaignStatus.ACTIVE, start_campaign),
    ],
)
def test_illegal_transitions_are_409_and_change_nothing(campaign: Campaign, status, action) -> None:
    add_leads(campaign, "+12125550123")
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    before = AuditEvent.objects.count()
    error = _refused("invalid_transition", action, campaign=campaign, by="tests")
    assert error.status_code == 409
    campaign.refresh_from_db()
    assert campaign.status == status
    assert AuditEvent.objects.count() == before


def test_auto_pause_is_not_from_a_person_pause(campaign: Campaign) -> None:
    add_leads(campaign, "+12125550123")
    campaign = pause_campaign(campaign=start_campaign(campaign=campaign, by="tests"), by="tests")
    with pytest.raises(DomainError):
        auto_pause_campaign(campaign=campaign, reason=AutoPauseReason.NO_CAPACITY)
    with pytest.raises(DomainError):
        auto_resume_campaign(campaign=campaign)


def test_a_reason_only_with_auto_paused() -> None:
    # The database keeps status and reason together, whatever writes them.
    center = make_center()
    campaign = create_campaign(center=center, by="tests", name="C", virtual_agents=[make_bot(center)])
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(status_reason="no_capacity")


# --- campaign fields --------------------------------------------------------------------------


def test_campaign_name_is_unique_per_center(
    acme: ContactCenter, bot: VirtualAgent, campaign: Campaign
) -> None:
    _refused("name_taken", create_campaign, center=acme, by="tests", name="renewals", virtual_agents=[bot])
    other = make_center()
    create_campaign(center=other, by="tests", name="Renewals", virtual_agents=[make_bot(other)])


def test_another_centers_bot_is_refused(acme: ContactCenter) -> None:
    foreign = make_bot(make_center())
    _refused("invalid_choice", create_campaign, center=acme, by="tests", name="X", virtual_agents=[foreign])
    assert not Campaign.objects.filter(name="X").exists()


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("max_attempts", 0, "invalid"),
        ("max_attempts", 21, "invalid"),
        ("priority", 1001, "invalid"),
        ("retry_minutes", {"rejected": 5}, "invalid_retry_minutes"),
        ("retry_minutes", {"busy": 0}, "invalid_retry_minutes"),
        ("timezone_name", "Mars/Olympus", "invalid_timezone"),
        ("calling_hours", [{"days": ["mon"], "start": "21:00", "end": "09:00"}], "invalid_calling_hours"),
    ],
)
def test_update_validates_and_changes_nothing_when_refused(campaign: Campaign, field, value, code) -> None:
    _refused(code, update_campaign, campaign=campaign, by="tests", **{field: value})
    campaign.refresh_from_db()
    assert campaign.max_attempts == 3 and campaign.priority == 100 and campaign.timezone == ""


def test_retry_delays_default_per_outcome_and_never_for_rejected(campaign: Campaign) -> None:
    campaign = update_campaign(campaign=campaign, by="tests", retry_minutes={"busy": 5})
    assert campaign.retry_delay_minutes("busy") == 5
    assert campaign.retry_delay_minutes("no_answer") == 60
    assert campaign.retry_delay_minutes("rejected") is None
    assert campaign.retry_delay_minutes("invalid_number") is None


# --- lead import ------------------------------------------------------------------------------


def test_import_reports_each_row_and_keeps_the_valid_ones(acme: ContactCenter, campaign: Campaign) -> None:
    add_do_not_call(center=acme, phone="+12125550100", by="tests", reason="asked")
    add_leads(campaign, "+12125550101")
    rows = [
        LeadRow("+1 212 555 0102", name="Ann", context={"X-Plan": "gold"}),
        LeadRow("not a number"),
        LeadRow("+12125550100"),  # do not call
        LeadRow("+12125550101"),  # already in the campaign
        LeadRow("(212) 555-0103"),  # national format: the center's region
        LeadRow("+12125550102"),  # twice in this request
        LeadRow("+1 900 555 0199"),  # premium rate
        LeadRow("911"),  # emergency
    ]
    result = import_leads(campaign=campaign, rows=rows, by="tests")
    assert [item["index"] for item in result.created] == [0, 4]
    assert [(item["index"], item["reason"]) for item in result.rejected] == [
        (1, "invalid_number"),
        (2, "dnc"),
        (6, "not_dialable"),
        (7, "invalid_number"),
    ]
    assert [item["index"] for item in result.duplicates] == [3, 5]
    ann = Lead.objects.get(pk=result.created[0]["id"])
    assert (ann.phone, ann.name, ann.context, ann.timezones) == (
        "+12125550102",
        "Ann",
        {"X-Plan": "gold"},
        ["America/New_York"],
    )
    assert Lead.objects.get(pk=result.created[1]["id"]).phone == "+12125550103"


def test_a_campaigns_own_dnc_list_applies_to_it_only(acme: ContactCenter, campaign: Campaign, bot) -> None:
    other = create_campaign(center=acme, by="tests", name="Other", virtual_agents=[bot])
    add_do_not_call(center=acme, campaign=campaign, phone="+12125550100", by="tests")
    assert import_leads(campaign=campaign, rows=[LeadRow("+12125550100")], by="tests").rejected
    assert import_leads(campaign=other, rows=[LeadRow("+12125550100")], by="tests").created


def test_adding_to_dnc_retires_waiting_leads_and_is_idempotent(
    acme: ContactCenter, campaign: Campaign
) -> None:
    add_leads(campaign, "+12125550100", "+12125550101")
    first = add_do_not_call(center=acme, phone="+1 212 555 0100", by="tests")
    again = add_do_not_call(center=acme, phone="+12125550100", by="tests")
    assert first.pk == again.pk and DoNotCall.objects.count() == 1
    assert dict(campaign.leads.values_list("phone", "status")) == {
        "+12125550100": LeadStatus.DNC,
        "+12125550101": LeadStatus.NEW,
    }


def test_another_centers_dnc_does_not_apply(acme: ContactCenter, campaign: Campaign) -> None:
    add_do_not_call(center=make_center(), phone="+12125550100", by="tests")
    assert import_leads(campaign=campaign, rows=[LeadRow("+12125550100")], by="tests").created


def test_a_finished_campaign_takes_no_leads(campaign: Campaign) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.STOPPED)
    _refused("campaign_closed", import_leads, campaign=campaign, rows=[LeadRow("+12125550100")], by="tests")
    assert not Lead.objects.exists()


def test_an_attempt_number_is_dialled_once(acme: ContactCenter, campaign: Campaign) -> None:
    (lead_id,) = add_leads(campaign, "+12125550100")
    lead = Lead.objects.get(pk=lead_id)
    CallAttempt.objects.create(
        contact_center=acme, campaign=campaign, lead=lead, number=1, phone=lead.phone, call_id="c1"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        CallAttempt.objects.create(
            contact_center=acme, campaign=campaign, lead=lead, number=1, phone=lead.phone, call_id="c2"
        )


def test_regional_rules_ship_as_data() -> None:
    florida = RegionalCallingRule.objects.get(region="US-FL")
    assert "+1305" in florida.prefixes and florida.max_attempts_per_24h == 3
    assert str(florida.end) == "20:00:00"
