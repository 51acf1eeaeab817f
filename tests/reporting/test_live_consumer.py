"""The live feed socket: who may connect, which center's events reach it, and what it forwards."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels import layers
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from reporting.consumers import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED
from reporting.live import group_name, publish
from tests.conftest import Persona
from tests.factories import PASSWORD, make_member
from voiso_byob.access import SESSION_CENTER_KEY
from voiso_byob.asgi import application
from voiso_byob.models import ContactCenter, Membership, Role

# The consumer's database lookups run in a worker thread: the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def feed_message(
    cursor: int, call_id: str = "call-1", event_type: str = "handoff.requested"
) -> dict[str, Any]:
    """One message in the shape reporting.feed builds (see reporting.live)."""
    return {
        "cursor": cursor,
        "event": {
            "id": f"evt-{cursor}",
            "type": event_type,
            "call_id": call_id,
            "occurred_at": "2025-03-01T10:00:00+00:00",
            "data": {"refer_to": "sip:4323@acme.voiso.com"},
        },
        "call": {
            "call_id": call_id,
            "direction": "inbound",
            "from": "+14155550100",
            "to": "+14155550199",
            "status": "in_progress",
            "bot_outcome": "handed_off",
            "started_at": "2025-03-01T09:59:00+00:00",
            "ended_at": None,
            "handoff_count": 1,
        },
        "virtual_agent": {"id": "3f0e8a57-8d1b-4b55-9d43-2f1a9f0f6f11", "name": "Ava", "extension": "7001"},
        "handoff": None,
    }


def socket_for(client: Client | None) -> WebsocketCommunicator:
    """A websocket to /ws/live/ through the real ASGI stack (origin check, session, auth)."""
    headers = [(b"origin", b"http://testserver")]
    if client is not None:
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
    return WebsocketCommunicator(application, "/ws/live/", headers=headers)


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        return await scenario()

    return async_to_sync(main)()


async def close_code(communicator: WebsocketCommunicator) -> int:
    """Connect and return the code the server closed with (the handshake itself succeeds)."""
    connected, _ = await communicator.connect()
    assert connected
    output = await communicator.receive_output(timeout=2)
    assert output["type"] == "websocket.close", output
    await communicator.wait()
    return output["code"]


async def open_socket(client: Client) -> WebsocketCommunicator:
    communicator = socket_for(client)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


# --- who may connect -------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["admin", "supervisor"])
def test_administrators_and_supervisors_receive_their_centers_events(
    persona: str, request: pytest.FixtureRequest
) -> None:
    member: Persona = request.getfixturevalue(persona)
    center_id = member.center.id

    async def scenario() -> dict[str, Any]:
        communicator = await open_socket(member.client)
        try:
            await sync_to_async(publish)(center_id, [feed_message(1), feed_message(2)])
            return await communicator.receive_json_from(timeout=2)
        finally:
            await communicator.disconnect()

    assert run(scenario) == {"type": "events", "messages": [feed_message(1), feed_message(2)]}


def test_agent_is_refused_with_4403(agent: Persona) -> None:
    assert run(lambda: close_code(socket_for(agent.client))) == CLOSE_FORBIDDEN == 4403


def test_anonymous_is_refused_with_4401() -> None:
    assert run(lambda: close_code(socket_for(None))) == CLOSE_UNAUTHENTICATED == 4401


def test_signed_in_user_without_a_membership_is_refused_with_4403(acme: ContactCenter) -> None:
    membership = make_member(acme, Role.SUPERVISOR, email="leaver@acme.example")
    client = Client()
    assert client.login(username="leaver@acme.example", password=PASSWORD)
    Membership.objects.filter(pk=membership.pk).delete()

    assert run(lambda: close_code(socket_for(client))) == 4403


# --- access that changes while the socket is open --------------------------------------------


def _demote(membership_id: Any, role: str) -> None:
    from voiso_byob.services import update_member

    update_member(membership=Membership.objects.get(pk=membership_id), by="tests", role=role)


def _to_agent(membership: Membership) -> None:
    _demote(membership.pk, Role.AGENT)


def _removed(membership: Membership) -> None:
    from voiso_byob.services import remove_member

    remove_member(membership=Membership.objects.get(pk=membership.pk), by="tests")


def _deactivated(membership: Membership) -> None:
    user = type(membership.user).objects.get(pk=membership.user_id)
    user.is_active = False
    user.save()  # as Django admin does


@pytest.mark.parametrize(
    "change", [_to_agent, _removed, _deactivated], ids=["demoted to agent", "removed", "account deactivated"]
)
def test_an_open_socket_closes_with_4403_when_its_user_loses_access(
    supervisor: Persona, admin: Persona, change: Callable[[Membership], None]
) -> None:
    center_id = supervisor.center.id

    async def scenario() -> tuple[int, dict[str, Any]]:
        watching = await open_socket(supervisor.client)
        bystander = await open_socket(admin.client)  # the administrator's socket is not touched
        try:
            await sync_to_async(change)(supervisor.membership)
            output = await watching.receive_output(timeout=2)
            await sync_to_async(publish)(center_id, [feed_message(1)])
            return output, await bystander.receive_json_from(timeout=2)
        finally:
            await bystander.disconnect()

    closed, still_fed = run(scenario)
    assert closed["type"] == "websocket.close" and closed["code"] == CLOSE_FORBIDDEN
    assert still_fed == {"type": "events", "messages": [feed_message(1)]}


def test_a_change_that_keeps_access_keeps_the_socket(supervisor: Persona) -> None:
    center_id = supervisor.center.id

    async def scenario() -> dict[str, Any]:
        communicator = await open_socket(supervisor.client)
        try:
            await sync_to_async(_demote)(supervisor.membership.pk, Role.ADMINISTRATOR)  # a promotion
            await sync_to_async(publish)(center_id, [feed_message(1)])
            return await communicator.receive_json_from(timeout=2)
        finally:
            await communicator.disconnect()

    assert run(scenario) == {"type": "events", "messages": [feed_message(1)]}


def test_a_foreign_origin_is_refused_at_the_handshake(supervisor: Persona) -> None:
    session = supervisor.client.cookies[settings.SESSION_COOKIE_NAME].value
    communicator = WebsocketCommunicator(
        application,
        "/ws/live/",
        headers=[(b"origin", b"https://evil.example"), (b"cookie", f"sessionid={session}".encode())],
    )

    async def scenario() -> bool:
        connected, _ = await communicator.connect()
        # Hang up as a browser does: the refusing consumer then ends by itself. Left running, it
        # was cancelled at the loop's close in the middle of the Redis layer's blocking receive,
        # which once hung a full CI run.
        await communicator.disconnect()
        return connected

    assert run(scenario) is False


def test_the_socket_follows_the_center_the_portal_session_works_in(
    acme: ContactCenter, globex: ContactCenter, outsider: Persona
) -> None:
    # Administrator of globex, agent of acme: the feed depends on the center picked in the portal.
    make_member(acme, Role.AGENT, email=outsider.user.email, password=None)
    client = outsider.client
    session = client.session
    session[SESSION_CENTER_KEY] = str(acme.id)
    session.save()

    assert run(lambda: close_code(socket_for(client))) == 4403

    response = client.post("/switch/", {"center": "globex"})
    assert response.status_code == 302
    assert client.session[SESSION_CENTER_KEY] == str(globex.id)

    async def scenario() -> dict[str, Any]:
        communicator = await open_socket(client)
        try:
            await sync_to_async(publish)(acme.id, [feed_message(1)])
            await sync_to_async(publish)(globex.id, [feed_message(2)])
            return await communicator.receive_json_from(timeout=2)
        finally:
            await communicator.disconnect()

    assert run(scenario)["messages"] == [feed_message(2)]


# --- tenants and groups ----------------------------------------------------------------------


def test_each_center_receives_only_its_own_events(
    admin: Persona, supervisor: Persona, outsider: Persona, acme: ContactCenter, globex: ContactCenter
) -> None:
    async def scenario() -> tuple[list[Any], list[Any], list[Any]]:
        sockets = [await open_socket(p.client) for p in (admin, supervisor, outsider)]
        try:
            await sync_to_async(publish)(globex.id, [feed_message(10, call_id="globex-call")])
            await sync_to_async(publish)(acme.id, [feed_message(11, call_id="acme-call")])
            received: list[list[Any]] = [[], [], []]
            for index, communicator in enumerate(sockets):
                received[index].append((await communicator.receive_json_from(timeout=2))["messages"])
                # Nothing else is on its way to this socket.
                assert await communicator.receive_nothing(timeout=0.2)
            return received[0], received[1], received[2]
        finally:
            for communicator in sockets:
                await communicator.disconnect()

    acme_admin, acme_supervisor, globex_admin = run(scenario)
    assert acme_admin == acme_supervisor == [[feed_message(11, call_id="acme-call")]]
    assert globex_admin == [[feed_message(10, call_id="globex-call")]]


def test_group_name_is_the_center_uuid(acme: ContactCenter) -> None:
    assert group_name(acme.id) == f"live.{acme.id}" == group_name(str(acme.id))


def test_a_closed_socket_leaves_its_group(supervisor: Persona, settings) -> None:
    # Group membership is only inspectable on the in-memory layer (Redis keeps it server-side).
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = layers.get_channel_layer()
    group = group_name(supervisor.center.id)

    async def scenario() -> tuple[int, int]:
        communicator = await open_socket(supervisor.client)
        members_while_open = len(layer.groups.get(group, {}))
        await communicator.disconnect()
        members_after = len(layer.groups.get(group, {}))
        return members_while_open, members_after

    assert run(scenario) == (1, 0)


# --- what it forwards ------------------------------------------------------------------------


def test_batches_arrive_in_publish_order_and_unchanged(supervisor: Persona) -> None:
    batches = [[feed_message(n) for n in range(start, start + 3)] for start in (1, 4, 7)]
    center_id = supervisor.center.id

    async def scenario() -> list[Any]:
        communicator = await open_socket(supervisor.client)
        try:
            for batch in batches:
                await sync_to_async(publish)(center_id, batch)
            return [(await communicator.receive_json_from(timeout=2))["messages"] for _ in batches]
        finally:
            await communicator.disconnect()

    assert run(scenario) == batches


def test_an_empty_batch_sends_nothing(supervisor: Persona) -> None:
    center_id = supervisor.center.id

    async def scenario() -> bool:
        communicator = await open_socket(supervisor.client)
        try:
            await sync_to_async(publish)(center_id, [])
            return await communicator.receive_nothing(timeout=0.3)
        finally:
            await communicator.disconnect()

    assert run(scenario) is True


def test_what_the_browser_sends_is_ignored_and_the_feed_goes_on(supervisor: Persona) -> None:
    center_id = supervisor.center.id

    async def scenario() -> dict[str, Any]:
        communicator = await open_socket(supervisor.client)
        try:
            await communicator.send_to(text_data="not json {")
            await communicator.send_to(text_data='{"type": "live.events", "messages": ["forged"]}')
            await communicator.send_to(bytes_data=b"\x00\xff")
            assert await communicator.receive_nothing(timeout=0.2)
            await sync_to_async(publish)(center_id, [feed_message(5)])
            return await communicator.receive_json_from(timeout=2)
        finally:
            await communicator.disconnect()

    assert run(scenario)["messages"] == [feed_message(5)]


# --- when the channel layer is down ----------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.fixture
def redis_down(settings) -> Any:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{_closed_port()}/0"]},
        }
    }
    layers.channel_layers.backends.clear()
    yield
    layers.channel_layers.backends.clear()


def test_publish_with_redis_down_does_not_raise_and_says_so(
    redis_down: None, acme: ContactCenter, caplog: pytest.LogCaptureFixture
) -> None:
    assert type(layers.get_channel_layer()).__name__ == "RedisChannelLayer"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="reporting.live"):
        publish(acme.id, [feed_message(1)])
    assert time.monotonic() - started < 5
    assert "could not publish 1 message(s)" in caplog.text
    # The warning names the failure, never the payload.
    assert "sip:4323" not in caplog.text


def test_publish_from_inside_a_running_event_loop_thread_does_not_raise(acme: ContactCenter) -> None:
    # async_to_sync refuses to run in a thread with a running loop; publish() must still not raise.
    async def scenario() -> None:
        publish(acme.id, [feed_message(1)])

    asyncio.run(scenario())
