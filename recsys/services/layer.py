"""Channel-layer sends from synchronous code (Celery workers).

``async_to_sync(layer.group_send)`` runs each call on a fresh event loop, and channels_redis
keeps its Redis connections per loop: every push paid a new connection and its teardown
(measured 12 ms median per send on the shared 2-core machine, against well under a
millisecond for the send itself). Here a daemon thread owns one loop for the life of the
process (created lazily, and again after a fork), so the layer's connection pool is reused.

With channels_redis' ``RedisChannelLayer`` on one Redis server (the demo's and the default
deployment's), ``group_send_many`` skips the loop altogether: one Lua script does what
``group_send`` does for every group (``_GROUP_SEND``), in one round trip from the calling
thread. channels_redis takes four sequential round trips per send (expire the group, read
it, expire the channels, add the message) plus the hand-off to the loop thread: under
bench_freshness's load that was 5-6 ms of each realtime cycle, with 0.1 ms of CPU.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import threading
import time
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 5.0

_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "loop": None}


def _loop() -> asyncio.AbstractEventLoop:
    with _lock:
        if _state["pid"] != os.getpid() or _state["loop"] is None or not _state["loop"].is_running():
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            threading.Thread(target=run, name="liverec-channel-layer", daemon=True).start()
            started.wait(5)
            _state.update(pid=os.getpid(), loop=loop)
        return _state["loop"]


def group_send(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to ``group`` and wait for the layer to accept it."""
    group_send_many([(group, message)])


def group_send_many(sends: list[tuple[str, dict[str, Any]]]) -> None:
    """``group_send`` of each (group, message): in one script call where ``_direct`` applies,
    else started together on the loop thread and waited for once (a fold's pushes to dozens
    of visitors cost one hand-off, not one each)."""
    if not sends:
        return
    layer = get_channel_layer()
    direct = _direct(layer)
    if direct is not None:
        direct(sends)
        return

    async def send_all() -> None:
        await asyncio.gather(*(layer.group_send(group, message) for group, message in sends))

    asyncio.run_coroutine_threadsafe(send_all(), _loop()).result(timeout=SEND_TIMEOUT_SECONDS)


# channels_redis 4.x's group_send for many groups at once (core.RedisChannelLayer.group_send and
# _map_channel_keys_to_connection): drop the group's expired members, then per channel key
# (process-specific channels share theirs, up to the "!") drop expired messages and, below
# capacity, add the message naming the key's channels in "__asgi_channel__". Messages are
# msgpack maps: the caller packs each one with "__asgi_channel__" as its last key and cuts the
# value off; the script appends the packed list of channels, after a random prefix that
# keeps sorted-set members unique, as channels_redis' serializer does.
# KEYS: the group keys, in send order. ARGV: now (s), group cutoff, message cutoff, expiry, capacity,
# prefix, then a random prefix and a message head per group. Returns the sends over capacity.
_GROUP_SEND = """
local now, group_cutoff, cutoff = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local expiry, capacity, prefix = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local over = 0
for g = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[g], 0, group_cutoff)
  local by_key, order = {}, {}
  for _, channel in ipairs(redis.call('ZRANGE', KEYS[g], 0, -1)) do
    local bang = string.find(channel, '!', 1, true)
    local key = prefix .. (bang and string.sub(channel, 1, bang) or channel)
    if not by_key[key] then by_key[key] = {}; order[#order + 1] = key end
    local names = by_key[key]
    names[#names + 1] = channel
  end
  for _, key in ipairs(order) do
    redis.call('ZREMRANGEBYSCORE', key, 0, cutoff)
    if redis.call('ZCARD', key) < capacity then
      -- a microsecond apart per send: a channel receives in send order (lowest score first)
      redis.call('ZADD', key, string.format('%.6f', now + g * 1e-6),
                 ARGV[5 + 2 * g] .. ARGV[6 + 2 * g] .. cmsgpack.pack(by_key[key]))
      redis.call('EXPIRE', key, expiry)
    else
      over = over + 1
    end
  end
end
return over
"""
_GROUP_SEND_SHA = hashlib.sha1(_GROUP_SEND.encode()).hexdigest()

_clients: dict[int, tuple[int, Any]] = {}  # id(layer) -> (pid, redis client)


def _direct(layer):
    """A function doing ``group_send_many`` in one script call, or None where the layer is
    not channels_redis' RedisChannelLayer on a single server given by address, with its
    default serializer and no per-channel capacities or encryption (the script assumes
    those; any other layer takes the loop thread)."""
    try:
        from channels_redis.core import RedisChannelLayer
        from channels_redis.serializers import MsgPackSerializer
    except ImportError:  # another channel layer
        return None
    serializer = getattr(layer, "_serializer", None)
    if (type(layer) is not RedisChannelLayer or len(layer.hosts) != 1 or "address" not in layer.hosts[0]
            or layer.channel_capacity or type(serializer) is not MsgPackSerializer or serializer.crypter
            or serializer.random_prefix_length <= 0):
        return None
    pid, client = _clients.get(id(layer), (None, None))
    if pid != os.getpid():
        import redis

        host = dict(layer.hosts[0])
        client = redis.Redis.from_url(host.pop("address"), **host)
        _clients[id(layer)] = (os.getpid(), client)

    def send(sends: list[tuple[str, dict[str, Any]]]) -> None:
        import msgpack

        keys, args = [], []
        for group, message in sends:
            assert layer.require_valid_group_name(group), "Group name not valid"
            body = {k: v for k, v in message.items() if k != "__asgi_channel__"}
            head = msgpack.packb({**body, "__asgi_channel__": None})  # the key last, its value nil
            keys.append(layer._group_key(group))
            args += [random.getrandbits(8 * serializer.random_prefix_length).to_bytes(
                serializer.random_prefix_length, "big"), head[:-1]]  # the nil value cut off
        now = time.time()
        header = [now, int(now) - layer.group_expiry, int(now) - int(layer.expiry), layer.expiry, layer.capacity,
                  layer.prefix]
        from redis.exceptions import NoScriptError

        try:
            over = client.evalsha(_GROUP_SEND_SHA, len(keys), *keys, *header, *args)
        except NoScriptError:  # the server lost its script cache (restart, SCRIPT FLUSH)
            over = client.eval(_GROUP_SEND, len(keys), *keys, *header, *args)
        if over:  # as channels_redis reports it: a socket that stopped reading loses messages
            logger.info("%s channel(s) over capacity in a send to %d group(s)", over, len(keys))

    return send
