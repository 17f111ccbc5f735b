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

from django.core.cache import cache

# Step 1 of a change (services.push.profiles_changed): number it (lists numbered before it are
# stale), then tell whether anyone is watching and whether this change opens a burst.
# KEYS: seq, epoch, online, last. ARGV: epoch ttl (s), now (ms), window (ms), burst ttl (s).
_ON_CHANGE = """
local seq = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], seq, 'EX', ARGV[1])
local online = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
if online <= 0 then return {0, 0} end
local last = tonumber(redis.call('GET', KEYS[4]) or '')
redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[4])
if (not last) or (tonumber(ARGV[2]) - last >= tonumber(ARGV[3])) then return {1, 1} end
return {1, 0}
"""

# Store a list's signature; 1 when it differs from the one stored. KEYS: sig. ARGV: sig, ttl.
_SWAP_SIGNATURE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""

_scripts: dict[tuple[int, str], object] = {}


def _redis():
    """The cache's redis-py client, or None when the cache is not Django's Redis backend."""
    from django.core.cache import DEFAULT_CACHE_ALIAS, caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):
        return None
    return backend._cache.get_client(write=True)


def _script(client, source: str):
    key = (id(client.connection_pool), source)
    script = _scripts.get(key)
    if script is None:
        script = _scripts[key] = client.register_script(source)
    return script


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


def on_change_many(keys: list[tuple[str, str, str, str]], *, now_ms: int, window_ms: int, epoch_ttl: int,
                   burst_ttl: int) -> list[tuple[bool, bool]]:
    """Each visitor's profile changed, for their (seq, epoch, online, last) keys, in one round
    trip: number the change into ``epoch``; return (online, leading) per visitor, where leading
    means no change in the last ``window_ms`` (push now). When online, ``last`` is set to
    ``now_ms``."""
    client = _redis()
    if client is not None:
        script, pipe = _script(client, _ON_CHANGE), client.pipeline(transaction=False)
        for four in keys:
            script(keys=[_k(k) for k in four], args=[epoch_ttl, now_ms, window_ms, burst_ttl], client=pipe)
        return [(bool(online), bool(lead)) for online, lead in pipe.execute()]
    out = []
    for seq_key, epoch_key, online_key, last_key in keys:
        cache.set(epoch_key, next_seq(seq_key), epoch_ttl)
        if not cache.get(online_key):
            out.append((False, False))
            continue
        last = cache.get(last_key)
        cache.set(last_key, now_ms, burst_ttl)
        out.append((True, last is None or now_ms - int(last) >= window_ms))
    return out


def swap_signature(sig_key: str, signature: str, ttl: int) -> bool:
    """Store ``signature``; True when it differs from the one stored before."""
    return swap_signatures([(sig_key, signature)], ttl)[0]


def swap_signatures(pairs: list[tuple[str, str]], ttl: int) -> list[bool]:
    """``swap_signature`` for several (key, signature) pairs, in one round trip."""
    client = _redis()
    if client is not None:
        script, pipe = _script(client, _SWAP_SIGNATURE), client.pipeline(transaction=False)
        for key, signature in pairs:
            script(keys=[_k(key)], args=[signature, ttl], client=pipe)
        return [bool(v) for v in pipe.execute()]
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
    cache.set_many({key: now_ms for key in last_keys}, ttl)
