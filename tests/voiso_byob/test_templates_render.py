"""Every portal template, rendered as its page serves it, holds no template syntax as text, and
no inline script or style under its Content-Security-Policy (tests/voiso_byob/test_csp.py).

Django's `{# … #}` comment is one line only: a longer one, or a tag split over lines, reaches the page
as text. The browser tests check what they visit; this walks every template-backed page quickly.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from campaigns.models import Campaign
from reporting.models import CallRecord
from routing.models import Flow, PhoneNumber, Queue
from tests.reporting.factories import make_call, make_event, make_handoff
from tests.voiso_byob.test_csp import directives, inline_code_in
from virtual_agents.models import ProviderIntegration, VirtualAgent
from voiso_byob.management.commands.seed_demo import ADMIN_EMAIL, DEMO_PASSWORD
from voiso_byob.models import ContactCenter, Invitation, Membership, Role

TEMPLATE_TEXT = re.compile(r"\{[#%]|[#%]\}")
TEMPLATES_DIR = Path(settings.BASE_DIR) / "templates"


def template_text_in(html: str) -> list[str]:
    return [html[max(0, m.start() - 60) : m.end() + 60] for m in TEMPLATE_TEXT.finditer(html)]


def project_templates() -> set[str]:
    return {str(path.relative_to(TEMPLATES_DIR)) for path in TEMPLATES_DIR.rglob("*.html")}


@pytest.fixture
def demo(db) -> ContactCenter:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return ContactCenter.objects.get(slug="acme")


def log_in(email: str) -> Client:
    client = Client()
    assert client.login(username=email, password=DEMO_PASSWORD)
    return client


def test_the_template_syntax_check_finds_a_multi_line_comment() -> None:
    # The check itself: what the Calls page showed before its comment became {% comment %}.
    assert template_text_in("<p>{# one line is fine in a template, not in a page")
    assert template_text_in("brought. #}\n<div>")
    assert not template_text_in("<style>a { width: 50% }</style><a href='#'>x</a>")


def portal_pages(demo: ContactCenter) -> list[str]:
    """The address of every portal page of the demo center, as its administrator sees them (with a
    call, a handoff and an event added). The browser walks them too (tests/browser/test_csp.py)."""
    queue = Queue.objects.for_center(demo).first()
    number = PhoneNumber.objects.filter(contact_center=demo).first()
    flow = Flow.objects.filter(contact_center=demo).first()
    integration = ProviderIntegration.objects.filter(contact_center=demo).first()
    bot = VirtualAgent.objects.filter(integration__contact_center=demo).first()
    member = Membership.objects.filter(contact_center=demo, role=Role.AGENT).first()
    call = make_call(demo, call_id="walk-1", virtual_agent=bot, queue=queue)
    make_handoff(call)
    make_event(demo, call.call_id, "call.started", call.started_at)
    version = flow.versions.first()
    node_id = next(iter(version.graph["nodes"]))  # any node of its graph
    campaign = Campaign.objects.for_center(demo).first()
    return [
        "/",
        "/profile/",
        "/members/",
        "/members/new/",
        f"/members/{member.pk}/",
        f"/members/{member.pk}/delete/",
        "/api-keys/",
        "/api-keys/new/",
        "/audit/",
        "/campaigns/",
        "/campaigns/new/",
        f"/campaigns/{campaign.pk}/",
        f"/campaigns/{campaign.pk}/edit/",
        "/campaigns/dnc/",
        f"/campaigns/{campaign.pk}/dnc/",
        "/reports/virtual-agents/",
        "/reports/queues/?interval=hour",
        "/reports/campaigns/",
        "/reports/queues/?interval=fortnight",  # a refused filter renders its errors
        "/live/",
        "/calls/",
        "/calls/?direction=sideways",  # a refused filter renders its errors
        f"/calls/{CallRecord.objects.get(call_id='walk-1').call_id}/",
        "/routing/queues/",
        "/routing/queues/new/",
        f"/routing/queues/{queue.pk}/",
        f"/routing/queues/{queue.pk}/delete/",
        "/routing/numbers/",
        "/routing/numbers/new/",
        f"/routing/numbers/{number.pk}/",
        f"/routing/numbers/{number.pk}/delete/",
        "/routing/external-transfers/",
        "/switch/",
        "/routing/flows/",
        "/routing/flows/new/",
        f"/routing/flows/{flow.pk}/",
        f"/routing/flows/{flow.pk}/settings/",
        f"/routing/flows/{flow.pk}/versions/",
        f"/routing/flows/{flow.pk}/versions/{version.number}/",
        f"/routing/flows/{flow.pk}/nodes/{node_id}/",
        "/virtual-agents/",
        "/virtual-agents/connect/",
        "/virtual-agents/connect/?provider=vapi",
        f"/virtual-agents/integrations/{integration.pk}/",
        f"/virtual-agents/integrations/{integration.pk}/edit/",
        f"/virtual-agents/integrations/{integration.pk}/agents/new/",
        f"/virtual-agents/{bot.pk}/",
        f"/virtual-agents/{bot.pk}/edit/",
        f"/routing/queues/{uuid.uuid4()}/",  # 404 page
        "/api/docs/",  # Swagger UI, drf-spectacular's page as templates/drf_spectacular/ overrides it
    ]


def test_every_portal_page_renders_without_template_syntax(demo: ContactCenter) -> None:
    pages = portal_pages(demo)
    member = Membership.objects.filter(contact_center=demo, role=Role.AGENT).first()
    admin = log_in(ADMIN_EMAIL)
    rendered: set[str] = set()
    found: list[str] = []

    def check(
        client: Client, url: str, method: str = "get", data: dict | None = None, status_below: int = 500
    ) -> None:
        response = getattr(client, method)(url, data or {})
        assert response.status_code < status_below, url
        rendered.update(t.name for t in response.templates if t.name)
        html = response.content.decode()
        found.extend(f"{url}: …{text}…" for text in template_text_in(html))
        # Every page under the strict Content-Security-Policy, and nothing in it that the policy refuses.
        policy = response.get("Content-Security-Policy", "")
        if directives(policy).get("script-src") != ["'self'"] or "unsafe" in policy:
            found.append(f"{url}: Content-Security-Policy {policy!r}")
        found.extend(f"{url}: …{text}…" for text in inline_code_in(html))

    for url in pages:
        check(admin, url)
    check(admin, "/api-keys/new/", "post", {"name": "walk", "scope": "read"})  # the key, shown once
    check(log_in("ana@acme.example"), "/members/")  # an agent is refused: 403 page
    check(log_in("ana@acme.example"), "/profile/")
    check(Client(), "/accounts/login/")
    raw, hashed = Invitation.generate_token()
    Invitation.objects.create(
        contact_center=demo,
        email="newcomer@acme.example",
        role=Role.AGENT,
        hashed_token=hashed,
        expires_at=timezone.now() + timedelta(days=7),
    )
    check(admin, "/members/")  # with its pending invitation
    check(Client(), f"/invitations/{raw}/")  # a new address signs up
    check(admin, f"/invitations/{raw}/")  # another account is signed in
    check(Client(), "/invitations/not-a-token/")  # an unknown link
    byob_off = ContactCenter.objects.create(name="Off", slug="off")
    Membership.objects.create(user=member.user, contact_center=byob_off, role=Role.ADMINISTRATOR)
    off = log_in(member.user.email)
    off.post("/switch/", {"center": byob_off.slug})
    check(off, "/virtual-agents/")  # BYOB not switched on
    # The database stops answering mid-page: the plain 503 page (voiso_byob/db_outage.py).
    admin.raise_request_exception = False
    with mock.patch("voiso_byob.views.paginate", side_effect=OperationalError("the database is restarting")):
        check(admin, "/members/", status_below=504)

    assert not found, "template syntax, inline code or no policy in a rendered page:\n" + "\n".join(found)
    # Every template of the project was part of some page above (500.html is rendered by Django
    # itself, without a context, when a view raises).
    missing = project_templates() - rendered - {"500.html"}
    assert not missing, f"pages not walked for: {sorted(missing)}"
