"""Drive simulated calls through a running server's telephony API (see reporting/simulator.py).

Against the local database (the default), the numbers with a published flow, the queues and the
agents' extensions come from the contact center, and a telephony API key named "Traffic
simulator" is created for this run and revoked when it ends: keys are stored hashed, so there is
no plain key to reuse. Against another server, pass --api-key (or SIMULATOR_API_KEY) and the
numbers and extensions to use.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from reporting.history import bot_refer_targets, people_targets, queue_targets
from reporting.simulator import ReferTarget, Simulator, SimulatorConfig, SimulatorError, Stats
from routing.models import PhoneNumber
from voiso_byob.errors import DomainError
from voiso_byob.models import ApiKey, ApiKeyScope, ContactCenter
from voiso_byob.phone import normalise_e164
from voiso_byob.services import create_api_key, revoke_api_key
from voiso_byob.sip import sip_domain

KEY_NAME = "Traffic simulator"
BY = "manage.py simulate_calls"
REFER_TO_RE = re.compile(r"^([0-9]{1,20})(?::([A-Za-z0-9_-]{1,64}))?$")


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Act as the SIP layer: simulated inbound calls through the telephony API of a running server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rate", type=float, default=1.0, help="New calls per second (Poisson).")
        parser.add_argument(
            "--duration", type=float, default=60.0, help="Seconds of new calls; 0 runs until interrupted."
        )
        parser.add_argument(
            "--handoff-share",
            type=_fraction,
            default=0.3,
            help="Share (0-1) of bot calls the bot hands to a person with a REFER.",
        )
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The server's base URL.")
        parser.add_argument("--center", default="acme", help="The contact center's slug.")
        parser.add_argument(
            "--api-key",
            default=os.environ.get("SIMULATOR_API_KEY", ""),
            help="A telephony API key (default: SIMULATOR_API_KEY, else one created for this run).",
        )
        parser.add_argument(
            "--number", action="append", default=[], help="A DID to call (repeatable; default: the center's)."
        )
        parser.add_argument(
            "--refer-to",
            action="append",
            default=[],
            metavar="EXT[:REASON]",
            help="An extension bots hand calls to, with the X-Reason they give (repeatable).",
        )
        parser.add_argument(
            "--agent", action="append", default=[], help="An agent's extension answering queue calls."
        )
        parser.add_argument("--seed", type=int, default=None, help="Make the calls' choices repeatable.")
        parser.add_argument(
            "--time-scale",
            type=float,
            default=1.0,
            help="Multiplies every pause in a call (0.1: 10x faster).",
        )
        parser.add_argument("--report-every", type=float, default=10.0, help="Seconds between summary lines.")
        parser.add_argument(
            "--connections", type=int, default=20, help="Concurrent HTTP connections at most."
        )
        parser.add_argument(
            "--wait", type=float, default=60.0, help="Seconds to wait for the server to answer at first."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["center"].strip().lower()
        center = ContactCenter.objects.filter(slug=slug).first()
        numbers = self._numbers(center, options["number"])
        targets = self._targets(center, options["refer_to"], options["agent"])
        bot_targets = self._bot_targets(center, targets) if not options["refer_to"] else {}
        try:
            domain = center.sip_domain if center is not None else sip_domain(slug)
        except ValueError:
            raise CommandError(f"{slug!r} is not a contact center slug.") from None
        raw_key = options["api_key"].strip()
        minted: ApiKey | None = None
        if not raw_key:
            if center is None:
                raise CommandError(
                    f"No contact center {slug!r} in this database: pass --api-key (or SIMULATOR_API_KEY), "
                    "--number and --refer-to for a server elsewhere."
                )
            minted, raw_key = create_api_key(center=center, name=KEY_NAME, scope=ApiKeyScope.TELEPHONY, by=BY)
        try:
            config = SimulatorConfig(
                base_url=options["url"].rstrip("/"),
                api_key=raw_key,
                sip_domain=domain,
                numbers=tuple(numbers),
                refer_targets=tuple(targets),
                bot_targets=bot_targets,
                rate=options["rate"],
                duration=options["duration"],
                handoff_share=options["handoff_share"],
                seed=options["seed"],
                time_scale=options["time_scale"],
                report_every=options["report_every"],
                connections=options["connections"],
                startup_timeout=options["wait"],
            )
            self._run(config)
        finally:
            if minted is not None:
                revoke_api_key(key=minted, by=BY)

    def _numbers(self, center: ContactCenter | None, given: list[str]) -> list[str]:
        if given:
            try:
                return [normalise_e164(number, field="number") for number in given]
            except DomainError:
                raise CommandError(
                    f"--number takes E.164 numbers, e.g. +442079460000 (got {given})."
                ) from None
        if center is None:
            return []
        return list(
            PhoneNumber.objects.for_center(center)
            .filter(flow__published_version__isnull=False)
            .order_by("number")
            .values_list("number", flat=True)
        )

    def _targets(
        self, center: ContactCenter | None, given: list[str], agents: list[str]
    ) -> list[ReferTarget]:
        if given:
            targets = []
            for value in given:
                match = REFER_TO_RE.fullmatch(value.strip())
                if match is None:
                    raise CommandError(
                        f"--refer-to takes EXT or EXT:REASON, e.g. 4500:billing (got {value!r})."
                    )
                extension, reason = match.groups()
                targets.append(ReferTarget(extension, reason or "human_requested", tuple(agents)))
            return targets
        if center is None:
            return []
        return [*queue_targets(center), *people_targets(center)]

    def _bot_targets(
        self, center: ContactCenter | None, targets: list[ReferTarget]
    ) -> dict[str, tuple[ReferTarget, ...]]:
        """Each bot hands off to the targets configured in its transfer tool, as a real bot does."""
        return bot_refer_targets(center, targets) if center is not None else {}

    def _run(self, config: SimulatorConfig) -> Stats:
        try:
            simulator = Simulator(config, write=self._write)
        except SimulatorError as exc:
            raise CommandError(str(exc)) from None
        # Nothing touches the database until the run ends; do not hold a connection for hours
        # (unless a caller's transaction is open on it, as in tests).
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:
                connection.close()
        # httpx logs every request at INFO: thousands of lines that say nothing the summary does not.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._write(
            f"Simulating calls to {', '.join(config.numbers)} at {config.rate:g}/s "
            f"({'until interrupted' if not config.duration else f'for {config.duration:g} s'}, "
            f"handoff share {config.handoff_share:g}) against {config.base_url}."
        )
        try:
            return asyncio.run(self._serve(simulator))
        except SimulatorError as exc:
            raise CommandError(str(exc)) from None

    async def _serve(self, simulator: Simulator) -> Stats:
        loop = asyncio.get_running_loop()

        def interrupted() -> None:
            if simulator.is_stopping:
                self._write("Aborting.")
                simulator.abort()
            else:
                self._write("Stopping: ending the calls in progress (interrupt again to abort).")
                simulator.stop()

        # An ignored SIGINT stays ignored: `make run` starts this in the background and stops it
        # with SIGTERM after Ctrl-C, so the calls end while the server still answers.
        signals = [signal.SIGTERM]
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signals.append(signal.SIGINT)

        # Plain Python handlers that hand the signal to the loop, rather than loop.add_signal_handler:
        # that one relies on the process's single signal wake-up fd, which other code in the same
        # process can take over (in the test suite a run was left going for ever, its signals
        # caught and never delivered). A Python handler always runs in the main thread.
        def handler(*_: object) -> None:
            loop.call_soon_threadsafe(interrupted)

        previous = {signum: signal.signal(signum, handler) for signum in signals}
        try:
            return await simulator.run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _write(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
