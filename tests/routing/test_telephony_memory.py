"""The telephony endpoints' memory (routing.hotpath) on the shared Redis cache.

Each process remembers what the route/refer query returned and checks the telephony
generation in the same round trip as the request's own cache work; every change an answer
depends on moves the generation, so the next request reads the database again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from routing import hotpath
from routing.models import Queue
from routing.services import update_queue
from tests.conftest import bearer, error_code
from tests.factories import make_member, make_queue
from virtual_agents import services as va_services
from voiso_byob import cache as shared_cache
from voiso_byob.cache import TELEPHONY_GENERATION_KEY, RedisCache
from voiso_byob.models import ApiKey, ContactCenter, ExternalTransferPolicy, Membership
from voiso_byob.services import revoke_api_key, set_extension

pytestmark = pytest.mark.redis
URL = "/api/v1/telephony/refer"


@pytest.fixture(autouse=True)
def redis_cache(settings) -> Iterator[None]:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    settings.CACHES = {"default": {"BACKEND": "voiso_byob.cache.RedisCache", "LOCATION": url}}
    cache.clear()
    hotpath.forget_everything()
    yield
    hotpath.forget_everything()
    cache.clear()


@pytest.fixture
def telephony(acme, api_keys) -> Client:
    make_queue(acme, name="Sales", extension="4323")
    make_member(acme, extension="1001", email="ana@acme.example")
    client = Client()
    client.defaults.update(bearer(api_keys["telephony"]))
    return client


def refer(client: Client, refer_to: str) -> Any:
    return client.post(URL, {"call_id": "c-1", "refer_to": refer_to}, content_type="application/json")


def test_a_remembered_answer_needs_no_sql(telephony: Client, django_assert_num_queries) -> None:
    assert refer(telephony, "<sip:4323@acme.voiso.com>").status_code == 200  # reads the database
    with django_assert_num_queries(0):
        body = refer(telephony, "<sip:4323@acme.voiso.com>").json()
    assert body["destination"]["name"] == "Sales"


def _rename_queue(acme: ContactCenter) -> str:
    update_queue(queue=Queue.objects.get(contact_center=acme, name="Sales"), by="t", name="Sales EMEA")
    return "Sales EMEA"


def _rename_user(acme: ContactCenter) -> str:
    user = Membership.objects.get(contact_center=acme, extension__digits="1001").user
    user.full_name = "Ana Lima"
    user.save()
    return "Ana Lima"


@pytest.mark.parametrize(
    ("refer_to", "change"),
    [("<sip:4323@acme.voiso.com>", _rename_queue), ("<sip:1001@acme.voiso.com>", _rename_user)],
)
def test_a_change_is_seen_on_the_next_request(
    acme, telephony: Client, refer_to: str, change: Callable[[ContactCenter], str]
) -> None:
    before = cache.get(TELEPHONY_GENERATION_KEY)
    assert refer(telephony, refer_to).status_code == 200
    expected = change(acme)
    assert cache.get(TELEPHONY_GENERATION_KEY) != before
    assert refer(telephony, refer_to).json()["destination"]["name"] == expected


def test_revocation_policy_renumbering_and_bots_are_seen_at_once(acme, telephony: Client) -> None:
    assert refer(telephony, "<tel:+12125550199>").status_code == 200
    acme.external_transfer_policy = ExternalTransferPolicy.BLOCKED
    acme.save()
    assert error_code(refer(telephony, "<tel:+12125550199>")) == "external_not_allowed"

    member = Membership.objects.get(contact_center=acme, extension__digits="1001")
    assert refer(telephony, "<sip:1001@acme.voiso.com>").status_code == 200
    set_extension(center=acme, current=member.extension, digits="1009", kind="agent")
    assert error_code(refer(telephony, "<sip:1001@acme.voiso.com>")) == "unknown_extension"

    integration = va_services.create_integration(
        center=acme, provider="generic_sip", label="House", credentials=None, by="t"
    )
    bot = va_services.create_virtual_agent(
        integration=integration,
        by="t",
        name="Overflow bot",
        sip_uri="sip:bot@10.0.0.5",
        extension="7001",
        connect=True,
    )
    assert refer(telephony, "<sip:7001@acme.voiso.com>").status_code == 200
    va_services.update_virtual_agent(agent=bot, by="t", is_enabled=False)
    assert error_code(refer(telephony, "<sip:7001@acme.voiso.com>")) == "target_unavailable"

    revoke_api_key(key=ApiKey.objects.get(contact_center=acme, scope="telephony"), by="t")
    assert error_code(refer(telephony, "<sip:4323@acme.voiso.com>")) == "revoked_api_key"


def test_bookkeeping_writes_keep_the_memory(acme, telephony: Client, admin) -> None:
    assert refer(telephony, "<sip:4323@acme.voiso.com>").status_code == 200
    before = cache.get(TELEPHONY_GENERATION_KEY)
    admin.client.get("/")  # a page view; logins and key use only touch bookkeeping fields
    ApiKey.objects.filter(contact_center=acme).update(last_used_at=timezone.now())
    assert cache.get(TELEPHONY_GENERATION_KEY) == before


def test_a_lost_bump_is_seen_within_the_memory_limit(acme, telephony: Client, monkeypatch) -> None:
    assert refer(telephony, "<sip:4323@acme.voiso.com>").json()["destination"]["name"] == "Sales"
    monkeypatch.setattr(shared_cache, "_bump_now", lambda: None)  # Redis was away at the change
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        _rename_queue(acme)
        assert refer(telephony, "<sip:4323@acme.voiso.com>").json()["destination"]["name"] == "Sales"
        traveller.shift(timedelta(seconds=hotpath.LOCAL_SECONDS + 1))
        assert refer(telephony, "<sip:4323@acme.voiso.com>").json()["destination"]["name"] == "Sales EMEA"


def test_without_the_cache_every_answer_comes_from_the_database(telephony: Client, monkeypatch) -> None:
    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("cache is down")

    assert refer(telephony, "<sip:4323@acme.voiso.com>").status_code == 200
    for method in ("get", "set", "add", "incr", "get_then_write"):
        monkeypatch.setattr(RedisCache, method, down)
    assert refer(telephony, "<sip:4323@acme.voiso.com>").status_code == 200
    assert refer(telephony, "<sip:1001@acme.voiso.com>").json()["destination"]["type"] == "user"


def test_route_answers_from_memory_with_its_one_cache_round_trip(
    acme, api_keys, django_assert_num_queries
) -> None:
    from routing.services import create_flow, create_phone_number, publish_flow
    from tests.routing.test_telephony_route import NUMBER, menu_graph

    sales = make_queue(acme, name="Sales", extension="4323")
    support = make_queue(acme, name="Support", extension="4400")
    flow = create_flow(center=acme, by="t", name="Main", graph=menu_graph(str(sales.pk), str(support.pk)))
    publish_flow(flow=flow, by="t")
    create_phone_number(center=acme, by="t", number=NUMBER, flow=flow)
    switch = Client(**bearer(api_keys["telephony"]))

    def post(**body: Any) -> Any:
        payload = {"call_id": "m-1", "to": NUMBER, "from": "+442079460999", **body}
        return switch.post("/api/v1/telephony/route", payload, content_type="application/json")

    assert post(call_id="warm-up").status_code == 200
    with django_assert_num_queries(0):
        assert [step["verb"] for step in post().json()["instructions"]] == ["play", "gather"]
        assert post(digits="2").json()["destination"]["extension"] == "4400"
    assert error_code(post(digits="1")) == "unknown_call"  # the menu state went with the dial
