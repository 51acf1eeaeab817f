"""`manage.py sip_demo` (`make sip-demo`): real SIP calls into the demo center through Kamailio.

With the portal serving (`make run`), this starts Kamailio on 127.0.0.1 with the configuration
`kamailio_config` writes, a SIPp bot behind it, and a SIPp caller dialling the *SIP demo line*:
every call reaches the bot, which hands it to the Sales queue with a REFER; the caller accepts,
reports the transfer done in a NOTIFY and hangs up. The calls appear on Live and in Calls.

It adds to the demo center (once, through the usual services, audited): a virtual agent *SIPp
demo bot* (extension 5009, its SIP URI the SIPp bot's address) and the number +44 20 7946 0099
whose flow routes straight to it. A telephony API key is created for the run and revoked at exit.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.management.commands.kamailio_config import answers_options, render_config
from routing.models import Flow, PhoneNumber
from routing.services import create_flow, create_phone_number, publish_flow
from virtual_agents.models import ProviderIntegration, VirtualAgent
from virtual_agents.services import create_integration, create_virtual_agent, update_virtual_agent
from voiso_byob.models import ApiKeyScope, ContactCenter
from voiso_byob.services import create_api_key, revoke_api_key

BY = "manage.py sip_demo"
SIPP_DIR = Path(settings.BASE_DIR) / "deploy" / "sipp"
INTEGRATION_LABEL = "Demo SIP bots"  # seed_demo's
BOT_NAME = "SIPp demo bot"
BOT_EXTENSION = "5009"
LINE = "+442079460099"
FLOW_NAME = "SIP demo line"
CALLER = "+442079460777"


def demo_line(center: ContactCenter, bot_uri: str) -> VirtualAgent:
    """The SIPp bot's virtual agent and the number that reaches it (created once, URI kept current)."""
    bot = VirtualAgent.objects.for_center(center).filter(name=BOT_NAME).first()
    if bot is None:
        integration = ProviderIntegration.objects.for_center(center).filter(label=INTEGRATION_LABEL).first()
        if integration is None:
            integration = create_integration(
                center=center, provider="generic_sip", label=INTEGRATION_LABEL, credentials=None, by=BY
            )
        bot = create_virtual_agent(
            integration=integration,
            by=BY,
            name=BOT_NAME,
            sip_uri=bot_uri,
            extension=BOT_EXTENSION,
            connect=True,
        )
    elif bot.sip_uri != bot_uri or not bot.is_enabled:
        bot = update_virtual_agent(agent=bot, by=BY, sip_uri=bot_uri, is_enabled=True)
    if not PhoneNumber.objects.filter(number=LINE).exists():
        flow = Flow.objects.for_center(center).filter(name=FLOW_NAME).first()
        if flow is None:
            graph = {
                "nodes": {
                    "start": {"type": "start", "config": {}, "next": {"next": "bot"}},
                    "bot": {
                        "type": "route",
                        "config": {"target": {"type": "virtual_agent", "id": str(bot.pk)}},
                        "next": {},
                    },
                }
            }
            flow = create_flow(center=center, by=BY, name=FLOW_NAME, graph=graph)
            publish_flow(flow=flow, by=BY)
        create_phone_number(center=center, by=BY, number=LINE, label=FLOW_NAME, flow=flow)
    return bot


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo as Ctrl-C does: children stopped, key revoked


class Command(BaseCommand):
    help = "Play real SIP calls (Kamailio + SIPp) into the demo center of a running portal (make run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--api-url", default="http://127.0.0.1:8000", help="The running portal.")
        parser.add_argument(
            "--center", default="acme", help="The contact center's slug (default: the demo's)."
        )
        parser.add_argument("--listen-port", type=int, default=5060, help="Kamailio's UDP port on 127.0.0.1.")
        parser.add_argument(
            "--bot-port", type=int, default=5070, help="The SIPp bot's UDP port on 127.0.0.1."
        )
        parser.add_argument("--rate", type=float, default=0.2, help="New calls per second (default 0.2).")
        parser.add_argument(
            "--calls", type=int, default=0, help="Stop after this many calls (0: until Ctrl-C)."
        )
        parser.add_argument(
            "--refer-to", default="<sip:4323@{domain}?X-Reason=sales>", help="What the bot's REFER asks for."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kamailio = shutil.which("kamailio") or (
            "/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None
        )
        if kamailio is None or shutil.which("sipp") is None:
            raise CommandError(
                "Needs Kamailio and SIPp: apt-get install kamailio kamailio-utils-modules "
                "kamailio-extra-modules sip-tester"
            )
        center = ContactCenter.objects.filter(slug=options["center"]).first()
        if center is None:
            raise CommandError(
                f"No contact center {options['center']!r}: run `manage.py seed_demo` (make run) first."
            )
        bot_port, edge_port = options["bot_port"], options["listen_port"]
        demo_line(center, f"sip:sipp-bot@127.0.0.1:{bot_port}")
        key, raw_key = create_api_key(
            center=center, name="SIP demo (Kamailio)", scope=ApiKeyScope.TELEPHONY, by=BY
        )
        processes: list[subprocess.Popen[bytes]] = []
        try:
            with tempfile.TemporaryDirectory(prefix="voiso-sip-demo-") as workdir:
                self._run(Path(workdir), kamailio, raw_key, center, edge_port, bot_port, options, processes)
        finally:
            for process in reversed(processes):
                if process.poll() is None:
                    process.terminate()
                    try:
                        process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        process.kill()
            revoke_api_key(key=key, by=BY)

    def _run(
        self,
        workdir: Path,
        kamailio: str,
        raw_key: str,
        center: ContactCenter,
        edge_port: int,
        bot_port: int,
        options: dict[str, Any],
        processes: list[subprocess.Popen[bytes]],
    ) -> None:
        config = workdir / "kamailio.cfg"
        config.write_text(
            render_config(
                listen=f"127.0.0.1:{edge_port}",
                api_url=options["api_url"],
                api_key=raw_key,
                sip_domain_suffix=settings.SIP_DOMAIN_SUFFIX,
                children=2,
                api_workers=2,
                event_workers=1,
                log_stderror=True,
            )
        )
        config.chmod(0o600)
        log = (workdir / "kamailio.log").open("wb")
        # No shell anywhere: each argument is one argv element, the programs are Kamailio and SIPp.
        processes.append(
            subprocess.Popen(  # noqa: S603
                [kamailio, "-f", str(config), "-DD", "-E", "-m", "64", "-M", "8", "-P", str(workdir / "pid")],
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        deadline = time.monotonic() + 20
        while not answers_options("127.0.0.1", edge_port):
            if processes[0].poll() is not None or time.monotonic() > deadline:
                raise CommandError(
                    f"Kamailio did not start:\n{(workdir / 'kamailio.log').read_text()[-3000:]}"
                )
        refer_to = options["refer_to"].replace("{domain}", center.sip_domain)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": workdir}
        bot = [
            "sipp",
            "-sf",
            str(SIPP_DIR / "bot_refer.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(bot_port),
            "-nostdin",
        ]
        bot += ["-key", "refer_to", refer_to, "-key", "refer_sub", "Refer-Sub: true"]
        processes.append(subprocess.Popen(bot, **quiet))  # type: ignore[call-overload]  # noqa: S603
        caller = ["sipp", f"127.0.0.1:{edge_port}", "-sf", str(SIPP_DIR / "caller_transfer.xml"), "-s", LINE]
        caller += ["-i", "127.0.0.1", "-nostdin", "-r", str(options["rate"]), "-rp", "1000"]
        caller += ["-key", "caller", CALLER, "-key", "sipfrag", "200 OK"]
        if options["calls"]:
            caller += ["-m", str(options["calls"])]
        processes.append(subprocess.Popen(caller, **quiet))  # type: ignore[call-overload]  # noqa: S603
        self.stdout.write(
            f"Kamailio on udp:127.0.0.1:{edge_port} -> {options['api_url']}; SIPp bot on :{bot_port} "
            f"(Refer-To {refer_to}); SIPp calling {LINE} at {options['rate']}/s. Watch /live/. Ctrl-C stops."
        )
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            while processes[-1].poll() is None:
                if processes[0].poll() is not None:
                    raise CommandError(f"Kamailio stopped:\n{(workdir / 'kamailio.log').read_text()[-3000:]}")
                time.sleep(0.5)
            self.stdout.write(f"SIPp caller finished (exit {processes[-1].returncode}).")
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            signal.signal(signal.SIGTERM, previous)
