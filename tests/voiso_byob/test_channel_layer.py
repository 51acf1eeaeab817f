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
