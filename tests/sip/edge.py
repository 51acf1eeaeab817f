"""The real parts of the SIP edge test, as context managers: gunicorn (the telephony API, as the
README deploys it), daphne (/ws/live/), Kamailio with a generated configuration, and SIPp runs.

Everything listens on 127.0.0.1 at ports picked free at start. Each process's output goes to a
file under the test's temporary directory, quoted in the failure when a part misbehaves.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from routing.management.commands.kamailio_config import answers_options, render_config

ROOT = Path(__file__).resolve().parents[2]
SIPP_DIR = ROOT / "deploy" / "sipp"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"


def kamailio_binary() -> str | None:
    return shutil.which("kamailio") or next(
        (path for path in ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio") if os.path.exists(path)), None
    )


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def gunicorn(port: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """`gunicorn voiso_byob.wsgi:application` with 2 sync workers; yields its base URL."""
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(GUNICORN), "voiso_byob.wsgi:application", "--workers", "2", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"gunicorn exited: {tail(log)}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start: {tail(log)}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(server)


class SlowApi:
    """What the slow proxy saw, per path: requests, and the most in flight at once."""

    def __init__(self, upstream: str, delays: dict[str, float]) -> None:
        self.upstream = upstream
        self.delays = delays
        self.requests: dict[str, int] = {}
        self.in_flight: dict[str, int] = {}
        self.most_in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def forward(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        with self._lock:
            self.requests[path] = self.requests.get(path, 0) + 1
            self.in_flight[path] = self.in_flight.get(path, 0) + 1
            self.most_in_flight[path] = max(self.most_in_flight.get(path, 0), self.in_flight[path])
        try:
            time.sleep(self.delays.get(path, 0))
            request = urllib.request.Request(self.upstream + path, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    return answer.status, answer.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()
        finally:
            with self._lock:
                self.in_flight[path] -= 1


class _SlowApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # Kamailio's http_client keeps its connections

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {
            name: self.headers[name] for name in ("Content-Type", "Authorization") if self.headers[name]
        }
        status, answer = self.server.api.forward(self.path, body, headers)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the test asserts on what it counted


@contextlib.contextmanager
def slow_api(upstream: str, delays: dict[str, float]) -> Iterator[tuple[str, SlowApi]]:
    """A real HTTP proxy in front of the portal that holds each request to a path of `delays` that
    many seconds before forwarding it: the telephony API answering slowly. Yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowApiHandler)
    server.daemon_threads = True
    server.api = SlowApi(upstream, delays)  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.api  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def kamailio(
    *,
    port: int,
    api_url: str,
    api_key: str,
    workdir: Path,
    media_server: str | None = None,
    event_workers: int = 1,
) -> Iterator[Path]:
    """Kamailio on 127.0.0.1:port, configured as `manage.py kamailio_config` does; yields its log."""
    binary = kamailio_binary()
    assert binary is not None
    config = workdir / "kamailio.cfg"
    config.write_text(
        render_config(
            listen=f"127.0.0.1:{port}",
            api_url=api_url,
            api_key=api_key,
            sip_domain_suffix="voiso.com",
            media_server=media_server,
            children=2,
            api_workers=2,
            event_workers=event_workers,
            log_stderror=True,
        )
    )
    log = workdir / "kamailio.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            # -DD: stay in the foreground (its children too); small memory pools for a test.
            [
                binary,
                "-f",
                str(config),
                "-DD",
                "-E",
                "-m",
                "32",
                "-M",
                "8",
                "-P",
                str(workdir / "kamailio.pid"),
            ],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while not answers_options("127.0.0.1", port):
                if process.poll() is not None:
                    raise RuntimeError(f"kamailio exited: {tail(log)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"kamailio did not answer OPTIONS: {tail(log)}")
            yield log
        finally:
            _stop(process)


@dataclass(frozen=True)
class SippRun:
    """One SIPp run's outcome: its exit status and the SIP messages it sent and received."""

    returncode: int
    messages: str
    output: str

    def _messages(self, direction: str) -> list[str]:
        blocks = re.split(r"^-{20,}.*$", self.messages, flags=re.MULTILINE)
        found = []
        for block in blocks:
            head, _, body = block.strip().partition("\n")
            if f"message {direction}" in head:
                found.append(body.strip())
        return found

    def post_dial_delay(self) -> float:
        """Seconds from the first INVITE sent to the first 200 to it received (the trace's clock)."""
        sent = answered = None
        for stamp, head, body in re.findall(
            r"^-{20,} (\S+ \S+)\n(.*)\n\n?(.*)$", self.messages, flags=re.MULTILINE
        ):
            moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f")
            if sent is None and "message sent" in head and body.strip().startswith("INVITE "):
                sent = moment
            elif sent is not None and "message received" in head and body.strip().startswith("SIP/2.0 200"):
                answered = moment
                break
        assert sent is not None and answered is not None, "no INVITE answered with 200 in the trace"
        return (answered - sent).total_seconds()

    def received(self) -> list[str]:
        """The messages received, each as its text (start line first)."""
        return self._messages("received")

    def sent_requests(self, method: str) -> int:
        """How many `method` requests were sent, retransmissions included."""
        return sum(1 for message in self._messages("sent") if message.startswith(f"{method} "))

    def received_statuses(self, method: str) -> list[int]:
        """Statuses of the responses received to `method` requests (by CSeq)."""
        statuses = []
        for message in self.received():
            match = re.match(r"SIP/2\.0 (\d{3}) ", message)
            if match and re.search(rf"^CSeq:\s*\d+ {method}\s*$", message, re.MULTILINE | re.IGNORECASE):
                statuses.append(int(match.group(1)))
        return statuses

    def received_header(self, method: str, header: str) -> list[str]:
        """Values of `header` in the `method` requests received."""
        values = []
        for message in self.received():
            if message.startswith(f"{method} "):
                values += re.findall(rf"^{header}:\s*(.*?)\s*$", message, re.MULTILINE | re.IGNORECASE)
        return values


def udp_bound(port: int) -> bool:
    """Whether some process holds this UDP port (read from /proc: probing by binding could race)."""
    suffix = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table) as handle:
            next(handle)
            if any(line.split()[1].endswith(suffix) for line in handle):
                return True
    return False


def wait_until_bound(port: int, process: subprocess.Popen[bytes], output: Path, timeout: float = 15) -> None:
    """Until SIPp holds its UDP port: an INVITE relayed before that would be lost."""
    deadline = time.monotonic() + timeout
    while not udp_bound(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"SIPp did not bind 127.0.0.1:{port}: {tail(output)}")
        time.sleep(0.05)


def _sipp_command(scenario: str, port: int, keys: dict[str, str], message_file: Path) -> list[str]:
    command = [
        "sipp",
        "-sf",
        str(SIPP_DIR / scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-m",
        "1",
        "-nostdin",
        "-trace_msg",
        "-message_file",
        str(message_file),
        "-timeout",
        "20s",
        "-timeout_error",
    ]
    for key, value in keys.items():
        command += ["-key", key, value]
    return command


def _finish(process: subprocess.Popen[bytes], message_file: Path, output: Path, timeout: float) -> SippRun:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
    return SippRun(process.returncode, tail(message_file, 200_000), tail(output))


@dataclass(frozen=True)
class Call:
    """One call to play: the bot's scenario (None: nothing answers) and the caller's, with their keys."""

    number: str
    caller_scenario: str
    bot_scenario: str | None = None
    bot_keys: dict[str, str] = field(default_factory=dict)
    caller_keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallRun:
    call_id: str
    bot: SippRun | None
    caller: SippRun

    def problem(self) -> str | None:
        """Why the call did not play as scripted, or None."""
        if self.caller.returncode == 0 and (self.bot is None or self.bot.returncode == 0):
            return None
        bot = f"bot exit {self.bot.returncode}: {self.bot.output[-1500:]}" if self.bot else "no bot"
        return f"caller exit {self.caller.returncode}: {self.caller.output[-1500:]}\n{bot}"


def sip_call(*, workdir: Path, name: str, call: Call, edge_port: int, bot_port: int, caller: str) -> CallRun:
    """One call: the SIPp bot (if any) waits on bot_port, the SIPp caller dials through the edge."""
    bot_messages, bot_output = workdir / f"{name}-bot.msg", workdir / f"{name}-bot.out"
    caller_messages, caller_output = workdir / f"{name}-caller.msg", workdir / f"{name}-caller.out"
    bot = None
    if call.bot_scenario is not None:
        with bot_output.open("wb") as out:
            bot = subprocess.Popen(
                _sipp_command(call.bot_scenario, bot_port, call.bot_keys, bot_messages),
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    try:
        if bot is not None:
            wait_until_bound(bot_port, bot, bot_output)
        keys = {"caller": caller, **call.caller_keys}
        command = _sipp_command(call.caller_scenario, free_udp_port(), keys, caller_messages)
        command[1:1] = [f"127.0.0.1:{edge_port}", "-s", call.number, "-cid_str", f"{name}-%u@sip-edge-test"]
        with caller_output.open("wb") as out:
            done = subprocess.run(
                command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, timeout=40, check=False
            )
        caller_run = SippRun(done.returncode, tail(caller_messages, 200_000), tail(caller_output))
    finally:
        bot_run = _finish(bot, bot_messages, bot_output, timeout=25) if bot is not None else None
    return CallRun(f"{name}-1@sip-edge-test", bot_run, caller_run)
