"""Give a contact center realistic call history (reporting/history.py): for demos and benchmarks.

    manage.py generate_calls --count 3000 [--days 30] [--center acme] [--seed 1] [--bulk] [--once]

By default the calls go through the events API's own path (validation, ingestion: events, records,
handoffs). `--bulk` writes only the records and handoffs ingestion would fold from the same events,
in bulk (COPY on PostgreSQL): for millions of calls. `--once` does nothing when the center already has
generated history (what `make run` uses, so a second run adds none).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reporting import history
from reporting.rollups import fold_all_stale
from voiso_byob.models import ContactCenter


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(value)
    return number


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Generate realistic call history (through the flows, bots and campaigns) for a contact center."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, required=True, help="How many calls.")
        parser.add_argument("--days", type=_positive, default=30.0, help="Over how many days up to now.")
        parser.add_argument("--center", default="acme", help="The contact center's slug.")
        parser.add_argument("--seed", type=int, default=None, help="Make the history repeatable.")
        parser.add_argument(
            "--end", default="", help="The window's end, ISO 8601 with an offset (default: now)."
        )
        parser.add_argument(
            "--bulk",
            action="store_true",
            help="Write folded records and handoffs in bulk (COPY on PostgreSQL), no events.",
        )
        parser.add_argument(
            "--once", action="store_true", help="Do nothing if the center already has generated history."
        )
        parser.add_argument(
            "--handoff-share", type=_fraction, default=0.3, help="Share (0-1) of bot calls handed off."
        )
        parser.add_argument(
            "--outbound-share",
            type=_fraction,
            default=0.15,
            help="Share (0-1) of calls placed by the center's campaigns, if it has any.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["count"] < 1:
            raise CommandError("--count must be at least 1.")
        center = ContactCenter.objects.filter(slug=options["center"].strip().lower()).first()
        if center is None:
            raise CommandError(f"No contact center {options['center']!r} (seed_demo makes 'acme').")
        if options["once"] and history.has_history(center):
            self.stdout.write(f"{center.name} already has generated history: nothing to do.")
            return
        end = datetime.now(UTC)
        if options["end"]:
            try:
                end = datetime.fromisoformat(options["end"])
            except ValueError:
                raise CommandError("--end takes ISO 8601, e.g. 2026-05-01T00:00:00+00:00.") from None
            if end.tzinfo is None:
                raise CommandError("--end needs an offset (e.g. +00:00).")
        seed = options["seed"] if options["seed"] is not None else random.SystemRandom().randrange(2**31)
        spec = history.Spec(
            count=options["count"],
            end=end,
            days=options["days"],
            seed=seed,
            handoff_share=options["handoff_share"],
            outbound_share=options["outbound_share"],
        )
        cast = history.cast_for(center)
        if not cast.lines and not cast.campaigns:
            raise CommandError(f"{center.name} has no number with a published flow and no campaign to call.")
        began = time.monotonic()
        calls = history.generate(cast, spec)
        if options["bulk"]:
            written = history.bulk_write(center, calls)
            what = f"{written} call records (bulk, no events)"
        else:
            accepted = history.ingest_calls(center, calls)
            # The reports' rollups of those calls now, not when a fold worker next runs.
            fold_all_stale()
            what = f"{spec.count} calls ({accepted} events through ingestion)"
        self.stdout.write(
            f"Generated {what} for {center.name} over {spec.days:g} days up to {spec.end:%Y-%m-%d %H:%M} UTC "
            f"(seed {seed}) in {time.monotonic() - began:.1f} s."
        )
