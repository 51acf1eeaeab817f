"""The Redis cache backend: Django's, with one client per pool (voiso_byob.cache)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from voiso_byob.cache import RedisCache


@pytest.fixture
def redis_cache() -> Iterator[RedisCache]:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    backend = RedisCache(url, {"KEY_PREFIX": "cache-test"})
    yield backend
    backend.delete_many(["menu state", "counter", "a", "b"])


@pytest.mark.redis
def test_it_is_a_working_cache(redis_cache: RedisCache) -> None:
    redis_cache.set("menu state", {"node": "menu", "tries": 1}, 30)
    assert redis_cache.get("menu state") == {"node": "menu", "tries": 1}
    assert redis_cache.add("menu state", "other", 30) is False
    assert redis_cache.add("counter", 1, 30) is True
    assert redis_cache.incr("counter") == 2
    redis_cache.delete_many(["menu state"])
    assert redis_cache.get("menu state") is None


@pytest.mark.redis
def test_one_client_serves_every_call(redis_cache: RedisCache) -> None:
    redis_cache.get("a")
    client = redis_cache._cache.get_client(write=True)
    redis_cache.set("b", 1, 30)
    assert redis_cache._cache.get_client(write=True) is client
    assert redis_cache._cache.get_client() is client  # one server: reads use the same pool


def test_keys_are_not_held_to_memcached_rules() -> None:
    backend = RedisCache("redis://127.0.0.1:6379/0", {})
    backend.validate_key("route-state:with space\n" + "x" * 300)  # no warning, no error
