"""Pushes from the workers reach sockets through the channel layer on Valkey: in one script
call (``services.layer._direct``) where the layer allows it, delivering what channels_redis'
own ``group_send`` delivers."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer

from recsys.services import layer as layer_service


def _layer(**config) -> RedisChannelLayer:
    """A layer on the test Valkey like the configured one, with a prefix of its own."""
    configured = get_channel_layer()
    return RedisChannelLayer(hosts=configured.hosts, **{"prefix": f"test-{uuid.uuid4().hex[:8]}", **config})


async def _receive(layer, channel: str) -> dict | None:
    try:
        return await asyncio.wait_for(layer.receive(channel), 2)
    except asyncio.TimeoutError:
        return None


MESSAGE = {"type": "recs.updated", "key": "for-you", "seq": 7, "recs": {"items": [{"id": "42", "score": 0.5,
                                                                                   "title": "Alien <i>(1979)</i>"}]},
           "ratio": 1.25, "none": None, "flag": True, "bytes": b"\x00\xff"}


def test_one_script_call_delivers_what_channels_redis_group_send_delivers():
    layer = _layer()
    send = layer_service._direct(layer)
    assert send is not None

    async def scenario():
        # Two sockets of one process (process-specific channels share a Redis key), one of
        # another process, and a plain channel; two groups, one send each.
        mine, also_mine = await layer.new_channel(), await layer.new_channel()
        elsewhere = _layer(prefix=layer.prefix)  # another ASGI process
        other = await elsewhere.new_channel()
        plain = f"plain-{uuid.uuid4().hex[:6]}"
        for channel in (mine, also_mine, other, plain):
            await layer.group_add("visitor-a", channel)
        await layer.group_add("visitor-b", mine)
        await asyncio.to_thread(send, [("visitor-a", MESSAGE), ("visitor-b", {**MESSAGE, "seq": 8})])
        receivers = {mine: layer, also_mine: layer, other: elsewhere, plain: layer}
        got = {c: await _receive(r, c) for c, r in receivers.items()}
        second = await _receive(layer, mine)
        # channels_redis' own path, for comparison, on the same sockets.
        await layer.group_send("visitor-a", MESSAGE)
        theirs = {c: await _receive(r, c) for c, r in receivers.items()}
        return got, second, theirs

    got, second, theirs = async_to_sync(scenario)()
    assert all(message == MESSAGE for message in got.values()), got
    assert second == {**MESSAGE, "seq": 8}
    assert got == theirs


def test_a_full_channel_drops_the_message_and_expired_members_are_left_out():
    layer = _layer(capacity=1)
    send = layer_service._direct(layer)

    async def scenario():
        channel = f"plain-{uuid.uuid4().hex[:6]}"
        await layer.group_add("visitor-c", channel)
        await asyncio.to_thread(send, [("visitor-c", {"type": "one"}), ("visitor-c", {"type": "two"})])
        first, nothing = await _receive(layer, channel), await _receive(layer, channel)
        # A member older than group_expiry is dropped from the group, as channels_redis does.
        stale = f"plain-{uuid.uuid4().hex[:6]}"
        await layer.group_add("visitor-c", stale)
        connection = layer.connection(0)
        await connection.zadd(layer._group_key("visitor-c"), {stale: 1})
        await asyncio.to_thread(send, [("visitor-c", {"type": "three"})])
        members = await connection.zrange(layer._group_key("visitor-c"), 0, -1)
        return first, nothing, await _receive(layer, channel), members

    first, nothing, third, members = async_to_sync(scenario)()
    assert first == {"type": "one"} and nothing is None  # capacity 1: the second was dropped
    assert third == {"type": "three"} and len(members) == 1


@pytest.mark.parametrize("config", [{"symmetric_encryption_keys": ["secret"]}, {"channel_capacity": {"plain-*": 5}}])
def test_layers_the_script_does_not_cover_take_channels_redis_own_path(config, monkeypatch):
    layer = _layer(**config)
    assert layer_service._direct(layer) is None
    monkeypatch.setattr(layer_service, "get_channel_layer", lambda: layer)
    channel = f"plain-{uuid.uuid4().hex[:6]}"

    def on_the_loop(coro):
        return asyncio.run_coroutine_threadsafe(coro, layer_service._loop()).result(5)

    on_the_loop(layer.group_add("visitor-d", channel))
    layer_service.group_send_many([("visitor-d", {"type": "x"})])
    assert on_the_loop(_receive(layer, channel)) == {"type": "x"}
