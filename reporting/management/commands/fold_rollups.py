"""The rollups' fold worker: `manage.py fold_rollups [--interval 1] [--settle 5] [--max-lag 60] [--once]`.

Ingestion marks the 15-minute buckets whose records it changed; this recomputes them from the
records (reporting.rollups.fold_stale) once no event has touched them for `--settle` seconds, and
at least every `--max-lag` seconds while events keep touching them: the reports read a quarter hour
about 5 s after its last event, and the one calls are still coming in at most a minute behind.
Run one or more: they take turns (an advisory lock), so a second worker only stands in when the
first stops. SIGTERM or Ctrl-C stops after the current fold. `--once` folds every marked bucket now.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import OperationalError, close_old_connections

from reporting.rollups import FOLD_MAX_LAG_SECONDS, FOLD_SETTLE_SECONDS, fold_all_stale, fold_stale

logger = logging.getLogger("reporting.fold_rollups")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Command(BaseCommand):
    help = "Recompute the reports' rollup buckets that ingestion marked stale, about once a second."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between folds (at most 60).")
        parser.add_argument(
            "--settle", type=float, default=FOLD_SETTLE_SECONDS, help="Seconds a bucket has had no event."
        )
        parser.add_argument(
            "--max-lag", type=float, default=FOLD_MAX_LAG_SECONDS, help="Seconds a busy bucket may wait."
        )
        parser.add_argument("--once", action="store_true", help="Fold every marked bucket now, then stop.")

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["interval"]
        if not 0 < interval <= 60:
            raise CommandError("--interval is more than 0 and at most 60 seconds.")
        if not 0 <= options["settle"] <= options["max_lag"]:
            raise CommandError("--settle is at least 0 and at most --max-lag.")
        if options["once"]:
            self.stdout.write(f"{fold_all_stale()} buckets folded.")
            return
        stop = threading.Event()
        # Ours while the worker runs, the caller's again after (a test calling the command must
        # not leave its process deaf to SIGTERM).
        # An ignored SIGINT stays ignored: `make run` starts this in the background and stops it
        # with SIGTERM after Ctrl-C, once the simulated calls have ended.
        signals = [s for s in _STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
        previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in signals}
        self.stdout.write(
            f"Rollup fold worker started (every {interval:g} s; settle {options['settle']:g} s, "
            f"max lag {options['max_lag']:g} s)."
        )
        try:
            while not stop.is_set():
                started = time.monotonic()
                close_old_connections()  # a database restart costs a fold, not the worker
                try:
                    folded, _ = fold_stale(settle=options["settle"], max_lag=options["max_lag"])
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
