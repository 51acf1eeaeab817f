"""What the benchmarks share: paths, a free port, a scratch database, a served settings environment,
JSON posts, stopping a server, and the machine's description for the results."""

from __future__ import annotations

import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(admin_url: str, name: str) -> str:
    """The admin URL with `name` as its database."""
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def admin_execute(admin_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql)


def served_env(db_url: str, redis_url: str) -> dict[str, str]:
    """Settings for a server run as production runs it (DEBUG off), with the bench's URLs mounted."""
    from cryptography.fernet import Fernet

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "voiso_byob.settings",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-only-" + secrets.token_urlsafe(32),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "CONN_MAX_AGE": "600",
        "ROOT_URLCONF": "bench.urls",
        "PYTHONPATH": str(ROOT),
    }


def post(url: str, body: Any, token: str | None = None, *, timeout: float = 10) -> tuple[int, Any]:
    """POST JSON; (status, decoded answer, or the text of an error answer)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def stop(server: subprocess.Popen[bytes] | None) -> None:
    """gunicorn's graceful stop (it takes its workers with it), then a kill if it lingers."""
    if server is None or server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=5)


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def analyze_as_autovacuum_would(cursor: Any) -> list[str]:
    """ANALYZE the tables autovacuum's default thresholds would analyze now (50 rows + 10 % changed).

    This machine's PostgreSQL runs with autovacuum off; a deployment has it on, and it keeps the
    statistics that prepared statements are planned with up to date as tables grow (a plan made
    on a table's first rows is made again once it has been analyzed).
    """
    cursor.execute(
        "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        "WHERE s.n_mod_since_analyze > 50 + 0.1 * GREATEST(c.reltuples, 0)"
    )
    tables = [name for (name,) in cursor.fetchall()]
    for name in tables:
        cursor.execute(f'ANALYZE "{name}"')
    return tables
