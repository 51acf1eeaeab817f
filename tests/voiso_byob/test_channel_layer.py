"""The channel layer named by REDIS_URL carries group messages between processes."""

import asyncio
import os
import sys
import uuid

import pytest
from channels.layers import get_channel_layer
from django.conf import settings


def test_without_redis_url_the_layer_is_in_memory(monkeypatch) -> None:
    if os.environ.get("REDIS_URL"):
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    else:
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"


@pytest.mark.redis
def test_group_message_from_another_process_arrives() -> None:
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"
    group = f"test.{uuid.uuid4().hex}"
    sender = (
        "import asyncio, os, sys;"
        "from channels_redis.core import RedisChannelLayer;"
        "layer = RedisChannelLayer(hosts=[os.environ['REDIS_URL']]);"
        f"asyncio.run(layer.group_send({group!r}, {{'type': 'ping', 'n': 7}}))"
    )

    async def scenario() -> dict:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        try:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", sender, env=dict(os.environ))
            assert await proc.wait() == 0
            return await asyncio.wait_for(layer.receive(channel), timeout=5)
        finally:
            await layer.group_discard(group, channel)

    message = asyncio.run(scenario())
    assert message == {"type": "ping", "n": 7}


def test_the_layers_connections_outwait_its_blocking_read() -> None:
    """channels_redis waits for a socket's next message in a blocking read of `brpop_timeout`
    seconds; a client socket timeout at or under it cuts the read short and kills the socket."""
    from channels_redis.core import RedisChannelLayer

    assert RedisChannelLayer.brpop_timeout + 5 <= settings.CHANNEL_LAYER_SOCKET_TIMEOUT
    if os.environ.get("REDIS_URL"):
        (host,) = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
        assert set(host) == {"address", "socket_timeout", "retry"}
        assert host["address"] == os.environ["REDIS_URL"]
        assert host["socket_timeout"] == settings.CHANNEL_LAYER_SOCKET_TIMEOUT
        # A connection Redis dropped (a restart) is tried once more on a new one, without waiting.
        assert host["retry"].get_retries() == 1


@pytest.mark.redis
def test_a_receive_waits_past_the_redis_clients_default_timeout() -> None:
    """Nothing arrives for 7 s: the receive is still waiting (not a TimeoutError from redis-py)."""
    layer = get_channel_layer()

    async def scenario() -> str:
        channel = await layer.new_channel()
        try:
            await asyncio.wait_for(layer.receive(channel), timeout=7)
        except TimeoutError as exc:
            return "still waiting" if not str(exc) else f"redis: {exc}"
        return "received"

    assert asyncio.run(scenario()) == "still waiting"
