"""A demo contact center for a newcomer's first run. Idempotent: a second run changes nothing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from routing.models import Queue
from routing.services import create_queue
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
BY = "manage.py seed_demo"


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
        self.stdout.write(
            f"Demo contact center {center.name} ({center.sip_domain}) is ready.\n"
            f"  administrator: {ADMIN_EMAIL} / {DEMO_PASSWORD}\n"
            f"  supervisor:    {SUPERVISOR_EMAIL} / {DEMO_PASSWORD}"
        )
