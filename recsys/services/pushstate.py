"""Per-visitor push state (sequence numbers, burst timers, list signatures) in few round trips.

Through the cache API a pushed list cost ~25 Redis round trips (Django's ``RedisCache.incr``
alone is ADD, EXISTS, INCR), and each took 0.5-2 ms while the 2 cores were busy: py-spy put
Redis reads and writes at a quarter of a realtime worker's time under bench_freshness's load.
With Django's Redis cache backend these helpers talk to the cache's own client, one round
trip per step (a Lua script where a step reads and writes). Keys are the cache's own key
names and integers are stored as Redis integers, as Django's serializer stores them, so the
values stay readable through the cache API and ``privacy.forget`` still erases them. With any
other cache backend the same steps run through the cache API.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from django.core.cache import cache

# Step 1 of a change (services.push.profiles_changed): number it (lists numbered before it are
# stale), then tell whether anyone is watching, whether this change opens a burst and, for a
# watched visitor, which slots their pages show (the registry's stored bytes), so that a push
# needs no further read before ranking.
# KEYS: seq, epoch, online, last, slots. ARGV: epoch ttl (s), now (ms), window (ms), burst ttl (s).
# Returns {online, leading, the change's number, the slot registry or ''}.
_ON_CHANGE = """
local seq = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], seq, 'EX', ARGV[1])
local online = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
if online <= 0 then return {0, 0, seq, ''} end
local last = tonumber(redis.call('GET', KEYS[4]) or '')
redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[4])
local lead = 0
if (not last) or (tonumber(ARGV[2]) - last >= tonumber(ARGV[3])) then lead = 1 end
return {1, lead, seq, redis.call('GET', KEYS[5]) or ''}
"""

# Store a list's signature; 1 when it differs from the one stored. KEYS: sig. ARGV: sig, ttl.
_SWAP_SIGNATURE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""

def _redis():
    """The cache's redis-py client, or None when the cache is not Django's Redis backend."""
    from django.core.cache import DEFAULT_CACHE_ALIAS, caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):
        return None
    return backend._cache.get_client(write=True)


def _eval_many(client, source: str, calls: list[tuple[list[str], list]]) -> list:
    """Run a Lua script once per (keys, args), pipelined in one round trip, by its sha.

    Not redis-py's ``Script`` in a pipeline: that asks SCRIPT EXISTS before every pipeline,
    a second round trip each time. A server that lost the script (restart, SCRIPT FLUSH)
    answers NOSCRIPT to every call of the pipeline, none of which ran (they all name the
    same sha), so loading it and sending the pipeline again runs each call once.
    """
    import hashlib

    from redis.exceptions import NoScriptError

    sha = hashlib.sha1(source.encode()).hexdigest()

    def send() -> list:
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return pipe.execute()

    try:
        return send()
    except NoScriptError:
        client.script_load(source)
        return send()


def _k(key: str) -> str:
    return cache.make_and_validate_key(key)


def next_seq(seq_key: str) -> int:
    """Increment and return a counter (created at 1, never expiring)."""
    return next_seqs([seq_key])[0]


def next_seqs(seq_keys: list[str]) -> list[int]:
    """``next_seq`` of each key, in one round trip."""
    client = _redis()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        for key in seq_keys:
            pipe.incr(_k(key))
        return [int(v) for v in pipe.execute()]
    out = []
    for key in seq_keys:
        cache.add(key, 0, None)
        try:
            out.append(cache.incr(key))
        except ValueError:  # evicted between add and incr
            cache.add(key, 0, None)
            out.append(cache.incr(key))
    return out


class Change(NamedTuple):
    """What ``on_change_many`` tells of one visitor's change."""

    online: bool  # a socket of theirs is open
    leading: bool  # no change in the last window: push now
    seq: int  # the change's number, now the visitor's epoch
    slots: Any  # the slot registry's value (None when absent), read only when online


def on_change_many(keys: list[tuple[str, str, str, str, str]], *, now_ms: int, window_ms: int, epoch_ttl: int,
                   burst_ttl: int) -> list[Change]:
    """Each visitor's profile changed, for their (seq, epoch, online, last, slots) keys, in one
    round trip: number the change into ``epoch`` and tell what ``Change`` holds. When online,
    ``last`` is set to ``now_ms``."""
    client = _redis()
    if client is not None:
        results = _eval_many(client, _ON_CHANGE, [([_k(k) for k in five], [epoch_ttl, now_ms, window_ms, burst_ttl])
                                                  for five in keys])
        return [Change(bool(online), bool(lead), int(seq), _serializer().loads(slots) if slots else None)
                for online, lead, seq, slots in results]
    out = []
    for seq_key, epoch_key, online_key, last_key, slots_key in keys:
        seq = next_seq(seq_key)
        cache.set(epoch_key, seq, epoch_ttl)
        if not cache.get(online_key):
            out.append(Change(False, False, seq, None))
            continue
        last = cache.get(last_key)
        cache.set(last_key, now_ms, burst_ttl)
        out.append(Change(True, last is None or now_ms - int(last) >= window_ms, seq, cache.get(slots_key)))
    return out


def _serializer():
    """Django's Redis backend's serializer (ints as Redis integers, the rest pickled)."""
    from django.core.cache import DEFAULT_CACHE_ALIAS, caches

    return caches[DEFAULT_CACHE_ALIAS]._cache._serializer


def swap_signature(sig_key: str, signature: str, ttl: int) -> bool:
    """Store ``signature``; True when it differs from the one stored before."""
    return swap_signatures([(sig_key, signature)], ttl)[0]


def swap_signatures(pairs: list[tuple[str, str]], ttl: int) -> list[bool]:
    """``swap_signature`` for several (key, signature) pairs, in one round trip."""
    client = _redis()
    if client is not None:
        return [bool(v) for v in _eval_many(client, _SWAP_SIGNATURE, [([_k(key)], [signature, ttl])
                                                                      for key, signature in pairs])]
    out = []
    for key, signature in pairs:
        out.append(cache.get(key) != signature)
        if out[-1]:
            cache.set(key, signature, ttl)
    return out


def last_ms(last_key: str) -> int | None:
    """When the visitor's last change was seen (ms since the epoch), if within its ttl."""
    value = cache.get(last_key)
    return None if value is None else int(value)


def set_last_many(last_keys: list[str], now_ms: int, ttl: int) -> None:
    set_values([(key, now_ms, ttl) for key in last_keys])


def set_values(entries: list[tuple[str, Any, int]], *, only_new: bool = False) -> list[bool]:
    """Set each (key, value, ttl in seconds) as ``cache.set`` would (``cache.add`` with
    ``only_new``: only where the key is absent), in one round trip with Django's Redis backend;
    True where a value was set. ``cache.set_many`` takes one ttl for all (the lists and the
    burst timers a push writes after its sends have two) and the cache API has no ``add_many``
    (a cycle claims a summary flag per visitor it touched: ``coalesce.claim_many``)."""
    if not entries:
        return []
    client = _redis()
    if client is None:
        if only_new:
            return [bool(cache.add(key, value, ttl)) for key, value, ttl in entries]
        for key, value, ttl in entries:
            cache.set(key, value, ttl)
        return [True] * len(entries)
    dumps = _serializer().dumps
    pipe = client.pipeline(transaction=False)
    for key, value, ttl in entries:
        pipe.set(_k(key), dumps(value), ex=ttl, nx=only_new)
    return [bool(ok) for ok in pipe.execute()]
