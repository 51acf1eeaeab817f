"""`manage.py run_dialer` against a served portal: the demo campaign's calls reach the events API."""

from __future__ import annotations

import io
import signal
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from campaigns.models import CallAttempt, Campaign, CampaignStatus, Lead, LeadStatus
from reporting.models import CallRecord
from voiso_byob.models import ApiKey

# A Wednesday: 10:00 in New York, 15:00 in London, 02:00 next day in Sydney.
MORNING_IN_NEW_YORK = datetime(2026, 1, 7, 15, 0, tzinfo=UTC)


@pytest.fixture
def demo(transactional_db, time_machine) -> Campaign:
    time_machine.move_to(MORNING_IN_NEW_YORK, tick=True)
    call_command("seed_demo", stdout=io.StringIO())
    return Campaign.objects.get(name="Policy renewals")


def test_the_demo_campaign_is_seeded_and_started(demo: Campaign) -> None:
    assert demo.status == CampaignStatus.ACTIVE
    assert demo.leads.count() == 200
    assert demo.virtual_agents.get().extension is None  # a campaign-only bot needs no extension
    call_command("seed_demo", stdout=io.StringIO())
    assert Lead.objects.count() == 200  # idempotent


def test_a_worker_dials_the_demo_and_the_outcomes_come_back(demo: Campaign, live_server: Any) -> None:
    out = io.StringIO()
    before = signal.getsignal(signal.SIGTERM)
    call_command(
        "run_dialer",
        "--url",
        live_server.url,
        "--ticks",
        "1",
        "--time-scale",
        "0",
        "--interval",
        "0.1",
        stdout=out,
    )
    assert "Dialer worker stopped." in out.getvalue()
    attempts = list(CallAttempt.objects.select_related("lead"))
    assert len(attempts) == 20  # the bot's capacity
    # Only leads whose local time is inside 08:00-21:00 were dialled: not Sydney's, at 02:00.
    assert not [a for a in attempts if a.phone.startswith("+61")]
    # The simulator's stories were told whole (time scale 0): every attempt has its outcome.
    assert all(a.outcome for a in attempts)
    assert (
        CallRecord.objects.filter(call_id__in=[a.call_id for a in attempts], direction="outbound").count()
        == 20
    )
    done = Lead.objects.filter(status=LeadStatus.DONE).count()
    assert done == sum(1 for a in attempts if a.phone[-1] in "012345")
    # The key minted for the run is revoked, and the process hears SIGTERM as before the run.
    assert ApiKey.objects.get(name="Dialer simulator").revoked_at is not None
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.django_db
def test_the_http_gateway_needs_its_settings(settings) -> None:
    settings.DIALER_SWITCH_URL = ""
    with pytest.raises(CommandError, match="DIALER_SWITCH_URL"):
        call_command("run_dialer", "--gateway", "http", "--ticks", "1")
    with pytest.raises(CommandError, match="interval"):
        call_command("run_dialer", "--interval", "5", "--ticks", "1")
