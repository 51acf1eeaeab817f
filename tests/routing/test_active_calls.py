"""The bots' active-call counters as the dashboard reads them: all in one cache round trip."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from django.core.cache import cache

from reporting.ingest import apply_active_deltas
from routing.route import active_calls, active_calls_of


def test_several_bots_are_read_as_ingestion_left_them() -> None:
    apply_active_deltas({"bot-a": 3, "bot-b": 1})
    apply_active_deltas({"bot-b": -1})

    assert active_calls_of(["bot-a", "bot-b", "bot-c"]) == {"bot-a": 3, "bot-b": 0, "bot-c": 0}
    assert active_calls_of(["bot-a"]) == {"bot-a": active_calls("bot-a")}


@pytest.mark.django_db
def test_a_cache_outage_counts_the_bots_calls_from_the_records() -> None:
    bot = str(uuid.uuid4())
    apply_active_deltas({bot: 2})  # the counter: ingestion's, out of reach below

    with mock.patch.object(cache, "get_many", side_effect=ConnectionError("redis down")):
        assert active_calls_of([bot]) == {bot: 0}  # no record has this bot on a call
    # (a bot with calls in progress: tests/reporting/test_ingest.py, through ingestion)


def test_a_cache_failure_that_is_not_an_outage_is_raised() -> None:
    with mock.patch.object(cache, "get_many", side_effect=ValueError("a bug")), pytest.raises(ValueError):
        active_calls_of(["bot-a"])


def test_no_bots_asks_nothing() -> None:
    assert active_calls_of([]) == {}
