from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from voiso_byob.errors import DomainError
from voiso_byob.models import ApiKeyScope, ContactCenter
from voiso_byob.services import create_api_key


class Command(BaseCommand):
    help = "Create an API key and print it (only the key, on stdout, so scripts can capture it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The contact center's slug.")
        parser.add_argument("--name", required=True)
        parser.add_argument("--scope", required=True, choices=ApiKeyScope.values)

    def handle(self, *args: Any, **options: Any) -> None:
        center = ContactCenter.objects.filter(slug=options["slug"].lower()).first()
        if center is None:
            raise CommandError(f"No contact center with slug {options['slug']!r}.")
        try:
            _, raw = create_api_key(
                center=center, name=options["name"], scope=options["scope"], by="manage.py create_api_key"
            )
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(raw)
