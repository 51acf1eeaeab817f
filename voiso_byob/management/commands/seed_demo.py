"""A demo contact center for a newcomer's first run. Idempotent: a second run changes nothing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from campaigns.models import WEEKDAYS, Campaign
from campaigns.services import LeadRow, create_campaign, import_leads, start_campaign
from routing.models import Flow, PhoneNumber, Queue
from routing.services import create_flow, create_phone_number, create_queue, publish_flow
from virtual_agents.models import Provider, ProviderIntegration, VirtualAgent
from virtual_agents.services import create_integration, create_virtual_agent
from voiso_byob.models import ContactCenter, Membership, Role
from voiso_byob.services import add_member, create_contact_center

DEMO_SLUG = "acme"
DEMO_PASSWORD = "demo-pass-1234"
ADMIN_EMAIL = "admin@acme.example"
SUPERVISOR_EMAIL = "supervisor@acme.example"

AGENTS = [
    ("ana@acme.example", "Ana Duarte", "1001"),
    ("ben@acme.example", "Ben Okafor", "1002"),
    ("chloe@acme.example", "Chloé Martin", "1003"),
    ("dev@acme.example", "Dev Raman", "1004"),
]
QUEUES = [
    # name, extension, members (by email)
    ("Sales", "4323", ["ana@acme.example", "ben@acme.example"]),
    ("Support", "4400", ["chloe@acme.example", "dev@acme.example"]),
    ("Billing", "4500", ["ana@acme.example"]),
]
# Two SIP bots (no provider account needed) answering the demo number's menu; each hands back
# to its own queue when busy. What `manage.py simulate_calls` drives traffic through.
INTEGRATION_LABEL = "Demo SIP bots"
VIRTUAL_AGENTS = [
    # name, extension, bot SIP URI, default handoff (queue extension), handoff targets
    ("Demo sales bot", "5001", "sip:sales-bot@bots.example.com", "4323", ["4323", "4500"]),
    ("Demo support bot", "5002", "sip:support-bot@bots.example.com", "4400", ["4400", "4500"]),
]
BOT_CAPACITY = 50
FLOW_NAME = "Demo main line"
# Ofcom's range for drama (+44 20 7946 0000 to 0999): never a real subscriber.
DEMO_NUMBER = "+442079460000"
BY = "manage.py seed_demo"

CAMPAIGN_NAME = "Policy renewals"
CAMPAIGN_BOT = "Demo renewals bot"
# Fictional ranges only: NANP 555-01xx, Ofcom's drama numbers, ACMA's fictitious mobiles. 25 leads
# in each of eight places across four countries and seven time zones; the last digit (0-9) picks
# what the simulator gateway plays (see campaigns/gateways/simulator.py).
_PLACES = [
    # (number pattern, place): {n} is the lead's index there
    ("+12125550{n:03d}", "New York"),
    ("+13105550{n:03d}", "Los Angeles"),
    ("+13125550{n:03d}", "Chicago"),
    ("+13055550{n:03d}", "Miami"),
    ("+14165550{n:03d}", "Toronto"),
    ("+18085550{n:03d}", "Honolulu"),
    ("+442079460{n:03d}", "London"),
    ("+61491570{n:03d}", "Sydney"),
]
CAMPAIGN_LEADS = [
    (
        pattern.format(n=100 + n),
        f"{place} customer {n + 1}",
        {"X-Policy": f"P-{index}{n:03d}", "X-Reason": "renewal"},
    )
    for index, (pattern, place) in enumerate(_PLACES)
    for n in range(25)
]


class Command(BaseCommand):
    help = "Create the demo contact center 'acme' with logins, agents, extensions and queues."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        center = ContactCenter.objects.filter(slug=DEMO_SLUG).first()
        if center is None:
            center = create_contact_center(
                slug=DEMO_SLUG,
                name="Acme Support",
                admin_email=ADMIN_EMAIL,
                admin_password=DEMO_PASSWORD,
                byob_enabled=True,
                timezone_name="Europe/London",
                by=BY,
            )
        members = {m.user.email: m for m in Membership.objects.for_center(center).select_related("user")}
        wanted = [(SUPERVISOR_EMAIL, "Sam Supervisor", None, Role.SUPERVISOR)] + [
            (email, name, ext, Role.AGENT) for email, name, ext in AGENTS
        ]
        for email, full_name, extension, role in wanted:
            if email not in members:
                members[email] = add_member(
                    center=center,
                    email=email,
                    role=role,
                    extension=extension,
                    password=DEMO_PASSWORD,
                    full_name=full_name,
                    by=BY,
                )
        existing = set(Queue.objects.for_center(center).values_list("name", flat=True))
        for name, extension, emails in QUEUES:
            if name not in existing:
                create_queue(
                    center=center,
                    by=BY,
                    name=name,
                    extension=extension,
                    members=[members[email] for email in emails],
                )
        self._seed_bots_and_number(center)
        self._seed_campaign(center)
        self.stdout.write(
            f"Demo contact center {center.name} ({center.sip_domain}) is ready.\n"
            f"  administrator: {ADMIN_EMAIL} / {DEMO_PASSWORD}\n"
            f"  supervisor:    {SUPERVISOR_EMAIL} / {DEMO_PASSWORD}\n"
            f"  number:        {DEMO_NUMBER} (menu: 1 sales bot, 2 support bot, 3 billing queue)\n"
            f"  campaign:      {CAMPAIGN_NAME} ({len(CAMPAIGN_LEADS)} leads; `make run` dials it)"
        )

    def _seed_campaign(self, center: ContactCenter) -> None:
        """An outbound campaign with its own bot (no extension: it only takes campaign calls)."""
        if Campaign.objects.for_center(center).filter(name=CAMPAIGN_NAME).exists():
            return
        integration = ProviderIntegration.objects.for_center(center).get(label=INTEGRATION_LABEL)
        bot = VirtualAgent.objects.for_center(center).filter(
            name=CAMPAIGN_BOT
        ).first() or create_virtual_agent(
            integration=integration,
            by=BY,
            name=CAMPAIGN_BOT,
            sip_uri="sip:renewals-bot@bots.example.com",
            max_concurrent_calls=20,
            handoff_targets=["4323"],
            default_handoff="4323",
            connect=True,
        )
        campaign = create_campaign(
            center=center,
            by=BY,
            name=CAMPAIGN_NAME,
            virtual_agents=[bot],
            handoff_queue=Queue.objects.for_center(center).get(name="Sales"),
            caller_ids=PhoneNumber.objects.filter(number=DEMO_NUMBER),
            # Every day: some leads' local hours are open whenever a newcomer first runs the demo.
            calling_hours=[{"days": list(WEEKDAYS), "start": "08:00", "end": "21:00"}],
            max_attempts=3,
            retry_minutes={"busy": 2, "no_answer": 3, "machine": 5, "failed": 1},
        )
        import_leads(
            campaign=campaign,
            rows=[
                LeadRow(phone, name=name, source="demo", context=context)
                for phone, name, context in CAMPAIGN_LEADS
            ],
            by=BY,
        )
        start_campaign(campaign=campaign, by=BY)

    def _seed_bots_and_number(self, center: ContactCenter) -> None:
        integration = ProviderIntegration.objects.for_center(center).filter(label=INTEGRATION_LABEL).first()
        if integration is None:
            integration = create_integration(
                center=center, provider=Provider.GENERIC_SIP, label=INTEGRATION_LABEL, credentials=None, by=BY
            )
        agents = {agent.name: agent for agent in VirtualAgent.objects.for_center(center)}
        for name, extension, sip_uri, default, targets in VIRTUAL_AGENTS:
            if name not in agents:
                agents[name] = create_virtual_agent(
                    integration=integration,
                    by=BY,
                    name=name,
                    sip_uri=sip_uri,
                    extension=extension,
                    max_concurrent_calls=BOT_CAPACITY,
                    handoff_targets=targets,
                    default_handoff=default,
                    connect=True,
                )
        flow = Flow.objects.for_center(center).filter(name=FLOW_NAME).first()
        if flow is None:
            queues = {queue.name: queue for queue in Queue.objects.for_center(center)}
            flow = create_flow(
                center=center,
                by=BY,
                name=FLOW_NAME,
                graph=_main_line(
                    sales_bot=agents["Demo sales bot"],
                    support_bot=agents["Demo support bot"],
                    queues=queues,
                ),
            )
            publish_flow(flow=flow, by=BY)
        if not PhoneNumber.objects.filter(number=DEMO_NUMBER).exists():
            create_phone_number(center=center, by=BY, number=DEMO_NUMBER, label="Demo main line", flow=flow)


def _route(target_type: str, target_id: object, busy: str | None = None) -> dict[str, Any]:
    return {
        "type": "route",
        "config": {"target": {"type": target_type, "id": str(target_id)}},
        "next": {"busy": busy} if busy else {},
    }


def _main_line(
    *, sales_bot: VirtualAgent, support_bot: VirtualAgent, queues: dict[str, Queue]
) -> dict[str, Any]:
    """Welcome, a menu, and a bot per choice that falls back to its queue when at capacity."""
    return {
        "nodes": {
            "start": {"type": "start", "next": {"next": "welcome"}},
            "welcome": {
                "type": "play",
                "config": {"text": "Thanks for calling Acme."},
                "next": {"next": "menu"},
            },
            "menu": {
                "type": "menu",
                "config": {"prompt": "Press 1 for sales, 2 for support, 3 for billing.", "max_tries": 2},
                "next": {
                    "1": "sales_bot",
                    "2": "support_bot",
                    "3": "billing",
                    "invalid": "support_bot",
                    "timeout": "support_bot",
                },
            },
            "sales_bot": _route("virtual_agent", sales_bot.pk, busy="sales"),
            "support_bot": _route("virtual_agent", support_bot.pk, busy="support"),
            "sales": _route("queue", queues["Sales"].pk),
            "support": _route("queue", queues["Support"].pk),
            "billing": _route("queue", queues["Billing"].pk),
        }
    }
