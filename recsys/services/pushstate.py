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

import logging
from typing import Any, NamedTuple

from django.core.cache import cache

logger = logging.getLogger(__name__)

# Message numbers stay JSON-safe integers (JavaScript's Number.MAX_SAFE_INTEGER): the widget
# compares them as numbers, and a counter found at or beyond this (a value written before
# client numbers were bounded, or a corrupted key) restarts from 0 instead of overflowing
# Redis' 64-bit INCR ("increment or decrement would overflow") on every change.
MAX_SEQ = 2 ** 53 - 1
# Every push-state key expires. A counter outlives the sockets that read it by far (a ping
# refreshes it every few minutes, each change renews it); when it does expire, a reconnecting
# page's ``seq`` lifts it back above anything the page saw (``push.seen_seq``).
SEQ_TTL = 7 * 24 * 3600

# Bump a message counter: restart it from 0 when it holds no integer in [0, MAX_SEQ), renew
# its ttl. A Lua function shared by the scripts below. ARGV-free: the bound and ttl are inlined.
_BUMP = f"""
local function bump(key)
  local cur = tonumber(redis.call('GET', key) or '0')
  if (not cur) or cur < 0 or cur >= {MAX_SEQ} then redis.call('SET', key, 0) end
  local seq = redis.call('INCR', key)
  redis.call('EXPIRE', key, {SEQ_TTL})
  return seq
end
"""

# Step 1 of a change (services.push.profiles_changed): number it (lists numbered before it are
# stale), then tell whether anyone is watching, whether this change opens a burst and, for a
# watched visitor, which slots their pages show (the registry's stored bytes), so that a push
# needs no further read before ranking.
# KEYS: seq, epoch, online, last, slots. ARGV: epoch ttl (s), now (ms), window (ms), burst ttl (s).
# Returns {online, leading, the change's number, the slot registry or ''}.
_ON_CHANGE = _BUMP + """
local seq = bump(KEYS[1])
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

# ``next_seqs``: bump one counter. KEYS: seq.
_NEXT_SEQ = _BUMP + "return bump(KEYS[1])"

# ``raise_seq``: lift a counter to at least ARGV[1] (a number a reconnecting page saw, already
# bounded by the caller), with its ttl. KEYS: seq.
_RAISE_SEQ = f"""
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('EXPIRE', KEYS[1], {SEQ_TTL})
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

    A call that fails (a key of the wrong type, say) gives its exception in its place in the
    result instead of failing the others: each call is one visitor's state, and one visitor's
    bad state must never cost another visitor their push.

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
        return pipe.execute(raise_on_error=False)

    results = send()
    if any(isinstance(r, NoScriptError) for r in results):
        client.script_load(source)
        results = send()
    return results


def _k(key: str) -> str:
    return cache.make_and_validate_key(key)


def next_seq(seq_key: str) -> int:
    """Increment and return a counter (created at 1, expiring ``SEQ_TTL`` after its last use)."""
    return next_seqs([seq_key])[0]


def next_seqs(seq_keys: list[str]) -> list[int]:
    """``next_seq`` of each key, in one round trip. A counter whose key cannot be bumped (a
    value of the wrong type) is logged and numbered 0 (its lists still go out; widgets take
    a resync's list whatever its number), never failing the other keys."""
    client = _redis()
    if client is not None:
        out = []
        for key, value in zip(seq_keys, _eval_many(client, _NEXT_SEQ, [([_k(key)], []) for key in seq_keys])):
            if isinstance(value, Exception):
                logger.error("recsys: message counter %s cannot be bumped (%s); numbering 0", key, value)
                value = 0
            out.append(int(value))
        return out
    out = []
    for key in seq_keys:
        current = cache.get(key)
        if not isinstance(current, int) or not 0 <= current < MAX_SEQ:
            cache.set(key, 0, SEQ_TTL)
        try:
            out.append(cache.incr(key))
        except ValueError:  # evicted between set and incr
            cache.set(key, 1, SEQ_TTL)
            out.append(1)
        cache.touch(key, SEQ_TTL)
    return out


def raise_seq(seq_key: str, seen: int) -> None:
    """Lift a counter to at least ``seen`` (0 <= seen <= MAX_SEQ, checked by the caller)."""
    seen = max(0, min(int(seen), MAX_SEQ))
    client = _redis()
    if client is not None:
        (result,) = _eval_many(client, _RAISE_SEQ, [([_k(seq_key)], [seen])])
        if isinstance(result, Exception):
            logger.error("recsys: message counter %s cannot be raised (%s)", seq_key, result)
        return
    current = cache.get(seq_key)
    if not isinstance(current, int) or current < seen:
        cache.set(seq_key, seen, SEQ_TTL)
    else:
        cache.touch(seq_key, SEQ_TTL)


def touch_seq(seq_key: str) -> None:
    """An open socket keeps its visitor's counter alive (a ping)."""
    cache.touch(seq_key, SEQ_TTL)


class Change(NamedTuple):
    """What ``on_change_many`` tells of one visitor's change."""

    online: bool  # a socket of theirs is open
    leading: bool  # no change in the last window: push now
    seq: int  # the change's number, now the visitor's epoch
    slots: Any  # the slot registry's value (None when absent), read only when online


def on_change_many(keys: list[tuple[str, str, str, str, str]], *, now_ms: int, window_ms: int, epoch_ttl: int,
                   burst_ttl: int) -> list[Change | None]:
    """Each visitor's profile changed, for their (seq, epoch, online, last, slots) keys, in one
    round trip: number the change into ``epoch`` and tell what ``Change`` holds. When online,
    ``last`` is set to ``now_ms``. None for a visitor whose state could not be read or
    written (logged): the others are answered all the same."""
    client = _redis()
    if client is not None:
        results = _eval_many(client, _ON_CHANGE, [([_k(k) for k in five], [epoch_ttl, now_ms, window_ms, burst_ttl])
                                                  for five in keys])
        out: list[Change | None] = []
        for five, result in zip(keys, results):
            try:
                if isinstance(result, Exception):
                    raise result
                online, lead, seq, slots = result
                out.append(Change(bool(online), bool(lead), int(seq), _serializer().loads(slots) if slots else None))
            except Exception as exc:  # noqa: BLE001 - one visitor's state, never the whole cycle
                logger.error("recsys: push state of %s unreadable (%s); skipping its push", five[0], exc)
                out.append(None)
        return out
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
        # A signature that cannot be compared counts as changed: a list pushed twice costs a
        # re-render, a list never pushed costs the visitor their update.
        return [True if isinstance(v, Exception) else bool(v)
                for v in _eval_many(client, _SWAP_SIGNATURE, [([_k(key)], [signature, ttl])
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
