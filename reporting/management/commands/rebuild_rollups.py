"""Recompute the reports' 15-minute rollups from the call records (reporting.rollups).

    manage.py rebuild_rollups [--center SLUG]

The fold worker (`manage.py fold_rollups`) recomputes the buckets ingestion marks; this is for
records written another way (a bulk load, a restore, an upgrade from before the rollups) and after
changing BOT_ABANDON_SECONDS or a queue's service level T. Each center is rebuilt in one
transaction.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reporting.rollups import rebuild_rollups
from voiso_byob.models import ContactCenter


class Command(BaseCommand):
    help = "Recompute the reports' rollups from the call records, for one contact center or all."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--center", help="The contact center's slug (default: every center).")

    def handle(self, *args: Any, **options: Any) -> None:
        centers = ContactCenter.objects.order_by("slug")
        if options["center"]:
            centers = centers.filter(slug=options["center"])
            if not centers.exists():
                raise CommandError(f"No contact center {options['center']!r}.")
        for center in centers:
            began = time.monotonic()
            calls, handoffs = rebuild_rollups(center_id=center.pk)
            self.stdout.write(
                f"{center.slug}: {calls} call rollup rows, {handoffs} handoff rollup rows "
                f"in {time.monotonic() - began:.1f} s"
            )
