"""The bots' active-call counters as the dashboard reads them: all in one cache round trip."""

from __future__ import annotations

from unittest import mock

from django.core.cache import cache

from reporting.ingest import apply_active_deltas
from routing.route import active_calls, active_calls_of


def test_several_bots_are_read_as_ingestion_left_them() -> None:
    apply_active_deltas({"bot-a": 3, "bot-b": 1})
    apply_active_deltas({"bot-b": -1})

    assert active_calls_of(["bot-a", "bot-b", "bot-c"]) == {"bot-a": 3, "bot-b": 0, "bot-c": 0}
    assert active_calls_of(["bot-a"]) == {"bot-a": active_calls("bot-a")}


def test_a_cache_outage_reads_as_free_bots_as_routing_does() -> None:
    apply_active_deltas({"bot-a": 2})

    with mock.patch.object(cache, "get_many", side_effect=ConnectionError("redis down")):
        assert active_calls_of(["bot-a"]) == {"bot-a": 0}


def test_no_bots_asks_nothing() -> None:
    assert active_calls_of([]) == {}
