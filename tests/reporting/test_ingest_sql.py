"""Hand-written fast paths checked against what they replace (json.dumps, Django's URLValidator)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.events_day import generate_day, replay, seed_center, shuffled
from reporting import ingest_sql
from reporting.events import _PLAIN_URL, EventIn, check_event, is_http_url
from reporting.ingest_sql import _events_json

# Text PostgreSQL can keep (what validation lets through): no NUL, no lone surrogate.
_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    event_id=_text.filter(str.strip),
    call_id=_text.filter(str.strip),
    data=st.dictionaries(_text.map("x-{}".format), _json_values, max_size=4),  # no field the type checks
    refs=st.none() | st.dictionaries(_text, _json_values, max_size=2),
    micros=st.integers(0, 999_999),
)
def test_events_json_is_what_json_dumps_gives(
    event_id: str, call_id: str, data: dict[str, Any], refs: dict[str, Any] | None, micros: int
) -> None:
    occurred = datetime(2026, 5, 1, 9, 30, 0, micros, tzinfo=UTC)
    item = {"id": event_id, "type": "call.ended", "call_id": call_id, "occurred_at": occurred.isoformat()}
    validated, errors = check_event({**item, "data": {**data, "end_reason": "normal"}})
    assert errors == {} and validated is not None and validated.data_json is not None
    unvalidated = EventIn(event_id, "call.ended", call_id, occurred, data)  # no data_json: encoded here
    text = _events_json([validated, unvalidated], {event_id: refs} if refs else {})
    expected_refs = refs or {}
    since_1970 = (occurred - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert json.loads(text) == [
        [
            event_id,
            "call.ended",
            call_id,
            since_1970,
            {**data, "end_reason": "normal"},
            expected_refs,
        ],
        [event_id, "call.ended", call_id, since_1970, data, expected_refs],
    ]


# --- recording URLs: the quick check never accepts what Django's URLValidator refuses --------------

_url_texts = st.one_of(
    st.from_regex(_PLAIN_URL, fullmatch=True),
    st.builds(
        "{}://{}{}{}".format,
        st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
        st.text(st.sampled_from("abz09-.[]:@_é"), min_size=0, max_size=30),
        st.sampled_from(["", ":80", ":", ":123456"]),
        st.text(st.sampled_from("/?#ab \t\n%[]"), max_size=10),
    ),
)


@settings(max_examples=500, deadline=None)
@given(value=_url_texts)
def test_the_quick_url_check_agrees_with_djangos_validator(value: str) -> None:
    try:
        URLValidator(schemes=["http", "https"])(value)
        django_says = True
    except ValidationError:
        django_says = False
    assert is_http_url(value) == django_says  # quick or slow path, the same answer
    plain = _PLAIN_URL.match(value)
    if plain is not None and len(plain.group(1)) <= 253:  # the quick path's own yes
        assert django_says


def test_usual_and_unusual_recording_urls() -> None:
    assert is_http_url("https://rec.example.com/calls/c1.wav?sig=ab%20c#t=1")
    assert is_http_url("http://[::1]:8080/x") and is_http_url("http://localhost/x")  # Django's own path
    for bad in ["ftp://rec.example.com/x", "https://rec.example.com/a b", "https://-bad.example.com/", "x"]:
        assert not is_http_url(bad)


@pytest.mark.postgres
@pytest.mark.django_db
@settings(max_examples=100, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_times_go_to_postgresql_as_microseconds_exactly(moment: datetime) -> None:
    from django.db import connection

    from reporting.ingest_sql import micros, rows_from_json

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t FROM {rows_from_json([('t', 'timestamptz')])}", [f"[[{micros(moment)}]]"])
        assert cursor.fetchone()[0] == moment


# --- prepared statements: the plan PostgreSQL keeps for any values --------------------------------


@pytest.mark.postgres
@pytest.mark.django_db
def test_ingestion_statements_reach_the_event_tables_by_index_in_a_generic_plan() -> None:
    """Ingestion's statements run prepared; after five runs on a connection PostgreSQL keeps one plan
    made without the parameters' values (reporting.ingest_sql.prepared). None of those plans may
    scan an events, records or handoffs table whole: one contact center's day fills them here."""
    center = seed_center("plans")
    day = generate_day(events=12_000, seed=11, slug="plans")
    replay(center, day[:10_000], batch=500)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # the statistics autovacuum keeps

    executed: dict[str, Any] = {}

    def capture(run: Any, sql: str, params: Any, *rest: Any) -> Any:
        if "$1" in sql:  # the prepared, numbered statements (voiso_byob.db)
            executed[sql] = params
        return run(sql, params, *rest)

    rest = shuffled(day[10_000:], seed=1)  # calls under way (their records locked) and new ones
    with connection.execute_wrapper(capture):
        replay(center, rest[:-40], batch=500)
        replay(center, rest[-40:], batch=1)
        ingest_sql.load_events(center.pk, sorted({e["call_id"] for e in rest[:50]}))
    statements = {sql: params for sql, params in executed.items() if '"reporting_' in sql}
    # WITH ev (batches) / WITH u (their fold) / SELECT "id"… (events again) / SELECT (SELECT …
    # (one event's read) / WITH rec (its write)
    kinds = {sql.split(" ", 2)[1] for sql in statements}
    assert {"ev", "u", '"id",', "(SELECT", "rec"} <= kinds, kinds

    for number, (sql, params) in enumerate(statements.items()):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cursor.execute(f"PREPARE plan_check_{number} AS {sql}")
            placeholders = ", ".join(["%s"] * len(params))
            cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE plan_check_{number}({placeholders})", params)
            [[[plan]]] = cursor.fetchall()
            cursor.execute(f"DEALLOCATE plan_check_{number}")
        nodes = list(_plan_nodes(plan["Plan"]))
        if "rollup" not in sql.split(" ", 3)[2]:  # the rollups' upsert reads no table (its
            # conflicts go through the unique key: "Conflict Arbiter Indexes")
            assert any("$" in node.get("Index Cond", "") for node in nodes), sql[:80]  # generic indeed
        else:
            assert plan["Plan"].get("Conflict Arbiter Indexes"), sql[:80]
        whole = [
            node["Relation Name"]
            for node in nodes
            if node["Node Type"] == "Seq Scan" and node["Relation Name"].startswith("reporting_")
        ]
        assert whole == [], f"{sql[:80]}…: {whole}"


def _plan_nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)
