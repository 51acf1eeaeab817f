"""The dialer's tick: capacity, claim-time checks, outcomes through the real events API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from campaigns.dialer import CLAIM_TIMEOUT, Dialer
from campaigns.gateways import Origination, OriginationError
from campaigns.gateways.simulator import SimulatorGateway
from campaigns.models import (
    AttemptOutcome,
    CallAttempt,
    Campaign,
    CampaignStatus,
    DoNotCall,
    Lead,
    LeadStatus,
)
from campaigns.services import LeadRow, import_leads, pause_campaign, start_campaign, update_campaign
from reporting.models import CallRecord
from tests.campaigns.conftest import add_leads
from tests.factories import make_api_key, make_member, make_queue
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ApiKeyScope, ContactCenter

pytestmark = pytest.mark.django_db

# A Wednesday, 10:00 in New York, 07:00 in Los Angeles.
NOON_UTC = datetime(2026, 1, 7, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock(time_machine) -> None:
    # Leads are due from their import: the clock the services read is the dialer's.
    time_machine.move_to(NOON_UTC, tick=False)


class Recorder:
    """A gateway that places nothing and remembers what it was asked to place."""

    def __init__(self, fail: bool = False) -> None:
        self.placed: list[Origination] = []
        self.fail = fail

    def originate(self, origination: Origination) -> None:
        if self.fail:
            raise OriginationError("switch unreachable")
        self.placed.append(origination)

    def close(self) -> None:
        pass


def dialer(gateway, now=NOON_UTC, busy: dict[str, int] | None = None) -> Dialer:
    return Dialer(gateway=gateway, now=lambda: now, busy_calls=lambda bot_id: (busy or {}).get(bot_id, 0))


def started(campaign: Campaign, *phones: str, **lead_fields) -> Campaign:
    import_leads(campaign=campaign, rows=[LeadRow(phone, **lead_fields) for phone in phones], by="tests")
    return start_campaign(campaign=campaign, by="tests")


def set_capacity(bot: VirtualAgent, calls: int) -> None:
    VirtualAgent.objects.filter(pk=bot.pk).update(max_concurrent_calls=calls)


def test_a_tick_dials_as_many_leads_as_free_slots(campaign: Campaign, bot: VirtualAgent) -> None:
    set_capacity(bot, 3)
    started(campaign, *(f"+1212555010{i}" for i in range(5)), context={"X-Plan": "gold"})
    gateway = Recorder()
    result = dialer(gateway).tick()
    assert result.originated == 3 and len(gateway.placed) == 3
    first = gateway.placed[0]
    assert first.virtual_agent_id == str(bot.pk) and first.bot_sip_uri == bot.sip_uri
    assert first.headers["X-Voiso-Campaign-Id"] == str(campaign.pk)
    assert first.headers["X-Voiso-Lead-Id"] == first.lead_id
    assert first.headers["X-Voiso-Call-Id"] == first.call_id
    assert first.headers["X-Plan"] == "gold"
    assert CallAttempt.objects.filter(originated_at__isnull=False).count() == 3
    assert Lead.objects.filter(status=LeadStatus.IN_PROGRESS, attempts=1).count() == 3
    # The three still ring: no slot is free on the next tick.
    assert dialer(gateway).tick().originated == 0


def test_calls_the_bot_is_already_on_take_slots(campaign: Campaign, bot: VirtualAgent) -> None:
    set_capacity(bot, 3)
    started(campaign, *(f"+1212555010{i}" for i in range(5)))
    assert dialer(Recorder(), busy={str(bot.pk): 2}).tick().originated == 1


def test_a_lead_put_on_dnc_after_import_is_not_dialled(acme: ContactCenter, campaign: Campaign) -> None:
    started(campaign, "+12125550100", "+12125550101")
    DoNotCall.objects.create(contact_center=acme, phone="+12125550100")
    gateway = Recorder()
    result = dialer(gateway).tick()
    assert [o.to for o in gateway.placed] == ["+12125550101"]
    assert result.dnc == 1
    assert Lead.objects.get(phone="+12125550100").status == LeadStatus.DNC


def test_outside_hours_defers_and_auto_pauses_then_resumes(campaign: Campaign) -> None:
    started(campaign, "+13105550100")  # Los Angeles: 07:00 at NOON_UTC
    gateway = Recorder()
    result = dialer(gateway).tick()
    assert (result.originated, result.deferred) == (0, 1)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.status_reason) == (CampaignStatus.AUTO_PAUSED, "outside_hours")
    # Two hours later it is 09:00 there.
    dialer(gateway, now=NOON_UTC + timedelta(hours=2)).tick()
    assert [o.to for o in gateway.placed] == ["+13105550100"]
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE


def test_a_number_in_several_zones_waits_for_all(campaign: Campaign) -> None:
    started(campaign, "+18885550100")  # toll free: every US zone, Hawaii included
    gateway = Recorder()
    dialer(gateway).tick()
    assert gateway.placed == []
    assert Lead.objects.get().next_attempt_at > NOON_UTC


def test_florida_hours_and_cap_narrow_the_campaign(campaign: Campaign) -> None:
    update_campaign(
        campaign=campaign,
        by="tests",
        calling_hours=[{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "21:00"}],
    )
    started(campaign, "+13055550100", "+12125550100")  # Miami and New York, both on Eastern time
    gateway = Recorder()
    evening = datetime(2026, 1, 8, 1, 30, tzinfo=UTC)  # 20:30 on the Wednesday in both
    dialer(gateway, now=evening).tick()
    assert [o.to for o in gateway.placed] == ["+12125550100"]


def test_the_daily_cap_counts_every_campaign(acme, campaign: Campaign, bot: VirtualAgent) -> None:
    from campaigns.services import create_campaign

    other = create_campaign(center=acme, by="tests", name="Other", virtual_agents=[bot])
    (lead_id,) = add_leads(other, "+12125550100")
    lead = Lead.objects.get(pk=lead_id)
    for number in (1, 2, 3):  # three dials in the last 24 h, by the other campaign
        CallAttempt.objects.create(
            contact_center=acme,
            campaign=other,
            lead=lead,
            number=number,
            phone=lead.phone,
            call_id=f"old-{number}",
            claimed_at=NOON_UTC - timedelta(hours=20 - number),
            originated_at=NOON_UTC - timedelta(hours=20 - number),
            ended_at=NOON_UTC - timedelta(hours=20 - number),
            outcome=AttemptOutcome.NO_ANSWER,
        )
    started(campaign, "+12125550100")
    gateway = Recorder()
    assert dialer(gateway).tick().deferred == 1
    assert gateway.placed == []
    deferred = campaign.leads.get()
    assert deferred.next_attempt_at == NOON_UTC - timedelta(hours=19) + timedelta(hours=24)


def test_a_paused_campaign_places_no_new_call(campaign: Campaign) -> None:
    campaign = started(campaign, "+12125550100")
    pause_campaign(campaign=campaign, by="tests")
    gateway = Recorder()
    assert dialer(gateway).tick().originated == 0 and gateway.placed == []


def test_disabled_bots_auto_pause_for_capacity(campaign: Campaign, bot: VirtualAgent) -> None:
    started(campaign, "+12125550100")
    VirtualAgent.objects.filter(pk=bot.pk).update(is_enabled=False)
    dialer(Recorder()).tick()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.status_reason) == (CampaignStatus.AUTO_PAUSED, "no_capacity")


def test_a_claim_whose_worker_died_goes_back(campaign: Campaign) -> None:
    started(campaign, "+12125550100")
    crashed = Dialer(gateway=Recorder(), now=lambda: NOON_UTC, busy_calls=lambda _: 0)
    # The worker claimed and died before dialling: _plan's claim without _originate.
    crashed._originate_all = lambda originations, result: None
    crashed.tick()
    assert CallAttempt.objects.filter(originated_at__isnull=True).count() == 1
    later = NOON_UTC + CLAIM_TIMEOUT + timedelta(seconds=1)
    gateway = Recorder()
    result = dialer(gateway, now=later).tick()
    assert result.released == 1
    # Released, then dialled afresh as attempt 1: one row, originated once.
    assert [o.to for o in gateway.placed] == ["+12125550100"]
    attempt = CallAttempt.objects.get()
    assert (attempt.number, attempt.originated_at) == (1, later)


def test_a_released_claim_is_never_dialled(campaign: Campaign) -> None:
    started(campaign, "+12125550100")
    gateway = Recorder()
    worker = dialer(gateway)
    original = worker._originate_all

    def release_first(originations, result):
        for origination in originations:  # another worker released them
            CallAttempt.objects.filter(pk=origination.attempt_id).delete()
        original(originations, result)

    worker._originate_all = release_first
    assert worker.tick().originated == 0 and gateway.placed == []


def test_a_gateway_failure_fails_the_attempt_and_retries_the_lead(campaign: Campaign) -> None:
    started(campaign, "+12125550100")
    result = dialer(Recorder(fail=True)).tick()
    assert result.failed == 1
    attempt = CallAttempt.objects.get()
    assert attempt.outcome == AttemptOutcome.FAILED
    lead = Lead.objects.get()
    assert lead.status == LeadStatus.RETRY
    assert lead.next_attempt_at == attempt.ended_at + timedelta(minutes=15)


def test_completed_when_no_lead_is_left(campaign: Campaign) -> None:
    campaign = started(campaign, "+12125550100")
    Lead.objects.update(status=LeadStatus.DONE)
    dialer(Recorder()).tick()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED


# --- through the simulator gateway and the real events API ---------------------------------


@pytest.fixture
def simulator(acme: ContactCenter):
    _, key = make_api_key(acme, ApiKeyScope.TELEPHONY)
    # As Django's test client does: the app runs in the test's transaction, whose connection a
    # request's end must not close.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    gateway = SimulatorGateway(
        base_url="http://testserver",
        api_key_for=lambda center_id: key if center_id == str(acme.pk) else "",
        time_scale=0,
        transport=httpx.WSGITransport(app=get_wsgi_application()),
    )
    yield gateway
    gateway.close()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_outcomes_reach_attempts_and_leads_through_the_events_api(
    acme: ContactCenter, campaign: Campaign, bot: VirtualAgent, simulator
) -> None:
    queue = make_queue(acme, name="Renewals desk", members=[make_member(acme, extension="1201")])
    set_capacity(bot, 10)
    update_campaign(campaign=campaign, by="tests", handoff_queue=queue, max_attempts=2)
    phones = {digit: f"+1212555012{digit}" for digit in "0256789"}
    started(campaign, *phones.values())
    result = Dialer(gateway=simulator, busy_calls=lambda _: 0, now=lambda: NOON_UTC).tick()
    assert result.originated == 7
    by_phone = {a.phone: a for a in CallAttempt.objects.all()}
    leads = {lead.phone: lead for lead in Lead.objects.all()}

    assert by_phone[phones["0"]].handed_off and by_phone[phones["0"]].outcome == AttemptOutcome.COMPLETED
    assert leads[phones["0"]].status == LeadStatus.DONE
    assert by_phone[phones["2"]].outcome == AttemptOutcome.COMPLETED and not by_phone[phones["2"]].handed_off
    assert by_phone[phones["2"]].answered_at is not None
    for digit, outcome in (("6", "busy"), ("7", "no_answer"), ("8", "machine"), ("9", "failed")):
        assert by_phone[phones[digit]].outcome == outcome
        assert leads[phones[digit]].status == LeadStatus.RETRY
    assert by_phone[phones["6"]].sip_status == 486
    busy = by_phone[phones["6"]]
    assert leads[phones["6"]].next_attempt_at == busy.ended_at + timedelta(minutes=30)
    # The records the Calls page shows are outbound, of this campaign.
    record = CallRecord.objects.get(call_id=by_phone[phones["0"]].call_id)
    assert record.direction == "outbound"
    # The handed-off caller was answered by the queue's member: not left waiting in it.
    assert (record.queue_id, record.answered_extension) == (queue.pk, "1201")
    assert record.agent_connected_at is not None

    # A second round: the retried leads' last attempt (max 2) exhausts them.
    later = NOON_UTC + timedelta(hours=5)
    Dialer(gateway=simulator, busy_calls=lambda _: 0, now=lambda: later).tick()
    statuses = dict(Lead.objects.values_list("phone", "status"))
    assert {statuses[phones[d]] for d in "6789"} == {LeadStatus.EXHAUSTED}


def test_a_resent_end_event_moves_nothing_twice(campaign: Campaign, simulator) -> None:
    started(campaign, "+12125550126")
    Dialer(gateway=simulator, busy_calls=lambda _: 0, now=lambda: NOON_UTC).tick()
    attempt = CallAttempt.objects.get()
    lead = Lead.objects.get()
    # The switch sends the call's story again (a retry after a timeout): duplicates, nothing moves.
    from campaigns.gateways.simulator import story  # noqa: F401 - the ids derive from the call id

    simulator.originate(
        Origination(
            call_id=attempt.call_id,
            contact_center_id=str(campaign.contact_center_id),
            sip_domain="acme.voiso.com",
            campaign_id=str(campaign.pk),
            lead_id=str(lead.pk),
            attempt_id=str(attempt.pk),
            to=lead.phone,
            caller_id="",
            virtual_agent_id=str(attempt.virtual_agent_id),
            bot_sip_uri="sip:bot@bots.example",
        )
    )
    after = Lead.objects.get()
    assert (after.status, after.attempts, after.next_attempt_at) == (lead.status, 1, lead.next_attempt_at)


def test_the_unique_attempt_number_stops_a_dial_the_locks_missed(acme, campaign: Campaign) -> None:
    (lead_id,) = add_leads(campaign, "+12125550100")
    start_campaign(campaign=campaign, by="tests")
    lead = Lead.objects.get(pk=lead_id)
    # A first attempt written without counting it on the lead (what a broken lock protocol would do).
    CallAttempt.objects.create(
        contact_center=acme,
        campaign=campaign,
        lead=lead,
        number=1,
        phone=lead.phone,
        call_id="other",
        originated_at=NOON_UTC,
    )
    gateway = Recorder()
    assert dialer(gateway).tick().originated == 0
    assert gateway.placed == [] and CallAttempt.objects.count() == 1
    assert Lead.objects.get(pk=lead_id).attempts == 0  # the claim rolled back whole


def test_a_full_handoff_queue_pauses_the_campaign_until_it_drains(acme, campaign: Campaign) -> None:
    from reporting.models import CallRecord
    from tests.reporting.factories import make_call

    queue = make_queue(acme, name="Renewals desk")
    update_campaign(campaign=campaign, by="tests", handoff_queue=queue, handoff_queue_threshold=1)
    campaign = started(campaign, "+12125550102")
    waiting = [make_call(acme, seconds=None, queue=queue) for _ in range(2)]
    make_call(acme, seconds=None, queue=make_queue(acme))  # another queue's caller counts not
    gateway = Recorder()
    dialer(gateway).tick()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.status_reason) == (CampaignStatus.AUTO_PAUSED, "handoff_queue_full")
    assert gateway.placed == []
    # An agent answers one caller: one waits, the threshold: dialling resumes.
    CallRecord.objects.filter(pk=waiting[0].pk).update(agent_connected_at=NOON_UTC)
    dialer(gateway).tick()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE
    assert [o.to for o in gateway.placed] == ["+12125550102"]
