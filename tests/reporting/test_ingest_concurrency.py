"""Concurrent posts for the same calls lose no update and store no event twice (PostgreSQL, real commits).

Each thread is a separate request on its own database connection, as gunicorn workers are.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from reporting.models import CallEvent
from tests.reporting.conftest import call_events, event, post_events
from tests.reporting.test_ingest import handoff_snapshot, record_snapshot, wipe

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def in_parallel(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run the jobs at once (a barrier releases them together); their results, or the first error."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = job()
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    return results


def posted_by_workers(events: list[dict[str, Any]], key: str, *, sizes: list[int]) -> set[int]:
    """Each worker (one per size) posts its share of the events (every len(sizes)-th), `size` per
    request, all at once; the statuses answered."""

    def worker(share: list[dict[str, Any]], size: int) -> list[int]:
        client = Client()
        return [post_events(client, share[i : i + size], key).status_code for i in range(0, len(share), size)]

    workers = len(sizes)
    jobs = [lambda i=i, size=size: worker(events[i::workers], size) for i, size in enumerate(sizes)]
    return {status for statuses in in_parallel(jobs) for status in statuses}


def many_calls(prefix: str, count: int) -> list[dict[str, Any]]:
    shapes = [
        {},
        {"refer_to": "<sip:1001@acme.voiso.com>"},
        {"outcome": "failed"},
        {"refer_to": None},
        {"refer_to": "<sip:5555@acme.voiso.com>", "outcome": "failed"},
    ]
    events: list[dict[str, Any]] = []
    for n in range(count):
        events += call_events(f"{prefix}-{n}", start=n * 7, **shapes[n % len(shapes)])
    return events


def ordered_result(events: list[dict[str, Any]], switch: Client) -> tuple[Any, Any]:
    wipe()
    assert post_events(switch, sorted(events, key=lambda e: (e["occurred_at"], e["id"]))).status_code == 202
    return record_snapshot(), handoff_snapshot()


def busy_calls(prefix: str, count: int, refers: int) -> list[dict[str, Any]]:
    """Few calls with many events each (a bot retrying its REFER): many writers per record at once."""
    events: list[dict[str, Any]] = []
    for n in range(count):
        call_id = f"{prefix}-{n}"
        events += call_events(call_id, refer_to=None)[:2]  # started, bot connected
        for attempt in range(refers):
            at = 10 + attempt * 2
            target = "<sip:4323@acme.voiso.com>" if attempt % 2 else "<sip:1001@acme.voiso.com>"
            events.append(event("handoff.requested", call_id, at, virtual_agent="7001", refer_to=target))
            events.append(
                event("handoff.failed", call_id, at + 1, reason=f"attempt {attempt}", sip_status=486)
            )
        events.append(event("call.ended", call_id, 100, end_reason="normal_clearing", hangup_by="caller"))
    return events


def test_parallel_posts_of_disjoint_events_of_the_same_calls_lose_no_update(
    acme, bot, sales, agent, api_keys: dict[str, str], switch: Client
) -> None:
    # Checked by mutation: without the record lock this fails on most runs (a lost handoff or event).
    events = busy_calls("p", 3, refers=15) + many_calls("q", 6)
    random.Random(7).shuffle(events)
    assert posted_by_workers(events, api_keys["telephony"], sizes=[1] * 6) == {202}
    assert CallEvent.objects.count() == len(events)
    concurrent = (record_snapshot(), handoff_snapshot())
    assert [concurrent[0][f"p-{n}"]["handoff_count"] for n in range(3)] == [15, 15, 15]
    assert [concurrent[0][f"p-{n}"]["event_count"] for n in range(3)] == [33, 33, 33]
    assert concurrent == ordered_result(events, switch)


def test_single_events_and_batches_racing_for_the_same_calls_lose_no_update(
    acme, bot, sales, agent, api_keys: dict[str, str], switch: Client
) -> None:
    """Single events (read, then a conditional write) and batches (record locks) at once."""
    events = busy_calls("m", 3, refers=12) + many_calls("n", 6)
    random.Random(11).shuffle(events)
    # Half the workers send one event per request, half batches of four.
    assert posted_by_workers(events, api_keys["telephony"], sizes=[1, 4] * 3) == {202}
    assert CallEvent.objects.count() == len(events)
    assert (record_snapshot(), handoff_snapshot()) == ordered_result(events, switch)


def test_two_requests_racing_the_same_event_ids_store_each_once(
    acme, bot, sales, agent, api_keys: dict[str, str], switch: Client
) -> None:
    all_events: list[dict[str, Any]] = []
    for round_ in range(5):  # several rounds: the interleaving differs from one to the next
        events = many_calls(f"r{round_}", 6)
        all_events += events
        halves = [events, list(reversed(events))]  # the same ids, in different orders

        def send(batch: list[dict[str, Any]]) -> dict[str, int]:
            response = post_events(Client(), batch, api_keys["telephony"])
            assert response.status_code == 202, response.content
            return response.json()

        first, second = in_parallel([lambda batch=batch: send(batch) for batch in halves])
        assert first["accepted"] + second["accepted"] == len(events)
        assert first["duplicates"] + second["duplicates"] == len(events)
        assert CallEvent.objects.filter(call_id__startswith=f"r{round_}-").count() == len(events)
    assert (record_snapshot(), handoff_snapshot()) == ordered_result(all_events, switch)


def test_locks_are_taken_in_call_id_order(acme, bot, switch: Client) -> None:
    events = many_calls("z", 3)
    executed: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        executed.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        post_events(switch, list(reversed(events)))
    [(statement, params)] = [(sql, p) for sql, p in executed if sql.startswith("WITH ev AS (INSERT INTO")]
    # The records the statement sees are locked in call_id order, then the others are created (or,
    # when a concurrent request created one meanwhile, locked by ON CONFLICT DO UPDATE) in that order...
    assert re.search(
        r'old AS \(SELECT .* AND "call_id" = ANY\(ARRAY\(SELECT DISTINCT c FROM ev WHERE .*\)\)\) '
        r'ORDER BY "call_id" FOR UPDATE\), new AS \(INSERT INTO .* '
        r'FROM \(SELECT DISTINCT c FROM ev WHERE c NOT IN \(SELECT "call_id" FROM old\)\) AS calls '
        r"LEFT JOIN .* ORDER BY calls\.c ON CONFLICT .* DO UPDATE SET",
        statement,
    )
    # ...and the events go in in event id order (each id once, found with its JSON quotes).
    payload = next(p for p in params if isinstance(p, str) and p.startswith("[["))  # the events, as JSON
    positions = [payload.index(f'"{event_id}"') for event_id in sorted(e["id"] for e in events)]
    assert positions == sorted(positions)


@pytest.mark.parametrize("waiting", [1, 2], ids=["one event", "a batch"])
def test_events_committed_while_a_request_waits_for_the_record_lock_are_folded(
    acme, bot, sales, agent, api_keys: dict[str, str], switch: Client, waiting: int
) -> None:
    """A request that waits for the record's lock must fold what the holder committed meanwhile.
    One event: its write finds the record's event count moved on and reads the call again. A
    batch: its locking statement read the call's earlier events from its snapshot, taken before
    it waited, and must read them again."""
    import time

    from django.db import transaction

    from reporting.events import validate_events
    from reporting.ingest import ingest_events
    from reporting.models import CallRecord

    events = call_events("w1")
    assert post_events(switch, events[:1]).status_code == 202
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        validated, agents = validate_events(acme, events[1])
        with transaction.atomic():  # the record stays locked until this block commits
            ingest_events(center=acme, events=validated, agents=agents)
            holding.set()
            release.wait(10)

    def waiter() -> tuple[int, float]:
        holding.wait(10)
        started = time.monotonic()
        status = post_events(Client(), events[2 : 2 + waiting], api_keys["telephony"]).status_code
        return status, time.monotonic() - started

    def releaser() -> None:
        holding.wait(10)
        time.sleep(0.5)  # the waiter is blocked on the record lock by now
        release.set()

    _, (status, waited), _ = in_parallel([holder, waiter, releaser])
    assert status == 202 and waited >= 0.4  # it did wait for the holder's commit
    record = CallRecord.objects.get(call_id="w1")
    assert record.event_count == 2 + waiting  # the holder's event is folded in, not just the waiter's
    assert record.bot_connected_at is not None and record.handoff_count == 1
    assert (record_snapshot(), handoff_snapshot()) == ordered_result(events[: 2 + waiting], switch)


# --- a served request's own transaction (PostgreSQL, real commits and rollbacks) -------------


class _Deadlock(Exception):
    sqlstate = "40P01"


def test_a_deadlock_in_a_served_request_rolls_back_and_retries(
    acme, bot, sales, agent, switch: Client, monkeypatch
) -> None:
    from django.db import OperationalError

    from reporting import ingest_sql
    from reporting.models import CallRecord

    real, calls = ingest_sql.write_fold, []

    def deadlock_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        real(*args, **kwargs)  # written: it must be rolled back with the attempt
        if len(calls) == 1:
            raise OperationalError("deadlock detected") from _Deadlock()

    monkeypatch.setattr(ingest_sql, "write_fold", deadlock_once)
    assert not connection.in_atomic_block  # the request's transaction is the only one
    events = call_events("d1")
    assert post_events(switch, events).json() == {"accepted": len(events), "duplicates": 0}
    assert len(calls) == 2
    assert CallEvent.objects.filter(call_id="d1").count() == len(events)
    assert CallRecord.objects.get(call_id="d1").event_count == len(events)


def test_a_failing_statement_in_a_served_request_stores_nothing(
    acme, bot, sales, agent, switch: Client, monkeypatch
) -> None:
    from reporting import ingest_sql

    def broken(*args: Any, **kwargs: Any) -> None:
        with connection.cursor() as cursor:  # a real error from the server
            cursor.execute("SELECT 1 / 0")

    monkeypatch.setattr(ingest_sql, "write_fold", broken)
    no_raise = Client(raise_request_exception=False)
    response = post_events(no_raise, call_events("f1"), switch.defaults["HTTP_AUTHORIZATION"][7:])
    assert response.status_code == 500
    assert not CallEvent.objects.filter(call_id="f1").exists()
    monkeypatch.undo()
    events = call_events("f2")  # the connection is usable again
    assert post_events(switch, events).json() == {"accepted": len(events), "duplicates": 0}
