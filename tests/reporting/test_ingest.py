"""reporting.ingest through the events API: records, handoffs, the feed, counters, reports, outages."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting.ingest import active_call_deltas, active_key, apply_active_deltas, feed_sender
from reporting.live import group_name
from reporting.models import CallEvent, CallRecord, Handoff, ProviderCallReport
from routing.route import active_calls
from routing.services import create_phone_number
from tests.reporting.conftest import call_events, event, make_bot, post_events


def record_snapshot() -> dict[str, dict[str, Any]]:
    skip = {"id", "updated"}
    return {r["call_id"]: {k: v for k, v in r.items() if k not in skip} for r in CallRecord.objects.values()}


def handoff_snapshot() -> list[dict[str, Any]]:
    rows = Handoff.objects.values(*[f.attname for f in Handoff._meta.concrete_fields], "call_record__call_id")
    return sorted(
        ({k: v for k, v in h.items() if k not in ("id", "call_record_id")} for h in rows),
        key=lambda h: (h["call_record__call_id"], h["sequence"]),
    )


def wipe() -> None:
    Handoff.objects.all().delete()
    CallRecord.objects.all().delete()
    CallEvent.objects.all().delete()


@pytest.fixture
def scene(acme, bot, sales, agent) -> None:
    """acme with the Billing bot (7001), the Sales queue (4323), an agent (1001) and a number."""
    create_phone_number(center=acme, by="tests", number="+442079460018", label="main")


# --- the record --------------------------------------------------------------------------------


def test_the_record_links_number_bot_queue_and_agent(acme, scene, switch: Client, bot, sales, agent) -> None:
    events = call_events("c1")
    events[0]["data"]["to"] = "+44 20 7946 0018"  # as dialled: normalised to find the number
    assert post_events(switch, events).status_code == 202
    record = CallRecord.objects.select_related("phone_number").get()
    assert record.phone_number.number == "+442079460018" and record.flow_id is None
    assert (record.virtual_agent, record.queue, record.answered_by) == (bot, sales, agent.membership)
    assert record.provider_call_id == "prov-c1" and record.bot_outcome == "handed_off"
    handoff = Handoff.objects.get()
    assert (handoff.target_type, handoff.target_ref, handoff.target_name, handoff.state) == (
        "queue",
        str(sales.pk),
        "Sales",
        "completed",
    )
    assert handoff.context == {"X-Intent": "billing"} and handoff.virtual_agent == bot


@pytest.mark.parametrize(
    ("refer_to", "target_type", "target_error"),
    [
        ("<sip:1001@acme.voiso.com>", "user", ""),
        ("<tel:+1-212-555-0199>", "external", ""),
        ("<sip:7001@acme.voiso.com>", "virtual_agent", ""),
        ("<sip:5555@acme.voiso.com>", "", "unknown_extension"),
        ("<sip:4323@globex.voiso.com>", "", "foreign_domain"),
        ("not a uri", "", "malformed_uri"),
    ],
)
def test_handoff_targets_resolve_like_the_refer_api(
    scene, switch: Client, agent, bot, refer_to: str, target_type: str, target_error: str
) -> None:
    data = {"virtual_agent": "7001", "refer_to": refer_to}
    assert post_events(switch, event("handoff.requested", "c1", 0, **data)).status_code == 202
    handoff = Handoff.objects.get()
    assert (handoff.target_type, handoff.target_error, handoff.refer_to) == (
        target_type,
        target_error,
        refer_to,
    )
    expected_ref = {
        "user": str(agent.membership.pk),
        "external": "+12125550199",
        "virtual_agent": str(bot.pk),
    }
    assert handoff.target_ref == expected_ref.get(target_type, "")


def test_events_of_one_call_in_many_requests_give_the_one_request_record(scene, switch: Client) -> None:
    events = call_events("c1")
    post_events(switch, events)
    expected = (record_snapshot(), handoff_snapshot())
    wipe()
    for one in reversed(events):
        assert post_events(switch, one).json() == {"accepted": 1, "duplicates": 0}
    assert (record_snapshot(), handoff_snapshot()) == expected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(1, 30), max_size=6))
def test_any_order_and_batching_with_duplicates_gives_the_same_records(
    scene, switch: Client, seed: int, cuts: list[int]
) -> None:
    rng = random.Random(seed)
    events = (
        call_events("a")
        + call_events("b", refer_to="<sip:1001@acme.voiso.com>", agent_extension="1001")
        + call_events("c", outcome="failed")
        + call_events("d", refer_to=None)
    )
    wipe()
    post_events(switch, sorted(events, key=lambda e: e["occurred_at"]))
    expected = (record_snapshot(), handoff_snapshot())
    wipe()
    arrival = events + rng.sample(events, k=rng.randint(0, len(events)))  # some sent twice
    rng.shuffle(arrival)
    bounds = sorted({0, len(arrival), *(c for c in cuts if c < len(arrival))})
    for start, end in itertools.pairwise(bounds):
        assert post_events(switch, arrival[start:end]).status_code == 202
    assert (record_snapshot(), handoff_snapshot()) == expected
    assert CallEvent.objects.count() == len(events)


def test_single_event_posts_take_a_few_queries(scene, switch: Client, django_assert_max_num_queries) -> None:
    events = {e["type"]: e for e in call_events("c1")}
    post_events(switch, [events["call.started"], events["bot.connected"]])  # the key is cached now
    # SQLite: savepoint, event, record (insert-if-missing, lock), the call's events, record update,
    # release; + the bot (validation), the Refer-To (resolution, owner), the handoff upsert; the
    # two rollups' upserts (reporting.rollups).
    # PostgreSQL: the call read, then one write (record, event, handoff) and the rollups' upserts,
    # in a savepoint here.
    with django_assert_max_num_queries(13):
        assert post_events(switch, events["handoff.requested"]).status_code == 202
    # SQLite confirms the remembered API key with a query of its own (PostgreSQL: in the store),
    # and upserts the two rollups in statements of their own.
    with django_assert_max_num_queries(10 if connection.vendor == "sqlite" else 7):
        assert post_events(switch, events["call.ended"]).status_code == 202
    assert CallRecord.objects.get().status == "ended" and Handoff.objects.count() == 1


# --- a call that starts in its request: its record written whole (PostgreSQL) ------------------


def _record_writes(executed: list[str]) -> list[str]:
    table = CallRecord._meta.db_table
    return [sql.split(" (")[0] for sql in executed if f'UPDATE "{table}"' in sql or f'INTO "{table}"' in sql]


@pytest.mark.postgres
def test_a_call_that_starts_in_its_request_is_written_once_and_whole(scene, switch: Client) -> None:
    events = call_events("w1") + call_events("w2", refer_to=None)
    executed: list[str] = []
    with connection.execute_wrapper(lambda run, sql, *rest: executed.append(sql) or run(sql, *rest)):
        assert post_events(switch, events).status_code == 202
    # The statement that stores the events creates the records with their values: no UPDATE.
    assert len(_record_writes(executed)) == 1 and "UPDATE" not in _record_writes(executed)[0]
    written = (record_snapshot(), handoff_snapshot())
    wipe()
    for one in reversed(events):  # every record created empty, then updated, event by event
        assert post_events(switch, one).status_code == 202
    assert (record_snapshot(), handoff_snapshot()) == written
    assert written[0]["w1"]["bot_outcome"] == "handed_off" and written[0]["w1"]["queue_id"] is not None


@pytest.mark.postgres
def test_a_start_that_arrives_after_the_calls_other_events_is_folded_with_them(scene, switch: Client) -> None:
    events = call_events("w1")
    expected_response = post_events(switch, events)
    assert expected_response.status_code == 202
    expected = (record_snapshot(), handoff_snapshot())
    wipe()
    assert post_events(switch, events[1:]).status_code == 202  # the record exists, without a start
    executed: list[str] = []
    with connection.execute_wrapper(lambda run, sql, *rest: executed.append(sql) or run(sql, *rest)):
        # the start, with a duplicate of an event stored before: the existing record is refolded
        assert post_events(switch, [events[0], events[3]]).json() == {"accepted": 1, "duplicates": 1}
    assert any("UPDATE" in sql for sql in _record_writes(executed))
    assert (record_snapshot(), handoff_snapshot()) == expected


@pytest.mark.postgres
def test_events_go_in_as_new_and_a_stored_id_sends_the_request_round_again_skipping_it(
    acme, scene, switch: Client, monkeypatch
) -> None:
    from reporting.ingest import DuplicatesSeen, duplicates_seen

    monkeypatch.setattr(duplicates_seen, "_until", {})
    events = call_events("w1")
    table = CallEvent._meta.db_table

    def stores(batch: list[dict[str, Any]]) -> tuple[Any, list[bool]]:
        executed: list[str] = []
        with connection.execute_wrapper(lambda run, sql, *rest: executed.append(sql) or run(sql, *rest)):
            answer = post_events(switch, batch).json()
        inserts = [sql for sql in executed if sql.startswith(f'WITH ev AS (INSERT INTO "{table}"')]
        return answer, ["DO NOTHING RETURNING" in sql.split("rec AS")[0] for sql in inserts]

    # New events: one statement, without the ON CONFLICT probe.
    assert stores(events[:3]) == ({"accepted": 3, "duplicates": 0}, [False])
    # A stored id: that statement fails, is rolled back, and the request goes round again skipping it.
    assert stores(events[2:5]) == ({"accepted": 2, "duplicates": 1}, [False, True])
    # For a while, this center's requests skip stored ids at once.
    assert stores(events[5:]) == ({"accepted": len(events) - 5, "duplicates": 0}, [True])
    assert CallEvent.objects.count() == len(events)
    assert record_snapshot()["w1"]["event_count"] == len(events)
    assert duplicates_seen.recently(acme.pk) and not DuplicatesSeen().recently(acme.pk)


@pytest.mark.postgres
def test_one_event_is_stored_in_two_statements_and_writes_its_record_once(scene, switch: Client) -> None:
    events = call_events("w1")
    assert post_events(switch, events[:2]).status_code == 202
    table = CallRecord._meta.db_table

    def record_updates() -> int:  # row versions written in this transaction
        with connection.cursor() as cursor:
            cursor.execute("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = %s", [table])
            return cursor.fetchone()[0]

    executed: list[str] = []
    updates_before = record_updates()
    with connection.execute_wrapper(lambda run, sql, *rest: executed.append(sql) or run(sql, *rest)):
        assert post_events(switch, events[2]).json() == {"accepted": 1, "duplicates": 0}
    statements = [sql for sql in executed if f'"{table}"' in sql]
    assert [sql.split(" (", 1)[0] for sql in statements] == ["SELECT", "WITH rec AS"]  # read, then write
    assert not any("FOR UPDATE" in sql for sql in statements)  # no lock held across the round trip
    assert record_updates() - updates_before == 1  # the one conditional UPDATE
    # A repeat changes nothing.
    assert post_events(switch, events[2]).json() == {"accepted": 0, "duplicates": 1}
    for one in events[3:]:
        assert post_events(switch, one).status_code == 202
    assert (record_snapshot(), handoff_snapshot()) == _one_request_result(switch, events)


@pytest.mark.postgres
def test_one_event_whose_call_moved_on_meanwhile_reads_it_again(
    acme, scene, switch: Client, monkeypatch
) -> None:
    """Between one event's read and its write another request stores an event of the same call:
    the write finds the record's event count moved on, writes nothing, and the call is read again.
    (Checked by mutation: without the count in the write's condition the other event is lost.)"""
    events = call_events("w1")
    assert post_events(switch, events[:2]).status_code == 202
    reads = _ingest_with_another_between_read_and_write(acme, switch, monkeypatch, events[2], events[3])
    assert reads == [2, 3]  # read, refused to write, read again with the other event
    for one in events[4:]:
        assert post_events(switch, one).status_code == 202
    assert CallRecord.objects.get().event_count == len(events)
    assert (record_snapshot(), handoff_snapshot()) == _one_request_result(switch, events)


@pytest.mark.postgres
def test_one_event_whose_call_got_its_record_meanwhile_reads_it_again(
    acme, scene, switch: Client, monkeypatch
) -> None:
    events = call_events("w1")
    reads = _ingest_with_another_between_read_and_write(acme, switch, monkeypatch, events[1], events[0])
    assert reads == [None, 1]  # no record; its insert met the new one and wrote nothing; read again
    assert CallEvent.objects.count() == 2 and CallRecord.objects.get().event_count == 2
    for one in events[2:]:
        assert post_events(switch, one).status_code == 202
    assert (record_snapshot(), handoff_snapshot()) == _one_request_result(switch, events)


def _ingest_with_another_between_read_and_write(
    center: Any, switch: Client, monkeypatch: Any, one: dict[str, Any], other: dict[str, Any]
) -> list[int | None]:
    """Ingest `one` alone, with `other` (an event of the same call) posted and stored between its
    first read of the call and its write; the record's event count at each read (None: no record)."""
    from reporting import ingest_sql
    from reporting.events import validate_events
    from reporting.ingest import ingest_events

    real_read, reads = ingest_sql.read_call, []

    def read_then_the_other_arrives(*args: Any, **kwargs: Any) -> Any:
        seen = real_read(*args, **kwargs)
        reads.append(seen.record and seen.record.event_count)
        if len(reads) == 1:  # the other request, complete before this one writes
            monkeypatch.setattr(ingest_sql, "read_call", real_read)
            assert post_events(switch, other).json() == {"accepted": 1, "duplicates": 0}
            monkeypatch.setattr(ingest_sql, "read_call", read_then_the_other_arrives)
        return seen

    monkeypatch.setattr(ingest_sql, "read_call", read_then_the_other_arrives)
    validated, agents = validate_events(center, one)
    assert ingest_events(center=center, events=validated, agents=agents).accepted == 1
    monkeypatch.setattr(ingest_sql, "read_call", real_read)
    return reads


@pytest.mark.postgres
@pytest.mark.parametrize(("way", "size"), [("write_one", 1), ("store_and_lock", 3)], ids=["one", "batch"])
def test_a_bot_deleted_while_events_naming_it_are_stored_goes_round_again(
    scene, switch: Client, monkeypatch, way: str, size: int
) -> None:
    """The deferred foreign-key check at commit finds a row the statement's snapshot still saw gone
    (deleted by a transaction that committed meanwhile): the request goes round again, not 500."""
    from django.db import IntegrityError

    from reporting import ingest_sql

    class _ForeignKeyViolation(Exception):
        sqlstate = "23503"  # what psycopg's ForeignKeyViolation carries

    real, calls = getattr(ingest_sql, way), []

    def vanished_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise IntegrityError(
                "insert or update violates foreign key constraint"
            ) from _ForeignKeyViolation()
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_sql, way, vanished_once)
    events = call_events("w1")
    batch = events[:size] if size > 1 else events[0]
    assert post_events(switch, batch).json() == {"accepted": size, "duplicates": 0}
    assert len(calls) == 2
    assert CallEvent.objects.count() == size and CallRecord.objects.get().event_count == size


@pytest.mark.postgres
def test_one_event_of_a_call_kept_busy_takes_the_locking_way(scene, switch: Client, monkeypatch) -> None:
    from reporting import ingest_sql

    events = call_events("w1")
    assert post_events(switch, events[:2]).status_code == 202
    refused = []

    def always_moved_on(*args: Any, **kwargs: Any) -> None:
        refused.append(1)  # as if another request stored an event of the call every time

    monkeypatch.setattr(ingest_sql, "write_one", always_moved_on)
    assert post_events(switch, events[2]).json() == {"accepted": 1, "duplicates": 0}
    assert len(refused) == 5  # ATTEMPTS, then the locking way stored it
    monkeypatch.undo()
    for one in events[3:]:
        assert post_events(switch, one).status_code == 202
    assert (record_snapshot(), handoff_snapshot()) == _one_request_result(switch, events)


@pytest.mark.postgres
def test_a_batch_locks_the_records_it_sees_without_rewriting_them(scene, switch: Client) -> None:
    under_way, starting = call_events("w1"), call_events("w2")
    assert post_events(switch, under_way[:2]).status_code == 202
    table = CallRecord._meta.db_table

    def record_versions() -> tuple[int, int]:  # (inserted, updated) row versions of this transaction
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = %s", [table]
            )
            return cursor.fetchone()

    before = record_versions()
    # One call under way (its record is locked), one starting (its record is written whole).
    batch = [*under_way[2:4], *starting[:3]]
    assert post_events(switch, batch).json() == {"accepted": 5, "duplicates": 0}
    inserted, updated = (now - then for now, then in zip(record_versions(), before, strict=True))
    assert (inserted, updated) == (1, 1)  # w2 inserted; w1's fold UPDATE, and no version to lock it
    for one in [*under_way[4:], *starting[3:]]:
        assert post_events(switch, one).status_code == 202
    expected = _one_request_result(switch, [*under_way, *starting])
    assert (record_snapshot(), handoff_snapshot()) == expected


@pytest.mark.postgres
def test_one_event_of_a_call_without_a_record_creates_it_in_a_statement_of_its_own(
    scene, switch: Client
) -> None:
    events = call_events("w1")
    assert post_events(switch, events[1]).json() == {"accepted": 1, "duplicates": 0}  # no start yet
    assert CallRecord.objects.get().event_count == 1
    for one in [*events[2:], events[0]]:
        assert post_events(switch, one).status_code == 202
    assert (record_snapshot(), handoff_snapshot()) == _one_request_result(switch, events)


def _one_request_result(switch: Client, events: list[dict[str, Any]]) -> tuple[Any, Any]:
    wipe()
    assert post_events(switch, events).status_code == 202
    return record_snapshot(), handoff_snapshot()


@pytest.mark.postgres
def test_a_prefilled_record_names_no_bot_deleted_since_validation(acme, scene, bot, switch: Client) -> None:
    from reporting.events import validate_events
    from reporting.ingest import ingest_events

    events, agents = validate_events(acme, {"events": call_events("w1")})
    bot.delete()  # after the events were checked, before they are stored
    ingest_events(center=acme, events=events, agents=agents)  # commits: no dangling foreign key
    record = CallRecord.objects.get(call_id="w1")
    assert record.virtual_agent_id is None and record.active_virtual_agent_id is None
    assert record.event_count == len(events) and record.queue_id is not None
    assert Handoff.objects.get().virtual_agent_id is None


# --- after commit: the live feed ----------------------------------------------------------------


def listen(center: Any) -> tuple[Any, str]:
    """A channel in the center's live group, as a Live page socket would be."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(center.pk), channel)
    return layer, channel


def heard(layer: Any, channel: str, quiet: float = 0.3) -> list[dict[str, Any]]:
    """Every message the channel has, until `quiet` seconds pass without one (one event loop)."""

    async def collect() -> list[dict[str, Any]]:
        messages = []
        try:
            while True:
                messages.append(await asyncio.wait_for(layer.receive(channel), quiet))
        except TimeoutError:
            return messages

    return async_to_sync(collect)()


def test_each_new_event_reaches_the_centers_feed_after_commit(
    acme, scene, switch: Client, bot, sales, django_capture_on_commit_callbacks
) -> None:
    layer, channel = listen(acme)
    events = call_events("c1")[:4]  # started, bot, handoff requested, accepted
    with django_capture_on_commit_callbacks(execute=True):
        post_events(switch, events)
    with django_capture_on_commit_callbacks(execute=True):
        post_events(switch, events)  # a retried request stores nothing and sends nothing
    [message] = heard(layer, channel)
    assert message["type"] == "live.events"
    feed = message["messages"]
    assert [m["event"]["id"] for m in feed] == [e["id"] for e in sorted(events, key=lambda e: e["id"])]
    assert [m["cursor"] for m in feed] == sorted(CallEvent.objects.values_list("pk", flat=True))
    requested = next(m for m in feed if m["event"]["type"] == "handoff.requested")
    assert requested["event"] == {**events[2], "occurred_at": "2026-05-01T09:30:30+00:00"}
    assert requested["call"] == {
        "call_id": "c1",
        "direction": "inbound",
        "from": "+442079460999",
        "to": "+442079460018",
        "status": "in_progress",
        "bot_outcome": "handed_off",
        "started_at": "2026-05-01T09:30:00+00:00",
        "ended_at": None,
        "handoff_count": 1,
        "active_virtual_agent": str(bot.pk),  # the REFER is not answered yet: still on the bot
        "event_count": 4,
    }
    assert requested["virtual_agent"] == {"id": str(bot.pk), "name": "Billing bot", "extension": "7001"}
    assert requested["handoff"] == {
        "sequence": 1,
        "state": "accepted",  # the state after the batch; the event says which step this is
        "refer_to": "<sip:4323@acme.voiso.com>",
        "target": {"type": "queue", "ref": str(sales.pk), "extension": "4323", "name": "Sales", "error": ""},
        "context": {"X-Intent": "billing"},
        "sip_status": 202,
        "failure_reason": "",
        "requested_at": "2026-05-01T09:30:30+00:00",
        "accepted_at": "2026-05-01T09:30:30.200000+00:00",
        "completed_at": None,
        "failed_at": None,
    }
    started = next(m for m in feed if m["event"]["type"] == "call.started")
    assert started["handoff"] is None and started["virtual_agent"]["id"] == str(bot.pk)


def test_another_centers_group_hears_nothing(
    acme, globex, scene, switch: Client, django_capture_on_commit_callbacks
) -> None:
    layer, channel = listen(globex)
    with django_capture_on_commit_callbacks(execute=True):
        post_events(switch, call_events("c1"))
    assert heard(layer, channel) == []


@pytest.mark.redis
def test_messages_are_built_only_for_a_center_someone_watches_and_the_rest_is_caught_up(
    acme, scene, switch: Client, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from reporting import ingest
    from reporting.live import catch_up

    built: list[int] = []
    real = ingest.feed_messages

    def counted(new_events: Any, assemblies: Any) -> Any:
        built.append(len(new_events))
        return real(new_events, assemblies)

    monkeypatch.setattr(ingest, "feed_messages", counted)
    before = CallEvent.objects.count()
    page_loaded = timezone.now()
    unwatched, watched = call_events("c1")[:3], call_events("c2")[:2]
    with django_capture_on_commit_callbacks(execute=True):
        post_events(switch, unwatched)  # no Live page open: nothing to build, nothing sent
    assert feed_sender.flush(5) and built == []
    layer, channel = listen(acme)  # a page opens its socket (joins the group)...
    with django_capture_on_commit_callbacks(execute=True):
        post_events(switch, watched)
    assert feed_sender.flush(5) and built == [2]
    [message] = heard(layer, channel)
    assert [m["event"]["id"] for m in message["messages"]] == sorted(e["id"] for e in watched)
    # ...and then fetches what it missed: the unwatched events are there.
    caught_up = {m["event"]["id"] for m in catch_up(acme, since=page_loaded).messages}
    assert {e["id"] for e in unwatched} <= caught_up and CallEvent.objects.count() == before + 5


def test_nothing_is_broadcast_before_commit(
    acme, scene, switch: Client, django_capture_on_commit_callbacks
) -> None:
    layer, channel = listen(acme)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post_events(switch, call_events("c1")[:1])
    assert callbacks  # queued for the commit...
    assert heard(layer, channel) == []  # ...and not sent before it


def test_with_redis_down_events_are_still_accepted_and_stored(
    settings, scene, switch: Client, django_capture_on_commit_callbacks, caplog
) -> None:
    # Port 9 (discard) on localhost: nothing listens, connections are refused at once.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:9/0"]},
        }
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = post_events(switch, call_events("c1"))
    assert response.status_code == 202 and response.json()["accepted"] == 8
    assert CallRecord.objects.get().status == "ended"
    assert feed_sender.flush()  # the request queued its messages; the sender's loop tried and logged
    assert "shared cache (Redis) unavailable: live feed: 8 message(s) not published" in caplog.text


# --- after commit: routing's active-call counters ---------------------------------------------


def test_active_call_counters_follow_the_bot(
    scene, switch: Client, bot, django_capture_on_commit_callbacks
) -> None:
    events = {e["type"]: e for e in call_events("c1")}
    other = call_events("c2", refer_to=None)

    def post(*batch: dict[str, Any]) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            assert post_events(switch, list(batch)).status_code == 202
        assert feed_sender.flush()  # with Redis, the counters move in the feed sender's next round

    post(events["call.started"], events["bot.connected"])
    assert active_calls(str(bot.pk)) == 1
    post(other[0], other[1])
    assert active_calls(str(bot.pk)) == 2
    post(events["bot.connected"])  # a retry moves nothing
    assert active_calls(str(bot.pk)) == 2
    post(events["handoff.requested"], events["handoff.accepted"])
    assert active_calls(str(bot.pk)) == 2  # asked to transfer, still on the bot
    post(events["handoff.completed"])
    assert active_calls(str(bot.pk)) == 1  # left for the queue
    post(*other[2:])  # c2 ends
    assert active_calls(str(bot.pk)) == 0
    post(events["call.ended"])
    assert active_calls(str(bot.pk)) == 0


def test_a_call_ended_before_its_bot_connected_event_arrives_never_counts(
    scene, switch: Client, bot, django_capture_on_commit_callbacks
) -> None:
    events = call_events("c1", refer_to=None)
    with django_capture_on_commit_callbacks(execute=True):
        post_events(switch, [e for e in events if e["type"] == "call.ended"])
        post_events(switch, events)
    assert feed_sender.flush()
    assert active_calls(str(bot.pk)) == 0


def test_counter_deltas_and_the_floor() -> None:
    assert active_call_deltas([(None, "a"), ("a", None), (None, "a"), ("b", "a"), ("c", "c")]) == {
        "a": 2,
        "b": -1,
    }
    apply_active_deltas({"x": -2})
    assert cache.get(active_key("x")) == 0
    apply_active_deltas({"x": 3})
    apply_active_deltas({"x": -1})
    assert cache.get(active_key("x")) == 2


def test_a_cache_outage_does_not_fail_ingestion(
    scene, switch: Client, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("cache is down")

    post_events(switch, call_events("warm-up")[:1])  # the API key is cached before the outage
    monkeypatch.setattr(cache, "add", down)
    monkeypatch.setattr(cache, "incr", down)
    monkeypatch.setattr(cache, "add_and_incr", down, raising=False)  # Redis: one pipeline for all
    with django_capture_on_commit_callbacks(execute=True):
        response = post_events(switch, call_events("c1")[:2])
    assert feed_sender.flush()  # the counter's failure is the sender's to log
    assert response.status_code == 202 and CallRecord.objects.get(call_id="c1").active_virtual_agent_id


def test_with_the_cache_down_routing_counts_a_bots_calls_from_the_records(
    scene, switch: Client, bot, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        post_events(switch, call_events("c1")[:2] + call_events("c2")[:2])  # two calls on the bot
        post_events(switch, [e for e in call_events("c2") if e["type"] == "call.ended"])
    assert feed_sender.flush()

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("cache is down")

    monkeypatch.setattr(cache, "get", down)
    assert active_calls(str(bot.pk)) == 1  # c1 is on the bot, c2 has ended


# --- provider reports waiting for their call --------------------------------------------------


def test_a_report_that_arrived_first_is_attached_when_the_record_appears(
    acme, scene, switch: Client, bot, django_capture_on_commit_callbacks
) -> None:
    by_call_id = ProviderCallReport.objects.create(
        contact_center=acme,
        integration=bot.integration,
        provider="generic_sip",
        provider_call_id="x1",
        call_id="c1",
    )
    by_provider_id = ProviderCallReport.objects.create(
        contact_center=acme, integration=bot.integration, provider="generic_sip", provider_call_id="prov-c2"
    )
    with django_capture_on_commit_callbacks(execute=True):  # ingestion looks once it has committed
        post_events(switch, call_events("c1") + call_events("c2"))
    by_call_id.refresh_from_db()
    by_provider_id.refresh_from_db()
    assert by_call_id.call_record == CallRecord.objects.get(call_id="c1")
    assert by_provider_id.call_record == CallRecord.objects.get(call_id="c2")


def test_a_bot_without_extension_is_named_by_id(acme, scene, switch: Client) -> None:
    bot = make_bot(acme, name="Quiet bot", extension=None)
    assert (
        post_events(switch, event("bot.connected", "c1", 0, virtual_agent=str(bot.pk).upper())).status_code
        == 202
    )
    assert CallRecord.objects.get().virtual_agent == bot


# --- deadlocks and serialization failures retry the whole transaction ----------------------------


class _Deadlock(Exception):
    sqlstate = "40P01"  # what psycopg's DeadlockDetected carries


def test_a_deadlock_retries_the_whole_transaction(scene, switch: Client, monkeypatch) -> None:
    from django.db import OperationalError

    from reporting import ingest_sql

    real = ingest_sql.store_and_lock
    calls = []

    def deadlock_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            real(*args, **kwargs)  # the statement ran: its rows must be rolled back with the attempt
            raise OperationalError("deadlock detected") from _Deadlock()
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_sql, "store_and_lock", deadlock_once)
    events = call_events("c1")
    assert post_events(switch, events).json() == {"accepted": len(events), "duplicates": 0}
    assert len(calls) == 2
    assert CallEvent.objects.count() == len(events) and CallRecord.objects.get().event_count == len(events)


@pytest.mark.parametrize(
    ("way", "events"),
    [("store_and_lock", call_events("c1")[:2]), ("write_one", call_events("c1")[0])],
    ids=["batch", "one event"],
)
def test_other_database_errors_are_not_retried(acme, scene, monkeypatch, way: str, events: Any) -> None:
    from django.db import OperationalError

    from reporting import ingest_sql
    from reporting.events import validate_events
    from reporting.ingest import ingest_events

    if way == "write_one" and not ingest_sql.prefills_records():
        events = [events]  # SQLite takes the locking way for one event too
        way = "store_and_lock"
    calls = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise OperationalError("server closed the connection unexpectedly")

    events, agents = validate_events(acme, {"events": events} if isinstance(events, list) else events)
    monkeypatch.setattr(ingest_sql, way, broken)
    with pytest.raises(OperationalError):
        ingest_events(center=acme, events=events, agents=agents)
    assert len(calls) == 1


# --- names resolved in the last seconds are remembered, refusals never --------------------------


def test_a_bot_or_extension_created_a_moment_after_a_miss_is_found_at_once(
    acme, scene, switch: Client
) -> None:
    from tests.factories import make_queue

    assert post_events(switch, event("bot.connected", "c1", 0, virtual_agent="7005")).status_code == 400
    make_bot(acme, name="New bot", extension="7005")
    assert post_events(switch, event("bot.connected", "c1", 0, virtual_agent="7005")).status_code == 202

    refer = {"virtual_agent": "7005", "refer_to": "<sip:4999@acme.voiso.com>"}
    post_events(switch, event("handoff.requested", "c1", 1, **refer))
    make_queue(acme, name="Brand new", extension="4999")
    post_events(switch, event("handoff.requested", "c1", 2, **refer))
    assert [(h.target_type, h.target_error) for h in Handoff.objects.order_by("sequence")] == [
        ("", "unknown_extension"),
        ("queue", ""),
    ]


def test_lookups_are_remembered_briefly(scene, switch: Client) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    events = {e["type"]: e for e in call_events("c1")}
    post_events(switch, [events["call.started"], events["bot.connected"], events["handoff.requested"]])
    again = {**events["handoff.requested"], "id": "again", "occurred_at": "2026-05-01T09:31:00Z"}
    with CaptureQueriesContext(connection) as queries:
        assert post_events(switch, again).status_code == 202
    lookups = [
        q["sql"]
        for q in queries.captured_queries
        if any(table in q["sql"] for table in ("virtual_agents_virtualagent", "voiso_byob_extension"))
        and not q["sql"].startswith(("INSERT", "UPDATE", "WITH"))
    ]
    assert lookups == []  # the bot and the Refer-To were resolved a moment ago
    assert Handoff.objects.count() == 2 and Handoff.objects.get(sequence=2).target_type == "queue"


# --- the feed sender: queued, coalesced, bounded ------------------------------------------------


class _SlowLayer:
    """A channel layer whose first group_send waits for `release`: later sends queue up meanwhile."""

    def __init__(self) -> None:
        import threading

        self.sent: list[tuple[str, list[dict[str, Any]]]] = []
        self.release = threading.Event()
        self.started = threading.Event()

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        import asyncio

        self.started.set()
        while not self.sent and not self.release.is_set():
            await asyncio.sleep(0.01)
        self.sent.append((group, message["messages"]))


@pytest.fixture
def slow_layer(settings, monkeypatch) -> _SlowLayer:
    from reporting import ingest

    layer = _SlowLayer()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
    monkeypatch.setattr(ingest, "get_channel_layer", lambda: layer)
    return layer


def test_the_feed_sender_sends_what_queued_during_a_send_together_and_in_order(slow_layer, acme) -> None:
    from reporting.ingest import FeedSender

    sender = FeedSender()
    sender.send(acme.pk, [{"n": 0}])
    assert slow_layer.started.wait(5)
    for n in range(1, 6):  # the first send is still waiting: these queue up
        sender.send(acme.pk, [{"n": n}])
    slow_layer.release.set()
    assert sender.flush(5)
    assert slow_layer.sent == [
        (group_name(acme.pk), [{"n": 0}]),
        (group_name(acme.pk), [{"n": n} for n in range(1, 6)]),  # one round trip for five requests
    ]


def test_the_feed_sender_queue_is_bounded(slow_layer, acme, monkeypatch, caplog) -> None:
    from reporting import ingest

    monkeypatch.setattr(ingest, "MAX_PENDING", 3)
    sender = ingest.FeedSender()
    sender.send(acme.pk, [{"n": 0}])
    assert slow_layer.started.wait(5)
    for n in range(1, 6):
        sender.send(acme.pk, [{"n": n}])
    slow_layer.release.set()
    assert sender.flush(5)
    assert [m["n"] for _, messages in slow_layer.sent for m in messages] == [0, 3, 4, 5]  # the oldest dropped
    assert "live feed: 1 message(s) dropped" in caplog.text


def test_the_feed_sender_moves_the_counters_of_many_requests_in_one_round(
    slow_layer, acme, monkeypatch
) -> None:
    from reporting import ingest

    applied: list[dict[str, int]] = []
    monkeypatch.setattr(ingest, "apply_active_deltas", applied.append)
    sender = ingest.FeedSender()
    sender.send(acme.pk, [{"n": 0}])
    assert slow_layer.started.wait(5)
    sender.count({"bot-a": 1})  # three requests while the first send is still out
    sender.count({"bot-a": 1, "bot-b": 1})
    sender.count({"bot-b": -1})
    slow_layer.release.set()
    assert sender.flush(5)
    assert [deltas for deltas in applied if deltas] == [{"bot-a": 2}]  # bot-b's moves cancelled out


def test_a_worker_that_exits_sends_what_it_queued(tmp_path) -> None:
    """atexit: a gunicorn worker restarting must not drop the feed messages of its last requests."""
    import subprocess
    import sys
    import textwrap

    sent = tmp_path / "sent.json"
    script = textwrap.dedent(
        f"""
        import asyncio, json, django
        django.setup()
        from reporting import ingest

        class Layer:
            async def group_send(self, group, message):
                await asyncio.sleep(0.2)  # still sending when the interpreter starts to exit
                open({str(sent)!r}, "w").write(json.dumps(message["messages"]))

        ingest.get_channel_layer = lambda: Layer()
        ingest.feed_sender.send("center", [{{"n": 1}}])
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "voiso_byob.settings",
        "REDIS_URL": "redis://127.0.0.1:9/0",  # a Redis channel layer by name; never reached here
        "DEBUG": "true",
    }
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    assert json.loads(sent.read_text()) == [{"n": 1}]
