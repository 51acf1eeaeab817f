from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from voiso_byob.errors import DomainError
from voiso_byob.services import create_contact_center


class Command(BaseCommand):
    help = "Create a contact center with its first administrator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="One DNS label; the SIP domain is {slug}.voiso.com")
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-password", required=True)
        parser.add_argument("--enable-byob", action="store_true", help="Switch Bring Your Own Bot on.")
        parser.add_argument("--timezone", default="UTC")
        parser.add_argument("--extension-length", type=int, default=4)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            center = create_contact_center(
                slug=options["slug"],
                name=options["name"],
                admin_email=options["admin_email"],
                admin_password=options["admin_password"],
                byob_enabled=options["enable_byob"],
                timezone_name=options["timezone"],
                extension_length=options["extension_length"],
                by="manage.py create_contact_center",
            )
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(f"Created {center.name} ({center.sip_domain}).")
