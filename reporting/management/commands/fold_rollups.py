"""The rollups' fold worker: `manage.py fold_rollups [--interval 1] [--once]`.

Ingestion marks the 15-minute buckets whose records it changed; this recomputes them from the
records (reporting.rollups.fold_stale), so the reports read figures at most about one interval
behind the calls. Run one or more: they take turns (an advisory lock), so a second worker only
stands in when the first stops. SIGTERM or Ctrl-C stops after the current fold.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import OperationalError, close_old_connections

from reporting.rollups import fold_all_stale

logger = logging.getLogger("reporting.fold_rollups")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Command(BaseCommand):
    help = "Recompute the reports' rollup buckets that ingestion marked stale, about once a second."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between folds (at most 60).")
        parser.add_argument("--once", action="store_true", help="Fold what is marked now, then stop.")

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["interval"]
        if not 0 < interval <= 60:
            raise CommandError("--interval is more than 0 and at most 60 seconds.")
        if options["once"]:
            self.stdout.write(f"{fold_all_stale()} buckets folded.")
            return
        stop = threading.Event()
        # Ours while the worker runs, the caller's again after (a test calling the command must
        # not leave its process deaf to SIGTERM).
        previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in _STOP_SIGNALS}
        self.stdout.write(f"Rollup fold worker started (every {interval:g} s).")
        try:
            while not stop.is_set():
                started = time.monotonic()
                close_old_connections()  # a database restart costs a fold, not the worker
                try:
                    folded = fold_all_stale()
                except OperationalError as exc:
                    logger.warning("fold_rollups: database unavailable (%s); trying again", exc)
                else:
                    if folded:
                        logger.debug("fold_rollups: %d buckets in %.3f s", folded, time.monotonic() - started)
                stop.wait(max(0.0, interval - (time.monotonic() - started)))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write("Rollup fold worker stopped.")
