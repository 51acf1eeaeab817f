"""Pausing and stopping a campaign: no new call after the current tick, and the calls in progress
finish — their events still reach the attempts and the leads — while it is paused or stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from campaigns.dialer import SILENT_DIAL_TIMEOUT, Dialer
from campaigns.gateways import Origination
from campaigns.gateways.simulator import SimulatorGateway
from campaigns.models import AttemptOutcome, CallAttempt, Campaign, CampaignStatus, Lead, LeadStatus
from campaigns.services import (
    LeadRow,
    import_leads,
    pause_campaign,
    start_campaign,
    stop_campaign,
)
from tests.factories import make_api_key
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ApiKeyScope, ContactCenter

pytestmark = pytest.mark.django_db

# A Wednesday, 10:00 in New York: inside the window of every lead below.
NOON_UTC = datetime(2026, 1, 7, 15, 0, tzinfo=UTC)


class Switch:
    """A gateway whose calls stay up until the test plays them out through the simulator.

    `during` runs inside the tick at the first dial: what a person does while a tick is dialling.
    """

    def __init__(self, during=None) -> None:
        self.ringing: list[Origination] = []
        self.during = during

    def originate(self, origination: Origination) -> None:
        if self.during is not None:
            self.during, during = None, self.during
            during()
        self.ringing.append(origination)

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOON_UTC, tick=False)
    return time_machine


@pytest.fixture
def events_api(acme: ContactCenter):
    """The simulator gateway posting to the real events API in process (the test's transaction)."""
    _, key = make_api_key(acme, ApiKeyScope.TELEPHONY)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    gateway = SimulatorGateway(
        base_url="http://testserver",
        api_key_for=lambda center_id: key,
        time_scale=0,
        transport=httpx.WSGITransport(app=get_wsgi_application()),
    )
    yield gateway
    gateway.close()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def tick(gateway, at: datetime = NOON_UTC):
    return Dialer(gateway=gateway, now=lambda: at, busy_calls=lambda _: 0).tick()


def leads(campaign: Campaign, first: list[str], then: list[str]) -> Campaign:
    """`first` dialled before `then` (priority), and the campaign started."""
    rows = [LeadRow(phone, priority=1) for phone in first] + [LeadRow(phone, priority=2) for phone in then]
    result = import_leads(campaign=campaign, rows=rows, by="tests")
    assert len(result.created) == len(rows)
    return start_campaign(campaign=campaign, by="tests")


def finish(calls: list[Origination], events_api: SimulatorGateway, clock, at: datetime) -> None:
    """The calls in progress play out: their events reach the events API at `at`."""
    clock.move_to(at, tick=False)
    for origination in calls:
        events_api.originate(origination)


def status_of(campaign: Campaign) -> str:
    campaign.refresh_from_db()
    return campaign.status


# Last digit: 2 a person talks to the bot (completed), 6 busy (retried after 30 min), 9 failed (15 min).
FIRST = ["+12125550102", "+12125550106", "+12125550109"]
THEN = ["+12125550113", "+12125550114"]


@pytest.mark.parametrize("halt", [pause_campaign, stop_campaign], ids=["paused", "stopped"])
def test_calls_in_progress_finish_and_reach_their_leads_but_no_new_call_is_placed(
    halt, campaign: Campaign, bot: VirtualAgent, events_api: SimulatorGateway, clock
) -> None:
    VirtualAgent.objects.filter(pk=bot.pk).update(max_concurrent_calls=3)
    campaign = leads(campaign, FIRST, THEN)
    switch = Switch()
    assert tick(switch).originated == 3
    assert sorted(o.to for o in switch.ringing) == FIRST

    halt(campaign=campaign, by="tests")
    ended_at = NOON_UTC + timedelta(minutes=1)
    finish(switch.ringing, events_api, clock, ended_at)

    attempts = {attempt.phone: attempt for attempt in CallAttempt.objects.all()}
    assert {phone: attempts[phone].outcome for phone in FIRST} == {
        FIRST[0]: AttemptOutcome.COMPLETED,
        FIRST[1]: AttemptOutcome.BUSY,
        FIRST[2]: AttemptOutcome.FAILED,
    }
    assert all(attempt.ended_at is not None for attempt in attempts.values())
    by_phone = {lead.phone: lead for lead in Lead.objects.all()}
    assert by_phone[FIRST[0]].status == LeadStatus.DONE
    busy = by_phone[FIRST[1]]
    assert (busy.status, busy.last_outcome) == (LeadStatus.RETRY, AttemptOutcome.BUSY)
    assert busy.next_attempt_at == attempts[FIRST[1]].ended_at + timedelta(minutes=30)
    assert by_phone[FIRST[2]].status == LeadStatus.RETRY
    assert {(by_phone[phone].status, by_phone[phone].attempts) for phone in THEN} == {(LeadStatus.NEW, 0)}

    # Every slot is free again and leads are due (the retries too, hours later): nothing is dialled,
    # and the campaign neither resumes nor completes by itself.
    for later in (ended_at, ended_at + timedelta(hours=3)):
        idle = Switch()
        assert tick(idle, at=later).originated == 0 and idle.ringing == []
    assert CallAttempt.objects.count() == 3
    assert status_of(campaign) == (
        CampaignStatus.PAUSED if halt is pause_campaign else CampaignStatus.STOPPED
    )

    if halt is pause_campaign:  # started again, it dials what waited (the test could have seen a dial)
        start_campaign(campaign=campaign, by="tests")
        resumed = Switch()
        tick(resumed, at=ended_at + timedelta(hours=3))
        assert sorted(o.to for o in resumed.ringing) == sorted([FIRST[1], FIRST[2], *THEN][:3])


@pytest.mark.parametrize("halt", [pause_campaign, stop_campaign], ids=["paused", "stopped"])
def test_a_halt_during_a_tick_lets_that_tick_finish_and_the_next_dials_nothing(
    halt, campaign: Campaign, bot: VirtualAgent, events_api: SimulatorGateway, clock
) -> None:
    VirtualAgent.objects.filter(pk=bot.pk).update(max_concurrent_calls=2)
    campaign = leads(campaign, ["+12125550102", "+12125550103"], ["+12125550104", "+12125550105"])
    # The person's click lands while the tick dials its claims: those calls go out (they were
    # claimed under an active campaign), no later tick places another.
    switch = Switch(during=lambda: halt(campaign=campaign, by="tests"))
    assert tick(switch).originated == 2 and len(switch.ringing) == 2
    assert status_of(campaign) in (CampaignStatus.PAUSED, CampaignStatus.STOPPED)

    finish(switch.ringing, events_api, clock, NOON_UTC + timedelta(minutes=2))
    assert set(CallAttempt.objects.values_list("outcome", flat=True)) == {AttemptOutcome.COMPLETED}
    assert Lead.objects.filter(status=LeadStatus.DONE).count() == 2

    idle = Switch()
    assert tick(idle, at=NOON_UTC + timedelta(minutes=2)).originated == 0 and idle.ringing == []
    assert Lead.objects.filter(status=LeadStatus.NEW, attempts=0).count() == 2


def test_a_paused_campaigns_silent_call_is_failed_and_its_lead_waits(
    campaign: Campaign, bot: VirtualAgent
) -> None:
    """A call of a paused campaign that the switch never reports on is closed as any other,
    so its lead is not stuck in progress; the lead waits for the campaign to start again."""
    VirtualAgent.objects.filter(pk=bot.pk).update(max_concurrent_calls=1)
    campaign = leads(campaign, ["+12125550102"], ["+12125550103"])
    assert tick(Switch()).originated == 1
    pause_campaign(campaign=campaign, by="tests")

    later = NOON_UTC + SILENT_DIAL_TIMEOUT + timedelta(seconds=1)
    idle = Switch()
    result = tick(idle, at=later)

    assert (result.failed, result.originated, idle.ringing) == (1, 0, [])
    attempt = CallAttempt.objects.get()
    assert (attempt.outcome, attempt.ended_at) == (AttemptOutcome.FAILED, later)
    lead = Lead.objects.get(pk=attempt.lead_id)
    assert (lead.status, lead.next_attempt_at) == (LeadStatus.RETRY, later + timedelta(minutes=15))
    assert status_of(campaign) == CampaignStatus.PAUSED
