"""Per-key rate limits (voiso_byob.rate_limits): a token bucket per API key, limits per scope.

The buckets are tested on both implementations (Redis, and the in-process fallback without it),
directly with a clock the test sets, then through every kind of endpoint: DRF views, route, refer
and events, each with the cache the deployment would have (Redis, or Django's local memory).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from redis.connection import Connection

from reporting.models import CallEvent
from routing import hotpath
from routing.models import Queue
from routing.route import menu_state_key
from routing.services import create_flow, create_phone_number, publish_flow
from tests.conftest import bearer, error_code
from tests.factories import make_api_key, make_queue
from tests.reporting.conftest import event, post_events
from tests.routing.test_telephony_route import NUMBER, menu_graph
from voiso_byob import rate_limits
from voiso_byob.cache import RedisCache
from voiso_byob.models import ApiKeyScope, ContactCenter
from voiso_byob.rate_limits import Limit, LocalBuckets, RedisBuckets, Take

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS = {"default": {"BACKEND": "voiso_byob.cache.RedisCache", "LOCATION": REDIS_URL}}


def _use(settings, name: str) -> Iterator[str]:
    settings.CACHES = REDIS if name == "redis" else LOCMEM
    cache.clear()
    hotpath.forget_everything()
    rate_limits.local_buckets.clear()
    rate_limits.forget_leases()
    yield name
    cache.clear()
    hotpath.forget_everything()
    rate_limits.local_buckets.clear()
    rate_limits.forget_leases()


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis), "local"])
def backend(request: pytest.FixtureRequest, settings) -> Iterator[str]:
    """The shared cache as deployed: Redis, or (no REDIS_URL) Django's local memory."""
    yield from _use(settings, request.param)


@pytest.fixture
def on_redis(settings) -> Iterator[str]:
    yield from _use(settings, "redis")


def started(call_id: str) -> dict[str, Any]:
    return event("call.started", call_id, 0, direction="inbound", **{"from": "+442079460999", "to": NUMBER})


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def limits(settings, **scopes: tuple[float, int]) -> None:
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, **scopes}


def assert_rate_limited(response: Any, retry_after: int) -> None:
    assert response.status_code == 429
    assert error_code(response) == "rate_limited"
    assert response["Retry-After"] == str(retry_after)
    assert response.json()["error"]["retry_after"] == retry_after


# --- the buckets, on both implementations -------------------------------------------------------


@pytest.fixture
def buckets(backend: str) -> rate_limits.Buckets:
    return RedisBuckets() if backend == "redis" else LocalBuckets()


def test_the_implementation_follows_the_cache(backend: str) -> None:
    expected = RedisBuckets if backend == "redis" else LocalBuckets
    assert isinstance(rate_limits.buckets(), expected)


def wait_after(buckets: rate_limits.Buckets, take: Take) -> float:
    """0 when a token was taken, else the refusal's wait."""
    try:
        assert buckets.take(take) == 1
    except rate_limits.RateLimited as exc:
        return exc.wait
    return 0.0


def test_a_bucket_allows_its_burst_then_refills_at_its_rate(buckets: rate_limits.Buckets) -> None:
    limit = Limit(rate=2.0, burst=3)
    t0 = NOW.timestamp()

    def take(at: float) -> float:
        return wait_after(buckets, Take(bucket="ratelimit:k1", limit=limit, now=t0 + at))

    assert [take(0), take(0), take(0)] == [0, 0, 0]
    assert take(0) == pytest.approx(0.5)  # one token comes every 1/rate seconds
    assert take(0.25) == pytest.approx(0.25)  # half a token has come back; the refusal took nothing
    assert take(0.5) == 0
    assert take(0.5) == pytest.approx(0.5)
    assert [take(60), take(60), take(60)] == [0, 0, 0]  # a long quiet spell refills up to the burst only
    assert take(60) > 0


def test_a_clock_gone_back_refills_nothing(buckets: rate_limits.Buckets) -> None:
    limit = Limit(rate=1.0, burst=1)
    t0 = NOW.timestamp()
    assert wait_after(buckets, Take(bucket="ratelimit:k1", limit=limit, now=t0 + 10)) == 0
    # Another server whose clock is 5 s behind: no token from the past, and none taken.
    assert wait_after(buckets, Take(bucket="ratelimit:k1", limit=limit, now=t0 + 5)) == pytest.approx(1.0)
    assert wait_after(buckets, Take(bucket="ratelimit:k1", limit=limit, now=t0 + 11)) == 0


def test_each_key_has_its_own_bucket(buckets: rate_limits.Buckets) -> None:
    limit = Limit(rate=1.0, burst=1)
    now = NOW.timestamp()
    assert wait_after(buckets, Take(bucket="ratelimit:k1", limit=limit, now=now)) == 0
    assert wait_after(buckets, Take(bucket="ratelimit:k1", limit=limit, now=now)) > 0
    assert wait_after(buckets, Take(bucket="ratelimit:k2", limit=limit, now=now)) == 0


def test_a_take_of_several_gets_what_is_there(buckets: rate_limits.Buckets) -> None:
    limit = Limit(rate=1.0, burst=5)
    now = NOW.timestamp()
    assert buckets.take(Take(bucket="ratelimit:k1", limit=limit, now=now, up_to=3)) == 3
    assert buckets.take(Take(bucket="ratelimit:k1", limit=limit, now=now, up_to=3)) == 2
    with pytest.raises(rate_limits.RateLimited):
        buckets.take(Take(bucket="ratelimit:k1", limit=limit, now=now, up_to=3))


def test_a_busy_key_takes_its_tokens_ahead_and_still_stops_at_its_burst(
    backend: str, settings, clock, monkeypatch
) -> None:
    limits(settings, telephony=(0.001, 300))  # leases of 3 tokens; almost no refill
    taken: list[int] = []
    real = rate_limits.buckets

    class Counting:
        def take(self, take: Take) -> int:
            taken.append(real().take(take))
            return taken[-1]

    monkeypatch.setattr(rate_limits, "buckets", Counting)
    rate_limits.forget_leases()
    for _ in range(300):
        rate_limits.check("k1", ApiKeyScope.TELEPHONY)
    assert taken == [3] * 100  # one bucket take for three requests
    with pytest.raises(rate_limits.RateLimited):
        rate_limits.check("k1", ApiKeyScope.TELEPHONY)
    rate_limits.check("k2", ApiKeyScope.TELEPHONY)


def test_tokens_taken_ahead_expire(backend: str, settings, clock) -> None:
    limits(settings, telephony=(1.0, 200))  # leases of 2
    rate_limits.forget_leases()
    rate_limits.check("k1", ApiKeyScope.TELEPHONY)  # takes 2, spends 1
    assert rate_limits._leases[rate_limits.bucket_key("k1")][0] == 1
    clock.shift(timedelta(seconds=rate_limits.LEASE_SECONDS))
    rate_limits.check("k1", ApiKeyScope.TELEPHONY)  # the one left has expired: a new take
    assert rate_limits._leases[rate_limits.bucket_key("k1")] == (
        1,
        NOW.timestamp() + 2 * rate_limits.LEASE_SECONDS,
    )


def test_small_limits_are_exact() -> None:
    assert rate_limits.lease_size(Limit(rate=50.0, burst=100)) == 1
    assert rate_limits.lease_size(Limit(rate=10_000.0, burst=20_000)) == 200


@pytest.mark.redis
def test_a_redis_bucket_expires_once_it_would_be_full_again(on_redis: str) -> None:
    RedisBuckets().take(Take(bucket="ratelimit:k1", limit=Limit(rate=10.0, burst=50), now=NOW.timestamp()))
    client = cache._cache.get_client(write=True)
    ttl_ms = client.pttl(cache.make_key("ratelimit:k1"))
    assert 5_000 < ttl_ms <= 6_000  # 50 tokens at 10/s: 5 s to refill, and a second's margin


def test_limits_come_from_settings_per_scope(settings) -> None:
    settings.API_RATE_LIMITS = {"telephony": (500.0, 1000), "read": (2.5, 5), "admin": (0.0, 1)}
    assert rate_limits.limit_for(ApiKeyScope.TELEPHONY) == Limit(rate=500.0, burst=1000)
    assert rate_limits.limit_for(ApiKeyScope.READ) == Limit(rate=2.5, burst=5)
    assert rate_limits.limit_for(ApiKeyScope.ADMIN) is None  # a rate of 0: not limited


# --- DRF views --------------------------------------------------------------------------------


def test_a_read_key_is_limited_at_the_read_scope(backend, settings, clock, acme, api_keys) -> None:
    limits(settings, read=(1.0, 2), admin=(100.0, 100))
    reader = Client(**bearer(api_keys["read"]))
    assert [reader.get("/api/v1/queues/").status_code for _ in range(2)] == [200, 200]
    refused = reader.get("/api/v1/queues/")
    assert_rate_limited(refused, retry_after=1)
    clock.shift(timedelta(seconds=1))
    assert reader.get("/api/v1/queues/").status_code == 200


def test_retry_after_is_whole_seconds_rounded_up(backend, settings, clock, acme, api_keys) -> None:
    limits(settings, read=(0.4, 1))  # a token every 2.5 s
    reader = Client(**bearer(api_keys["read"]))
    assert reader.get("/api/v1/queues/").status_code == 200
    assert_rate_limited(reader.get("/api/v1/queues/"), retry_after=3)
    clock.shift(timedelta(seconds=2))
    assert_rate_limited(reader.get("/api/v1/queues/"), retry_after=1)  # 0.5 s left


def test_another_key_is_not_affected(backend, settings, clock, acme, globex_admin_key) -> None:
    limits(settings, admin=(1.0, 1))
    first = Client(**bearer(make_api_key(acme, ApiKeyScope.ADMIN)[1]))
    second = Client(**bearer(make_api_key(acme, ApiKeyScope.ADMIN)[1]))
    assert first.get("/api/v1/queues/").status_code == 200
    assert first.get("/api/v1/queues/").status_code == 429
    assert second.get("/api/v1/queues/").status_code == 200
    assert Client(**bearer(globex_admin_key)).get("/api/v1/queues/").status_code == 200


def test_a_refused_write_changes_nothing(backend, settings, clock, acme, api_keys) -> None:
    limits(settings, admin=(1.0, 1))
    writer = Client(**bearer(api_keys["admin"]))
    assert writer.get("/api/v1/queues/").status_code == 200
    refused = writer.post("/api/v1/queues/", {"name": "Support", "extension": "4500"}, "application/json")
    assert_rate_limited(refused, retry_after=1)
    assert not Queue.objects.filter(contact_center=acme, name="Support").exists()


def test_portal_sessions_are_not_limited_by_key_limits(backend, settings, clock, admin) -> None:
    limits(settings, read=(1.0, 1), admin=(1.0, 1))
    assert {admin.client.get("/api/v1/queues/").status_code for _ in range(5)} == {200}


def test_refusals_before_the_view_take_no_token(backend, settings, clock, acme, api_keys) -> None:
    limits(settings, read=(1.0, 1))
    reader = Client(**bearer(api_keys["read"]))
    # A read key posting is refused by its scope first (DRF checks permissions before throttles).
    refused = reader.post("/api/v1/queues/", {"name": "Support", "extension": "4500"}, "application/json")
    assert error_code(refused) == "permission_denied"
    assert reader.get("/api/v1/queues/").status_code == 200


# --- the telephony endpoints ---------------------------------------------------------------------


@pytest.fixture
def routed(acme: ContactCenter) -> None:
    sales = make_queue(acme, name="Sales", extension="4323")
    support = make_queue(acme, name="Support", extension="4400")
    flow = create_flow(center=acme, by="t", name="Main", graph=menu_graph(str(sales.pk), str(support.pk)))
    publish_flow(flow=flow, by="t")
    create_phone_number(center=acme, by="t", number=NUMBER, flow=flow)


def route(client: Client, call_id: str, **body: Any) -> Any:
    payload = {"call_id": call_id, "to": NUMBER, "from": "+442079460999", **body}
    return client.post("/api/v1/telephony/route", payload, content_type="application/json")


def refer(client: Client, refer_to: str = "<sip:4323@acme.voiso.com>") -> Any:
    body = {"call_id": "c-1", "refer_to": refer_to}
    return client.post("/api/v1/telephony/refer", body, content_type="application/json")


def test_route_is_refused_with_sip_503_and_stores_no_menu_state(
    backend, settings, clock, acme, api_keys, routed
) -> None:
    limits(settings, telephony=(1.0, 2))
    switch = Client(**bearer(api_keys["telephony"]))
    assert route(switch, "warm-up").status_code == 200  # reads the database (and remembers, on Redis)
    assert route(switch, "c-1").status_code == 200  # from memory on Redis: the token rides its round trip
    refused = route(switch, "c-2")
    assert_rate_limited(refused, retry_after=1)
    assert refused.json()["error"]["sip_status"] == 503
    assert cache.get(menu_state_key(acme.pk, "c-2")) is None
    assert cache.get(menu_state_key(acme.pk, "c-1")) is not None
    refused_digits = route(switch, "c-1", digits="2")
    assert_rate_limited(refused_digits, retry_after=1)
    clock.shift(timedelta(seconds=1))
    # The refused digits changed nothing: the caller is still at the menu.
    assert route(switch, "c-1", digits="2").json()["destination"]["extension"] == "4400"


def test_refer_is_refused_with_sip_503(backend, settings, clock, acme, api_keys) -> None:
    make_queue(acme, name="Sales", extension="4323")
    limits(settings, telephony=(1.0, 2))
    switch = Client(**bearer(api_keys["telephony"]))
    assert [refer(switch).status_code for _ in range(2)] == [200, 200]
    refused = refer(switch)
    assert_rate_limited(refused, retry_after=1)
    assert refused.json()["error"]["sip_status"] == 503
    clock.shift(timedelta(seconds=1))
    assert refer(switch).status_code == 200


def test_a_refused_events_post_stores_nothing(backend, settings, clock, acme, api_keys) -> None:
    limits(settings, telephony=(1.0, 1))
    switch = Client(**bearer(api_keys["telephony"]))
    assert post_events(switch, [started("c-1")]).status_code == 202
    second = [started("c-2")]
    refused = post_events(switch, second)
    assert_rate_limited(refused, retry_after=1)
    assert "sip_status" not in refused.json()["error"]  # events answer no SIP request
    assert list(CallEvent.objects.values_list("call_id", flat=True)) == ["c-1"]
    clock.shift(timedelta(seconds=1))
    assert post_events(switch, second).status_code == 202


def test_a_batch_costs_one_token(backend, settings, clock, acme, api_keys) -> None:
    limits(settings, telephony=(1.0, 2))
    switch = Client(**bearer(api_keys["telephony"]))
    batch = [started(f"c-{n}") for n in range(50)]
    assert post_events(switch, batch).json() == {"accepted": 50, "duplicates": 0}
    assert post_events(switch, batch).json() == {"accepted": 0, "duplicates": 50}
    assert post_events(switch, batch).status_code == 429


def test_the_telephony_endpoints_share_the_key_s_bucket(
    backend, settings, clock, acme, api_keys, routed
) -> None:
    limits(settings, telephony=(1.0, 2))
    switch = Client(**bearer(api_keys["telephony"]))
    assert route(switch, "c-1").status_code == 200
    assert refer(switch).status_code == 200
    assert post_events(switch, event("call.ended", "c-1", 5, end_reason="completed")).status_code == 429


def test_a_wrong_secret_never_charges_the_key(backend, settings, clock, acme, api_keys) -> None:
    make_queue(acme, name="Sales", extension="4323")
    limits(settings, telephony=(1.0, 1))
    raw = api_keys["telephony"]
    stranger = Client(**bearer(raw[:-4] + "AAAA"))  # the key's visible prefix, not its secret
    switch = Client(**bearer(raw))
    assert refer(switch).status_code == 200  # remembered, on Redis
    clock.shift(timedelta(seconds=1))
    assert {error_code(refer(stranger)) for _ in range(3)} == {"invalid_api_key"}
    assert refer(switch).status_code == 200


@pytest.mark.redis
@pytest.mark.parametrize(
    "telephony",
    [(10_000.0, 20_000), (50.0, 100)],
    ids=["taken ahead, spent in process", "taken in the request's round trip"],
)
def test_route_and_refer_from_memory_still_make_one_redis_round_trip(
    on_redis, settings, telephony, clock, acme, api_keys, routed, monkeypatch, django_assert_num_queries
) -> None:
    limits(settings, telephony=telephony)
    switch = Client(**bearer(api_keys["telephony"]))
    assert route(switch, "warm-up").status_code == 200
    assert refer(switch).status_code == 200
    sent: list[int] = []
    original = Connection.send_packed_command

    def counting(self: Connection, *args: Any, **kwargs: Any) -> Any:
        sent.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Connection, "send_packed_command", counting)
    with django_assert_num_queries(0):
        assert route(switch, "c-1").status_code == 200
        assert len(sent) == 1
        assert route(switch, "c-1", digits="2").status_code == 200
        assert len(sent) == 3  # as before: the read with the token, then the menu state's delete
        assert refer(switch).status_code == 200
        assert len(sent) == 4


# --- Redis down: fail open ---------------------------------------------------------------------


@pytest.mark.redis
def test_redis_down_lets_requests_through_and_says_so(
    on_redis, settings, clock, acme, api_keys, monkeypatch, caplog
) -> None:
    limits(settings, read=(1.0, 1), telephony=(1.0, 1))

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Redis is down")

    make_queue(acme, name="Sales", extension="4323")
    reader = Client(**bearer(api_keys["read"]))
    switch = Client(**bearer(api_keys["telephony"]))
    assert reader.get("/api/v1/queues/").status_code == 200
    assert reader.get("/api/v1/queues/").status_code == 429
    assert refer(switch).status_code == 200
    assert refer(switch).status_code == 429
    for method in ("get_then_write", "take_then_get_write"):
        monkeypatch.setattr(RedisCache, method, down)
    monkeypatch.setattr(rate_limits, "_last_warning", 0.0)
    with caplog.at_level(logging.WARNING, logger="voiso_byob.rate_limits"):
        assert [reader.get("/api/v1/queues/").status_code for _ in range(3)] == [200, 200, 200]
        for n in range(3):
            assert post_events(switch, [started(f"c-{n}")]).status_code == 202
        assert [refer(switch).status_code for _ in range(3)] == [200, 200, 200]
    warnings = [r for r in caplog.records if r.name == "voiso_byob.rate_limits"]
    assert len(warnings) == 1  # once a minute, not once a request
    assert "not enforced" in warnings[0].getMessage()
    assert CallEvent.objects.count() == 3
