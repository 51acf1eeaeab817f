"""A dialer worker: `manage.py run_dialer [--gateway simulator|http]`.

Run as many as you like, on as many hosts: they share the work through the database (claims are
row locks with SKIP LOCKED), so more workers means more calls placed per second, never a lead
dialled twice. SIGTERM or Ctrl-C stops after the current tick; calls in progress go on.

`--gateway simulator` (the default under `make run`) plays the callee and the switch and reports
to the events API at `--url`, with a telephony key minted per contact center for this run and
revoked when it ends. `--gateway http` posts signed requests to DIALER_SWITCH_URL.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import OperationalError, close_old_connections

from campaigns.dialer import Dialer
from campaigns.gateways import Gateway
from campaigns.gateways.http import HttpGateway
from campaigns.gateways.simulator import SimulatorGateway
from campaigns.lead_imports import process_lead_imports
from voiso_byob.models import ApiKey, ApiKeyScope, ContactCenter
from voiso_byob.services import create_api_key, revoke_api_key

logger = logging.getLogger("campaigns.run_dialer")

KEY_NAME = "Dialer simulator"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
BY = "manage.py run_dialer"
# CSV lead files uploaded in the portal are imported by the workers in what is left of each tick's
# interval, a chunk (5,000 rows, a few tenths of a second) at a time: at most one chunk holds up
# the next tick's calls.
IMPORT_CHUNKS_PER_TICK = 1_000


class Command(BaseCommand):
    help = "Run a dialer worker: place the due calls of active campaigns, tick after tick."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--gateway", choices=["simulator", "http"], default="simulator")
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between ticks (at most 1).")
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000", help="simulator: the events API's server."
        )
        parser.add_argument(
            "--time-scale", type=float, default=1.0, help="simulator: multiplies the calls' lengths."
        )
        parser.add_argument("--ticks", type=int, default=0, help="Stop after this many ticks (0: never).")

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request drowns the summaries
        interval = options["interval"]
        if not 0 < interval <= 1:
            raise CommandError("--interval is more than 0 and at most 1 second.")
        minted: list[ApiKey] = []
        gateway = self._gateway(options, minted)
        stop = threading.Event()
        # Ours while the worker runs, the caller's again after (a test calling the command must
        # not leave its process deaf to SIGTERM).
        previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in _STOP_SIGNALS}
        dialer = Dialer(gateway=gateway)
        self.stdout.write(
            f"Dialer worker started ({options['gateway']} gateway, a tick every {interval:g} s)."
        )
        ticks = 0
        try:
            while not stop.is_set():
                started = time.monotonic()
                close_old_connections()  # a database restart costs a tick, not the worker
                try:
                    result = dialer.tick()
                except OperationalError as exc:
                    logger.warning("dialer: database unavailable (%s); trying again", exc)
                else:
                    if result.originated or result.released or result.failed or result.status_changes:
                        logger.info(
                            "dialer: %d campaigns, %d dialled, %d deferred, %d dnc, %d released, %d failed%s",
                            result.campaigns,
                            result.originated,
                            result.deferred,
                            result.dnc,
                            result.released,
                            result.failed,
                            "".join(f"; campaign {pk} {status}" for pk, status in result.status_changes),
                        )
                try:
                    process_lead_imports(limit_chunks=IMPORT_CHUNKS_PER_TICK, until=started + interval)
                except OperationalError as exc:
                    logger.warning("lead imports: database unavailable (%s); trying again", exc)
                ticks += 1
                if options["ticks"] and ticks >= options["ticks"]:
                    break
                stop.wait(max(0.0, interval - (time.monotonic() - started)))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            gateway.close()
            for key in minted:
                revoke_api_key(key=key, by=BY)
        self.stdout.write("Dialer worker stopped.")

    def _gateway(self, options: dict[str, Any], minted: list[ApiKey]) -> Gateway:
        if options["gateway"] == "http":
            try:
                return HttpGateway(url=settings.DIALER_SWITCH_URL, secret=settings.DIALER_SWITCH_SECRET)
            except ValueError as exc:
                raise CommandError(str(exc)) from None

        def api_key_for(center_id: str) -> str:
            center = ContactCenter.objects.get(pk=center_id)
            key, raw = create_api_key(center=center, name=KEY_NAME, scope=ApiKeyScope.TELEPHONY, by=BY)
            minted.append(key)
            return raw

        return SimulatorGateway(
            base_url=options["url"].rstrip("/"), api_key_for=api_key_for, time_scale=options["time_scale"]
        )
