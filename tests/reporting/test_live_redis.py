"""The live feed across processes: Redis carries a tenant's events to sockets on other servers.

Two real daphne processes serve /ws/live/ from the test database; the event is published from
this (third) process, as a WSGI worker storing an event would.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import connection

from bench.live_latency import LiveSocket, daphne, free_port
from reporting.live import publish
from tests.conftest import Persona
from tests.reporting.conftest import call_events, make_bot
from tests.reporting.test_live_consumer import feed_message
from voiso_byob.models import ContactCenter

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def server_env() -> dict[str, str]:
    """This process's environment, with the database URL naming the test database."""
    url = urlparse(os.environ["DATABASE_URL"])._replace(path="/" + connection.settings_dict["NAME"])
    return {**os.environ, "DATABASE_URL": url.geturl(), "DEBUG": "false"}


def cookie(persona: Persona) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={persona.client.cookies[settings.SESSION_COOKIE_NAME].value}"


def test_an_event_published_in_one_process_reaches_sockets_on_two_other_servers(
    supervisor: Persona, admin: Persona, outsider: Persona, acme: ContactCenter, globex: ContactCenter
) -> None:
    ports = [free_port(), free_port()]

    async def scenario() -> tuple[list[Any], Any, int | None]:
        acme_sockets = [
            await LiveSocket.connect("127.0.0.1", ports[0], cookie=cookie(supervisor)),
            await LiveSocket.connect("127.0.0.1", ports[1], cookie=cookie(admin)),
        ]
        globex_socket = await LiveSocket.connect("127.0.0.1", ports[1], cookie=cookie(outsider))
        try:
            await asyncio.sleep(0.3)  # the group joins happen before accept; this is only slack
            await sync_to_async(publish)(globex.id, [feed_message(2, call_id="globex-call")])
            await sync_to_async(publish)(acme.id, [feed_message(1, call_id="acme-call")])
            received = [await sock.receive_json(timeout=5) for sock in acme_sockets]
            globex_received = await globex_socket.receive_json(timeout=5)
            # Nothing of acme's follows on globex's socket.
            try:
                extra = await asyncio.wait_for(globex_socket.receive(), 0.5)
            except TimeoutError:
                extra = None
            return received, globex_received, extra
        finally:
            for sock in [*acme_sockets, globex_socket]:
                await sock.close()

    env = server_env()
    with daphne(ports[0], env), daphne(ports[1], env):
        received, globex_received, extra = async_to_sync(scenario)()

    assert received == [{"type": "events", "messages": [feed_message(1, call_id="acme-call")]}] * 2
    assert globex_received == {"type": "events", "messages": [feed_message(2, call_id="globex-call")]}
    assert extra is None


def test_another_server_refuses_an_agent_and_anonymous_with_their_close_codes(agent: Persona) -> None:
    port = free_port()

    async def scenario() -> tuple[int | None, int | None]:
        codes = []
        for header in (cookie(agent), ""):
            sock = await LiveSocket.connect("127.0.0.1", port, cookie=header)
            assert await sock.receive_json(timeout=5) is None
            codes.append(sock.close_code)
        return codes[0], codes[1]

    with daphne(port, server_env()):
        assert async_to_sync(scenario)() == (4403, 4401)


def test_an_event_posted_to_one_server_reaches_a_socket_on_another(
    supervisor: Persona, acme: ContactCenter, api_keys: dict[str, str]
) -> None:
    bot = make_bot(acme)
    events = call_events("cross-1", refer_to=None)[:2]
    ports = [free_port(), free_port()]

    async def scenario() -> tuple[int, Any]:
        sock = await LiveSocket.connect("127.0.0.1", ports[1], cookie=cookie(supervisor))
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(
                    f"http://127.0.0.1:{ports[0]}/api/v1/telephony/events",
                    json={"events": events},
                    headers={"Authorization": f"Bearer {api_keys['telephony']}"},
                )
            return response.status_code, await sock.receive_json(timeout=5)
        finally:
            await sock.close()

    env = server_env()
    with daphne(ports[0], env), daphne(ports[1], env):
        status, received = async_to_sync(scenario)()

    assert status == 202
    assert [m["event"]["id"] for m in received["messages"]] == [e["id"] for e in events]
    assert received["messages"][1]["virtual_agent"]["id"] == str(bot.pk)


IDLE_SECONDS = 30


def test_an_idle_socket_stays_open_and_still_receives_an_event(
    supervisor: Persona, acme: ContactCenter
) -> None:
    """A quiet evening: no event for longer than any Redis client timeout (redis-py's default 5 s
    socket timeout once cut the layer's 5 s blocking read short, closing the socket with 1011).
    The socket stays open and the next event still arrives. Takes IDLE_SECONDS, on purpose."""
    port = free_port()

    async def scenario() -> tuple[Any, int | None, Any]:
        sock = await LiveSocket.connect("127.0.0.1", port, cookie=cookie(supervisor))
        try:
            try:
                early = await asyncio.wait_for(sock.receive(), IDLE_SECONDS)
            except TimeoutError:
                early = "nothing"  # what a quiet socket should see: no close, no message
            if early != "nothing":
                return early, sock.close_code, None
            await sync_to_async(publish)(acme.id, [feed_message(1, call_id="late-call")])
            return early, sock.close_code, await sock.receive_json(timeout=5)
        finally:
            await sock.close()

    with daphne(port, server_env()):
        early, close_code, received = async_to_sync(scenario)()

    assert (early, close_code) == ("nothing", None)
    assert received == {"type": "events", "messages": [feed_message(1, call_id="late-call")]}
