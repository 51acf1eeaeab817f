from __future__ import annotations

import pytest

from campaigns.models import Campaign
from campaigns.services import LeadRow, create_campaign, import_leads
from tests.reporting.factories import make_bot
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter


@pytest.fixture
def bot(acme: ContactCenter) -> VirtualAgent:
    return make_bot(acme, "Outbound bot")


@pytest.fixture
def campaign(acme: ContactCenter, bot: VirtualAgent) -> Campaign:
    return create_campaign(center=acme, by="tests", name="Renewals", virtual_agents=[bot])


def add_leads(campaign: Campaign, *phones: str) -> list[str]:
    result = import_leads(campaign=campaign, rows=[LeadRow(phone) for phone in phones], by="tests")
    return [item["id"] for item in result.created]
