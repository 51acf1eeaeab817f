"""Menu state while Redis is down (routing.menu_state): the route API goes on from PostgreSQL."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import Client

from routing.models import Flow, MenuState
from tests.routing.test_telephony_route import flow, post, switch, verbs  # noqa: F401 (fixtures)
from voiso_byob.cache import RedisCache

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def redis_cache(settings) -> Iterator[None]:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    settings.CACHES = {"default": {"BACKEND": "voiso_byob.cache.RedisCache", "LOCATION": url}}
    cache.clear()
    yield
    cache.clear()


def redis_down(monkeypatch) -> None:
    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    for method in ("get", "get_many", "set", "add", "incr", "delete", "get_then_write", "add_and_incr"):
        monkeypatch.setattr(RedisCache, method, down)


def test_with_redis_down_a_menu_is_answered_from_postgresql(
    flow: Flow,  # noqa: F811
    switch: Client,  # noqa: F811
    monkeypatch,
    caplog,
) -> None:
    assert post(switch, call_id="warm-up").status_code == 200  # the answer is remembered, as in service
    redis_down(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="voiso_byob.cache"):
        first = post(switch)
        assert first.status_code == 200 and verbs(first) == ["play", "gather"]
        assert MenuState.objects.filter(call_id="call-1").count() == 1
        second = post(switch, digits="2")
        assert second.status_code == 200 and second.json()["destination"]["extension"] == "4400"
        assert not MenuState.objects.exists()  # taken by the answer; the call left the menu
        assert post(switch, digits="2").json()["error"]["code"] == "unknown_call"
    outages = [r for r in caplog.records if "shared cache (Redis) unavailable" in r.getMessage()]
    assert len(outages) == 1 and not outages[0].exc_info  # once per outage, one line


def test_a_menu_saved_during_the_outage_is_found_when_redis_is_back(
    flow: Flow,  # noqa: F811
    switch: Client,  # noqa: F811
    monkeypatch,
) -> None:
    with monkeypatch.context() as outage:
        redis_down(outage)
        assert verbs(post(switch)) == ["play", "gather"]
    assert post(switch, call_id="warm-up").status_code == 200  # back: answers remembered again
    answer = post(switch, digits="1")
    assert answer.status_code == 200 and answer.json()["destination"]["extension"] == "4323"
    assert not MenuState.objects.exists()


def test_a_menu_saved_in_redis_is_not_looked_for_in_postgresql(
    flow: Flow,  # noqa: F811
    switch: Client,  # noqa: F811
    django_assert_num_queries,
) -> None:
    assert post(switch, call_id="warm-up").status_code == 200
    assert verbs(post(switch)) == ["play", "gather"]
    with django_assert_num_queries(0):
        assert post(switch, digits="1").json()["destination"]["extension"] == "4323"
