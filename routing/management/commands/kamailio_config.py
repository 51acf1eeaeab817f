"""`manage.py kamailio_config`: the SIP edge's Kamailio configuration, generated from the settings.

The template is deploy/kamailio/kamailio.cfg.tmpl; this command fills in the listen address, the
telephony API's URL and key, the SIP domain suffix (SIP_DOMAIN_SUFFIX) and the optional media
server, after checking that none of them can break out of the Kamailio string it lands in. It
lives in `routing` because the edge is the client of routing's telephony API (route and refer).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template import Context, Engine

TEMPLATE_DIR = Path(settings.BASE_DIR) / "deploy" / "kamailio"
TEMPLATE_NAME = "kamailio.cfg.tmpl"

# What may appear inside a double-quoted Kamailio string without escaping: no quote, backslash,
# whitespace or control character (an API key is a token; URLs and SIP URIs never need them).
_CFG_SAFE = re.compile(r"^[!#-\[\]-~]+$")
_API_KEY = re.compile(r"^[A-Za-z0-9_.~+/=-]{8,512}$")
_SIP_URI = re.compile(r"^sips?:[!#-\[\]-~]+$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

# Kamailio's processes, sized for 50 calls/s with 30 % handoffs on one 2-core machine (bench/sip_edge.py):
# - api_workers hold a route or refer question while the API answers: 65 questions/s at up to
#   ~0.25 s each under load is 16. When all are busy, questions wait in a unix socket (a few
#   hundred fit in its send buffer) and the calls' post-dial delay grows; once it is full the SIP
#   worker handing one over blocks, and with it SIP. Too many only costs idle processes.
# - children read SIP and never wait for HTTP; 8 leave room while the api group's queue is full.
# - event_workers post the queued events in batches (one request per ~20 ms each): 2 carry
#   ~300 events/s with room to spare; more only help while the events API is slow.
WORKER_DEFAULTS = {"children": 8, "api_workers": 16, "event_workers": 2}


def parse_listen(value: str) -> tuple[str, int]:
    """`IPv4:port` → (address, port). Kamailio listens on UDP there."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit():
        raise CommandError(f"--listen {value!r}: expected IPv4:port, e.g. 127.0.0.1:5060.")
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        raise CommandError(f"--listen {value!r}: {host!r} is not an IPv4 address.") from None
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise CommandError(f"--listen {value!r}: port out of range.")
    return str(address), port


def api_base(value: str) -> str:
    """The portal's base URL (http or https, no path beyond '/'), without a trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or not _CFG_SAFE.match(value):
        raise CommandError(f"--api-url {value!r}: expected http(s)://host[:port].")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise CommandError(f"--api-url {value!r}: give the portal's base URL, without a path.")
    return f"{parts.scheme}://{parts.netloc}"


def read_api_key(path: str) -> str:
    try:
        raw = Path(path).read_text().strip()
    except OSError as exc:
        raise CommandError(f"--api-key-file {path}: {exc.strerror}.") from None
    if not _API_KEY.match(raw):
        raise CommandError(
            f"--api-key-file {path}: does not hold one API key (create one with create_api_key)."
        )
    return raw


def domain_regex(suffix: str) -> str:
    """A POSIX regex matching a host of `*.{suffix}` (for `$rd =~ ...` in the config)."""
    labels = suffix.strip().lower().split(".")
    if not labels or not all(_LABEL.match(label) for label in labels):
        raise CommandError(f"SIP_DOMAIN_SUFFIX {suffix!r} is not a DNS name.")
    # Inside a Kamailio string a backslash is an escape: "[.]" matches a dot without one.
    return "^[a-z0-9-]+[.]" + "[.]".join(labels) + "$"


def render_config(
    *,
    listen: str,
    api_url: str,
    api_key: str,
    sip_domain_suffix: str,
    media_server: str | None = None,
    aliases: list[str] | None = None,
    children: int = WORKER_DEFAULTS["children"],
    api_workers: int = WORKER_DEFAULTS["api_workers"],
    event_workers: int = WORKER_DEFAULTS["event_workers"],
    event_interval_ms: int = 20,
    event_batch: int = 100,
    event_queue_size: int = 50_000,
    api_timeout: int = 2,
    debug_level: int = 2,
    log_stderror: bool = False,
) -> str:
    """The configuration text. Every value is checked before it reaches the template."""
    address, port = parse_listen(listen)
    base = api_base(api_url)
    if not _API_KEY.match(api_key):
        raise CommandError("The API key is not one this portal issues.")
    if media_server is not None and not _SIP_URI.match(media_server):
        raise CommandError(f"--media-server {media_server!r}: expected a sip: or sips: URI.")
    for alias in aliases or []:
        if not _CFG_SAFE.match(alias):
            raise CommandError(f"--alias {alias!r}: expected host[:port].")
    for name, value in (
        ("children", children),
        ("api workers", api_workers),
        ("event workers", event_workers),
    ):
        if not 1 <= value <= 64:
            raise CommandError(f"{name}: 1 to 64.")
    if not 1 <= event_interval_ms <= 1000:
        raise CommandError("event interval: 1 to 1000 ms.")
    if not 1 <= event_batch <= 1000:  # the events API takes up to 1000 a request
        raise CommandError("event batch: 1 to 1000.")
    if not 100 <= event_queue_size <= 1_000_000:
        raise CommandError("event queue size: 100 to 1,000,000.")
    engine = Engine(dirs=[str(TEMPLATE_DIR)], autoescape=False)
    return engine.get_template(TEMPLATE_NAME).render(
        Context(
            {
                "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "listen": f"{address}:{port}",
                "api_url": base,
                "api_key": api_key,
                "sip_domain_suffix": sip_domain_suffix,
                "sip_domain_re": domain_regex(sip_domain_suffix),
                "media_server": media_server,
                "aliases": aliases or [],
                "children": children,
                "api_workers": api_workers,
                "event_workers": event_workers,
                "event_interval_ms": event_interval_ms,
                "event_interval_us": event_interval_ms * 1000,
                "event_batch": event_batch,
                "event_queue_size": event_queue_size,
                "api_timeout": api_timeout,
                "debug_level": debug_level,
                "log_stderror": "yes" if log_stderror else "no",
            }
        )
    )


def answers_options(host: str, port: int, *, timeout: float = 0.5) -> bool:
    """Whether the SIP server at host:port (UDP) answers an OPTIONS ping with 200: Kamailio is up."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.settimeout(timeout)
        local = sock.getsockname()[1]
        tag = time.monotonic_ns()
        ping = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{local};branch=z9hG4bK-ping-{tag}\r\n"
            f"From: <sip:ping@{host}:{local}>;tag=ping\r\nTo: <sip:{host}:{port}>\r\n"
            f"Call-ID: ping-{tag}@{host}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(ping.encode(), (host, port))
        try:
            answer, _ = sock.recvfrom(4096)
        except OSError:
            return False
    return answer.startswith(b"SIP/2.0 200")


class Command(BaseCommand):
    help = (
        "Write the SIP edge's Kamailio configuration (deploy/kamailio/kamailio.cfg.tmpl filled in from "
        "the settings) to --output, or to stdout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--listen", required=True, help="IPv4:port Kamailio listens on (UDP).")
        parser.add_argument(
            "--api-url", required=True, help="The portal's base URL, e.g. http://127.0.0.1:8000"
        )
        parser.add_argument(
            "--api-key-file", required=True, help="A file holding a telephony-scope API key (create_api_key)."
        )
        parser.add_argument(
            "--media-server",
            default=os.environ.get("SIP_MEDIA_SERVER_URI") or None,
            help=(
                "SIP URI of the media server that plays prompts, gathers digits, records voicemail and holds "
                "queues (default $SIP_MEDIA_SERVER_URI). Without one, such calls are refused with 488."
            ),
        )
        parser.add_argument(
            "--alias",
            action="append",
            default=[],
            help="Another host[:port] this proxy answers as (repeatable).",
        )
        parser.add_argument(
            "--children",
            type=int,
            default=WORKER_DEFAULTS["children"],
            help="SIP worker processes (default %(default)s).",
        )
        parser.add_argument(
            "--api-workers",
            type=int,
            default=WORKER_DEFAULTS["api_workers"],
            help="Processes asking route/refer (default %(default)s; sized for 50 calls/s).",
        )
        parser.add_argument(
            "--event-workers",
            type=int,
            default=WORKER_DEFAULTS["event_workers"],
            help="Processes posting batches of events (default %(default)s).",
        )
        parser.add_argument("--debug", type=int, default=2, help="Kamailio's log level (default 2, info).")
        parser.add_argument("--log-stderr", action="store_true", help="Log to stderr instead of syslog.")
        parser.add_argument("--output", "-o", help="Write here (mode 0600: it holds the API key).")

    def handle(self, *args: Any, **options: Any) -> None:
        text = render_config(
            listen=options["listen"],
            api_url=options["api_url"],
            api_key=read_api_key(options["api_key_file"]),
            sip_domain_suffix=settings.SIP_DOMAIN_SUFFIX,
            media_server=options["media_server"],
            aliases=options["alias"],
            children=options["children"],
            api_workers=options["api_workers"],
            event_workers=options["event_workers"],
            debug_level=options["debug"],
            log_stderror=options["log_stderr"],
        )
        output = options.get("output")
        if not output:
            sys.stdout.write(text)
            return
        path = Path(output)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o600)
        self.stderr.write(f"Wrote {path}")
