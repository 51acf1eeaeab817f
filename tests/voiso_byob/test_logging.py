"""What the server prints: each line once; a refused request as one line, a fault with its traceback.

Both run the real settings in a separate process with DEBUG on, as `make run` does: Django applies
its own logging defaults before ours, and that is where lines got printed twice.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]

# Views that refuse the way views do (raising), and one that fails; requests through Django's
# handler, so its own logging of each response is what is checked.
REQUESTS_SCRIPT = """
import django
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpResponse
from django.urls import path

def forbidden(request):
    raise PermissionDenied("Your role has no access to this page.")

def missing(request):
    raise Http404("No such queue.")

def bad(request):
    raise BadRequest("Unreadable filter.")

def broken(request):
    raise RuntimeError("a real fault")

urlpatterns = [
    path("forbidden/", forbidden), path("missing/", missing), path("bad/", bad), path("broken/", broken)
]
# The portal's error pages read the database, which this process has not migrated.
handler400 = handler403 = handler404 = lambda request, exception: HttpResponse("refused")

django.setup()
from django.conf import settings
from django.test import Client
settings.ROOT_URLCONF = __name__
client = Client(raise_request_exception=False)
for url in ("/forbidden/", "/missing/", "/bad/", "/broken/"):
    client.get(url)
"""


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "LOG_LEVEL"}}
    env.update(
        DEBUG="true",
        DJANGO_SETTINGS_MODULE="voiso_byob.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'logging.sqlite3'}",
        ALLOWED_HOSTS="testserver,127.0.0.1",
    )
    return env


def test_refused_requests_are_one_line_each_and_a_fault_keeps_its_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", REQUESTS_SCRIPT],
        cwd=ROOT,
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    forbidden = "Forbidden (Permission denied): /forbidden/ (Your role has no access to this page.)"
    assert lines.count(forbidden) == 1
    assert lines.count("Not Found: /missing/") == 1
    assert lines.count("Unreadable filter.: /bad/") == 1
    assert lines.count("Internal Server Error: /broken/") == 1
    # The one traceback is the fault's: refused requests carry none, and nothing is printed twice.
    assert result.stderr.count("Traceback (most recent call last)") == 1
    assert "RuntimeError: a real fault" in result.stderr
    assert "PermissionDenied" not in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_runserver_prints_each_line_once(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/nothing-here/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "runserver did not start"
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.2)
        assert response.status_code == 404
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/queues/", timeout=5).status_code == 401
        time.sleep(0.5)  # the access log line follows the response
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    lines = output.splitlines()
    assert lines.count("Not Found: /nothing-here/") == 1, output
    assert sum(line.startswith("HTTP GET /nothing-here/ 404") for line in lines) == 1, output
    assert lines.count("Unauthorized: /api/v1/queues/") == 1, output
    assert sum(line.startswith("HTTP GET /api/v1/queues/ 401") for line in lines) == 1, output
