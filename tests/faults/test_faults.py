"""Faults under load, at small scale: bench/faults.py's run with a few calls a second.

On private instances the run starts and removes itself (initdb's cluster and a redis-server on free
ports; the suite's shared PostgreSQL and Redis are never touched): gunicorn and daphne serve the demo
center while the traffic simulator calls it; Redis is stopped and started, PostgreSQL stopped and
started, a worker killed with SIGKILL inside an event batch's transaction. Whatever the server
acknowledged is stored exactly once, and each fault is answered as the README says.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from bench import faults

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def tools() -> None:
    missing = [
        name
        for name, path in (
            ("initdb", faults.PG_BIN / "initdb"),
            ("pg_ctl", faults.PG_BIN / "pg_ctl"),
            ("redis-server", shutil.which("redis-server")),
            ("runuser", shutil.which("runuser") if os.geteuid() == 0 else "not needed"),
        )
        if path is None or (not os.path.exists(path) and path != "not needed")
    ]
    if missing:
        reason = f"faults test needs {', '.join(missing)}"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)


def test_no_acknowledged_event_is_lost_or_stored_twice_through_the_faults(tools) -> None:
    result = faults.run(
        faults.Options(rate=4, redis_down=3, pg_down=2, lead=2, tail=2, time_scale=0.05, workers=2)
    )
    segments = {segment["fault"]: segment for segment in result["segments"]}
    assert list(segments) == ["redis", "postgres", "sigkill"]
    for segment in segments.values():
        assert segment["calls"] > 0 and segment["acknowledged"] > 0, segment
        assert (segment["lost"], segment["duplicated"], segment["unacknowledged"], segment["gave_up"]) == (
            0,
            0,
            0,
            0,
        ), segment
        assert segment["stored"] == segment["acknowledged"]
        assert not [kind for kind in segment["failures"] if kind.startswith("HTTP 500")], segment

    redis = segments["redis"]
    # Routing, refer and events answered throughout (slower, from PostgreSQL): not one failed attempt.
    assert redis["failures"] == {}
    assert redis["checks"]["answers_during_the_outage"] == {"route": 200, "refer": 200, "events": 202}
    # The live feed came back, and the page (socket + catch-up) holds every event, each once.
    assert redis["checks"]["feed_resumed"] and redis["recover_seconds"] is not None
    assert redis["checks"]["feed_missing"] == 0 and redis["checks"]["feed_socket_duplicates"] == 0

    postgres = segments["postgres"]
    assert postgres["failures"].get("HTTP 503 database_unavailable", 0) > 0, postgres["failures"]
    sample = postgres["failure_samples"]["HTTP 503 database_unavailable"]
    body = json.loads(sample["body"])
    assert sample["status"] == 503 and sample["retry_after"] == "2"
    assert set(body) == {"error"} and body["error"]["code"] == "database_unavailable"
    assert body["error"]["message"] and body["error"]["retry_after"] == 2

    sigkill = segments["sigkill"]["checks"]
    assert sigkill["worker_found"] and sigkill["rows_after_the_kill"] == 0
    assert sigkill["retry"] == {"status": 202, "accepted": 50, "duplicates": 0}
    assert sigkill["again"] == {"status": 202, "accepted": 0, "duplicates": 50}
    assert sigkill["retry_stored_it_once"]

    assert result["problems"] == []
