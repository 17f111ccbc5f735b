"""LiveRec's channel layer: channels_redis' ``RedisChannelLayer`` with a ``group_send_many``
extension, chosen in ``CHANNEL_LAYERS`` (``"BACKEND": "recsys.channel_layer.RedisChannelLayer"``).

A realtime cycle pushes to dozens of visitor groups at once. channels_redis sends to one group
in four sequential round trips (expire the group, read it, expire the channels, add the
message); under bench_freshness's load that was 5-6 ms of each cycle for 0.1 ms of CPU. The
extension sends to many groups in few round trips, from the calling thread of a Celery worker
(``group_send_many_blocking``) or from an event loop (``group_send_many``), on redis-py
clients of its own:

- one server: one Lua script call for every group (``_ONE_CALL``);
- several servers (channels_redis shards groups and channels over its host list by a
  consistent hash): per shard, one pipelined read of the groups it holds, then one script
  call adding the messages to the channels it holds (``_ADD``): two round trips per shard.

Either way it delivers what ``group_send`` delivers: group members past ``group_expiry`` are
dropped, expired messages removed, a channel at capacity loses the message (logged, as
channels_redis logs it), and a receiver cannot tell the two paths apart. Callers that hold any
other layer use plain ``group_send`` (``recsys.services.layer``).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import time
from typing import Any

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer

logger = logging.getLogger(__name__)

Send = tuple[str, dict[str, Any]]

# channels_redis 4.x's group_send for many groups in one call on one server: drop the group's
# expired members, then per channel key (process-specific channels share theirs, up to the "!")
# drop expired messages and, below capacity, add the message naming the key's channels in
# "__asgi_channel__". Messages are msgpack maps: the caller packs each with "__asgi_channel__"
# as its last key and cuts the value off; the script appends the packed list of channels, after
# a random prefix that keeps sorted-set members unique, as channels_redis' serializer does.
# KEYS: the group keys, in send order. ARGV: now (s), group cutoff, message cutoff, expiry,
# capacity, prefix, then a random prefix and a message head per group. Returns the sends over
# capacity.
_ONE_CALL = """
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

# The second step of a sharded send: add serialized messages to channel keys of one server.
# KEYS: channel keys (a key repeats when it gets several messages). ARGV: now (s), message
# cutoff, expiry, then a message and a capacity per key. Returns the messages over capacity.
_ADD = """
local now, cutoff, expiry = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local over = 0
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, cutoff)
  if redis.call('ZCARD', KEYS[i]) < tonumber(ARGV[3 + 2 * i]) then
    redis.call('ZADD', KEYS[i], string.format('%.6f', now + i * 1e-6), ARGV[2 + 2 * i])
    redis.call('EXPIRE', KEYS[i], expiry)
  else
    over = over + 1
  end
end
return over
"""


class RedisChannelLayer(BaseRedisChannelLayer):
    """channels_redis' layer plus ``group_send_many`` (see the module docstring).

    Hosts must be given by ``address`` for the extension's own clients; a layer on Sentinel
    hosts sends each group through ``group_send``.
    """

    extensions = [*BaseRedisChannelLayer.extensions, "group_send_many"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_clients: tuple[int | None, list[Any]] = (None, [])

    # --- the extension ------------------------------------------------------------------------

    async def group_send_many(self, sends: list[Send]) -> None:
        """``group_send`` of each (group, message), in a few round trips for all."""
        if not sends:
            return
        if self._addressed():
            await asyncio.to_thread(self.group_send_many_blocking, sends)
        else:
            await asyncio.gather(*(self.group_send(group, message) for group, message in sends))

    def group_send_many_blocking(self, sends: list[Send]) -> None:
        """``group_send_many`` from synchronous code (a Celery worker), on this thread: no event
        loop and no hand-off to one."""
        if not sends:
            return
        if not self._addressed():
            raise NotImplementedError("group_send_many_blocking needs hosts given by address")
        for group, _ in sends:
            assert self.require_valid_group_name(group), "Group name not valid"
        if self.ring_size == 1 and self._one_call_fits():
            over = self._send_one_call(sends)
        else:
            over = self._send_per_shard(sends)
        if over:  # as channels_redis reports it: a socket that stopped reading loses messages
            logger.info("%s channel(s) over capacity in a send to %d group(s)", over, len(sends))

    # --- the paths ----------------------------------------------------------------------------

    def _addressed(self) -> bool:
        return all("address" in host for host in self.hosts)

    def _one_call_fits(self) -> bool:
        """The one-call script packs messages itself: msgpack, unencrypted, one capacity."""
        from channels_redis.serializers import MsgPackSerializer

        serializer = self._serializer
        return (not self.channel_capacity and type(serializer) is MsgPackSerializer
                and not serializer.crypter and serializer.random_prefix_length > 0)

    def _clients(self) -> list[Any]:
        """One redis-py client per host, made again after a fork (a client's sockets are not
        shared between processes)."""
        pid, clients = self._sync_clients
        if pid != os.getpid():
            import redis

            clients = []
            for host in self.hosts:
                options = dict(host)
                clients.append(redis.Redis.from_url(options.pop("address"), **options))
            self._sync_clients = (os.getpid(), clients)
        return clients

    def _send_one_call(self, sends: list[Send]) -> int:
        import msgpack

        prefix_length = self._serializer.random_prefix_length
        keys, args = [], []
        for group, message in sends:
            body = {k: v for k, v in message.items() if k != "__asgi_channel__"}
            head = msgpack.packb({**body, "__asgi_channel__": None})  # the key last, its value nil
            keys.append(self._group_key(group))
            args += [random.getrandbits(8 * prefix_length).to_bytes(prefix_length, "big"),
                     head[:-1]]  # the nil value cut off
        now = time.time()
        header = [now, int(now) - self.group_expiry, int(now) - int(self.expiry), self.expiry, self.capacity,
                  self.prefix]
        return _run_script(self._clients()[0], _ONE_CALL, keys, header + args)

    def _send_per_shard(self, sends: list[Send]) -> int:
        clients = self._clients()
        now = time.time()
        # Step 1: each shard's groups read in one pipelined round trip, expired members dropped.
        by_shard: dict[int, list[int]] = {}
        for i, (group, _) in enumerate(sends):
            by_shard.setdefault(self.consistent_hash(group), []).append(i)
        members: dict[int, list[str]] = {}
        for shard, indexes in by_shard.items():
            pipe = clients[shard].pipeline(transaction=False)
            for i in indexes:
                key = self._group_key(sends[i][0])
                pipe.zremrangebyscore(key, 0, int(now) - self.group_expiry)
                pipe.zrange(key, 0, -1)
            replies = pipe.execute()
            for n, i in enumerate(indexes):
                members[i] = [m.decode() for m in replies[2 * n + 1]]
        # Step 2: per send, one message per channel key naming its channels (as group_send
        # does), added on the shard holding the key; one script call per shard.
        adds: dict[int, tuple[list[bytes], list[Any]]] = {}
        for i, (_, message) in enumerate(sends):
            by_key: dict[str, list[str]] = {}
            for channel in members[i]:
                by_key.setdefault(self.non_local_name(channel) if "!" in channel else channel, []).append(channel)
            for name, channels in by_key.items():
                keys, args = adds.setdefault(self.consistent_hash(name), ([], []))
                keys.append((self.prefix + name).encode())
                args += [self.serialize({**message, "__asgi_channel__": channels}), self.get_capacity(channels[0])]
        over = 0
        for shard, (keys, args) in adds.items():
            over += _run_script(clients[shard], _ADD, keys, [now, int(now) - int(self.expiry), self.expiry] + args)
        return over


_SHAS = {source: hashlib.sha1(source.encode()).hexdigest() for source in (_ONE_CALL, _ADD)}


def _run_script(client, source: str, keys: list, args: list) -> int:
    """EVALSHA, loading the script when the server lost its cache (restart, SCRIPT FLUSH)."""
    from redis.exceptions import NoScriptError

    try:
        return client.evalsha(_SHAS[source], len(keys), *keys, *args)
    except NoScriptError:
        return client.eval(source, len(keys), *keys, *args)
