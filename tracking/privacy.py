"""Visitors in control: forget, export, retention, and what of the client is kept.

The only code that deletes events. Forget and export loop over one registry of per-visitor
stores (``register_store``): every table and cache key that is keyed by a visitor registers
one ``VisitorStore`` (tracking its own in ``TrackingConfig.ready``, recsys its stores in
``RecsysConfig.ready``), so a new store is forgotten and exported without a hand list.
Database stores are erased in one transaction (a forget completes everywhere or not at
all); cache stores after it commits, so an ingest racing the forget cannot re-cache state
read from the events being deleted.
Aggregates that mix many visitors (item co-occurrence, trending counts) are not
per-visitor rows: they are recomputed from the log (``manage.py recsys_replay`` for the
stored ones; trending is read from the log with a 10 s cache), after which no trace is left.
Retention (old events deleted for everyone) still goes to the "erased" subscribers of
``tracking.hooks``, which rebuild what they derived from the remaining events.
"""
from __future__ import annotations

import ipaddress
import logging
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Iterator, Sequence

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from . import bots, counters, hooks, partitions, preprocess, ratelimit
from .conf import settings
from .models import ERASING, Event, EventKey
from .ratelimit import client_ip

logger = logging.getLogger(__name__)

# Events per retention transaction: one DELETE of 5,000 rows by primary key plus the
# re-fold of their visitors stays well under a second, so the projection worker (which
# waits on the same cursor lock) is never held up for long.
RETENTION_BATCH = 5000
# Properties the server stamps on each event; never taken from the client.
IP_PROPERTY = "$ip"
UA_PROPERTY = "$ua"
_IP_STORAGE_CHOICES = ("none", "truncated", "full")


@contextmanager
def _erasing() -> Iterator[None]:
    token = ERASING.set(True)
    try:
        yield
    finally:
        ERASING.reset(token)


# --- the registry of per-visitor stores ------------------------------------------------

class VisitorStore:
    """Something kept per visitor. Subclass it and ``register_store`` an instance.

    ``name``: a short identifier; the forget report says ``<name>_deleted`` and the export
    carries the store's records under ``name``. ``kind``: ``"database"`` (erased in the
    forget's transaction) or ``"cache"`` (erased after it commits). ``exportable``: whether
    ``export`` has anything to say (cache state, counters and flags usually have not).
    """

    name: str = ""
    kind: str = "database"
    exportable: bool = False

    def forget(self, visitor_id: str) -> int:
        """Erase everything of ``visitor_id``; return how many rows or keys went. Idempotent."""
        raise NotImplementedError

    def export(self, visitor_id: str) -> list[dict[str, Any]]:
        """The visitor's records, JSON-serialisable (only called when ``exportable``)."""
        return []


_STORE_KINDS = ("database", "cache")
_stores: dict[str, VisitorStore] = {}


def register_store(store: VisitorStore) -> VisitorStore:
    """Add a per-visitor store to forget and export. Idempotent for the same store class."""
    if not isinstance(store, VisitorStore) or not store.name:
        raise TypeError(f"{store!r} is not a named tracking.privacy.VisitorStore")
    if store.kind not in _STORE_KINDS:
        raise ValueError(f"store {store.name!r} has kind {store.kind!r}; valid: {list(_STORE_KINDS)}")
    known = _stores.get(store.name)
    if known is not None and type(known) is not type(store):
        raise ValueError(f"a store named {store.name!r} is already registered ({type(known).__name__}); "
                         f"registered: {sorted(_stores)}")
    _stores[store.name] = store
    return store


def stores() -> list[VisitorStore]:
    """The registered stores: database ones first, in registration order."""
    return sorted(_stores.values(), key=lambda s: _STORE_KINDS.index(s.kind))


class EventStore(VisitorStore):
    """The event log itself."""

    name = "events"
    exportable = True

    def forget(self, visitor_id: str) -> int:
        with _erasing():
            return Event.objects.filter(visitor_id=visitor_id).delete()[0]

    def export(self, visitor_id: str) -> list[dict[str, Any]]:
        events = Event.objects.filter(visitor_id=visitor_id).order_by("occurred_at", "id")
        return [_event_dict(e) for e in events.iterator(chunk_size=2000)]


class IngestStateStore(VisitorStore):
    """What ingest keeps in the cache per visitor: the last event (session continuity), the
    sticky bot flag, the bot-rate and rate-limit counters. A new event after a forget finds no
    last event and no event in the log, so it starts a new session."""

    name = "ingest_state"
    kind = "cache"

    def forget(self, visitor_id: str) -> int:
        return counters.delete_keys(settings.RATE_LIMIT_CACHE,
                                    [preprocess.state_key(visitor_id), bots.flag_key(visitor_id)],
                                    [bots.rate_pattern(visitor_id), ratelimit.visitor_pattern(visitor_id)])


def _forget(visitor_ids: Sequence[str], user_ids: Sequence[str]) -> dict[str, Any]:
    report: dict[str, Any] = {"visitor_ids": sorted(visitor_ids), "user_ids": sorted(user_ids)}
    counts: dict[str, int] = {}
    with transaction.atomic():
        for store in stores():
            if store.kind == "database":
                counts[store.name] = sum(store.forget(v) for v in sorted(visitor_ids))
        if user_ids:  # rows of the user under no visitor id seen above (none are expected)
            with _erasing():
                counts["events"] = counts.get("events", 0) + Event.objects.filter(user_id__in=list(user_ids)).delete()[0]
    for store in stores():
        if store.kind == "cache":
            try:
                counts[store.name] = sum(store.forget(v) for v in sorted(visitor_ids))
            except Exception as exc:  # noqa: BLE001 - the cache is down: its keys expire on their own
                logger.warning("tracking: forget could not reach the cache for %s (%s)", store.name, exc)
                counts[store.name] = 0
    report.update({f"{name}_deleted": n for name, n in counts.items()})
    return report


def forget_visitor(visitor_id: str) -> dict[str, Any]:
    """Erase every event of the visitor and everything derived from them. Idempotent.

    Returns counts: ``events_deleted`` and what each subscriber erased (e.g. ``profiles_deleted``).
    """
    return _forget([visitor_id], [])


def forget_user(user_id: str) -> dict[str, Any]:
    """Erase a signed-in user: their events and every visitor id they were seen under."""
    visitor_ids = sorted(set(Event.objects.filter(user_id=user_id).values_list("visitor_id", flat=True)))
    return _forget(visitor_ids, [user_id])


def _event_dict(event: Event) -> dict[str, Any]:
    return {
        "id": str(event.uuid), "name": event.name, "visitor_id": event.visitor_id, "user_id": event.user_id,
        "item_id": event.item_id, "session_id": event.session_id, "properties": event.properties,
        "client_time": event.client_time.isoformat() if event.client_time else None,
        "occurred_at": event.occurred_at.isoformat(), "received_at": event.received_at.isoformat(),
        "source": event.source, "is_bot": event.is_bot, "is_repeat": event.is_repeat,
    }


def _export(visitor_ids: Sequence[str], user_ids: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"visitor_ids": sorted(visitor_ids), "user_ids": sorted(user_ids),
                           "exported_at": timezone.now().isoformat()}
    for store in stores():
        if store.exportable:
            out[store.name] = [record for v in sorted(visitor_ids) for record in store.export(v)]
    if "events" in out and len(visitor_ids) > 1:
        out["events"].sort(key=lambda e: e["occurred_at"])
    return out


def export_visitor(visitor_id: str) -> dict[str, Any]:
    """Everything kept about a visitor, JSON-serialisable: their events and derived state."""
    return _export([visitor_id], [])


def export_user(user_id: str) -> dict[str, Any]:
    visitor_ids = sorted(set(Event.objects.filter(user_id=user_id).values_list("visitor_id", flat=True)))
    return _export(visitor_ids, [user_id])


def apply_retention(*, now: datetime | None = None, days: int | None = None) -> dict[str, Any]:
    """Delete events older than ``LIVEREC_TRACKING['RETENTION_DAYS']`` (or ``days``): whole
    partitions of the log where they end before the cutoff, rows elsewhere; then the event ids
    received before it and, through the "expired" subscribers, what was recorded beside them
    (recsys prunes its served-list log).

    Each batch's visitors are handed to the "erased" subscribers in the same transaction,
    which rebuild their state from the events that remain (as a replay would).
    """
    days = settings.RETENTION_DAYS if days is None else days
    if days is None:
        return {"events_deleted": 0, "visitors": 0, "retention_days": None}
    if not isinstance(days, int) or days < 1:
        raise ValueError(f"LIVEREC_TRACKING['RETENTION_DAYS'] must be a positive whole number of days or None, not {days!r}")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, visitors, dropped = 0, set(), []
    # Whole partitions first: a partition ending before the cutoff holds only older events
    # (occurred_at <= received_at), and dropping it costs no row deletes, no dead tuples.
    for partition in partitions.partitions() if partitions.is_partitioned() else []:
        if partition.end > cutoff:
            break
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {partition.name}")
                count = cur.fetchone()[0]
            gone = partitions.drop_partition(partition)
            for start in range(0, len(gone), RETENTION_BATCH):
                hooks.publish_erased(gone[start:start + RETENTION_BATCH], reason="retention")
        deleted += count
        visitors.update(gone)
        dropped.append(partition.name)
    # Then row by row what remains older (the partition the cutoff falls in, the DEFAULT one).
    while True:
        with transaction.atomic():
            rows = list(Event.objects.filter(occurred_at__lt=cutoff).order_by()
                        .values_list("id", "visitor_id")[:RETENTION_BATCH])
            if not rows:
                break
            with _erasing():
                count, _ = Event.objects.filter(id__in=[r[0] for r in rows]).delete()
            batch_visitors = sorted({r[1] for r in rows})
            hooks.publish_erased(batch_visitors, reason="retention")
        deleted += count
        visitors.update(batch_visitors)
    keys_deleted = EventKey.objects.filter(received_at__lt=cutoff).delete()[0]
    report = hooks.publish_expired(cutoff)  # what subscribers recorded beside the events
    return {"events_deleted": deleted, "visitors": len(visitors), "retention_days": days,
            "partitions_dropped": dropped, "event_keys_deleted": keys_deleted, "cutoff": cutoff.isoformat(),
            **report}


# --- what of the client is kept ---------------------------------------------------------

def truncate_ip(ip: str, *, v4_prefix: int = 24, v6_prefix: int = 48) -> str:
    """The network part of an address ("203.0.113.77" -> "203.0.113.0"); "" if unparsable."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    prefix = v4_prefix if addr.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)


def client_properties(request: HttpRequest) -> dict[str, str]:
    """What the settings allow to keep about the client, as server-stamped properties."""
    mode = settings.IP_STORAGE
    if mode not in _IP_STORAGE_CHOICES:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LIVEREC_TRACKING['IP_STORAGE'] = {mode!r}; valid: {list(_IP_STORAGE_CHOICES)}")
    out: dict[str, str] = {}

    ip = client_ip(request)
    if mode == "full" and ip:
        out[IP_PROPERTY] = ip
    elif mode == "truncated" and ip:
        truncated = truncate_ip(ip, v4_prefix=settings.IP_V4_PREFIX, v6_prefix=settings.IP_V6_PREFIX)
        if truncated:
            out[IP_PROPERTY] = truncated
    if settings.STORE_USER_AGENT:
        ua = request.headers.get("User-Agent", "")[:512]
        if ua:
            out[UA_PROPERTY] = ua
    return out


def stamp_client_context(events: list[Any], request: HttpRequest) -> list[Any]:
    """Copies of ``events`` whose props carry only the server's view of the client.

    A client-sent ``$ip``/``$ua`` is dropped (it could claim anything); events that are
    not objects, or whose props are not objects, pass unchanged so validation rejects them.
    """
    stamp = client_properties(request)
    out = []
    for raw in events:
        if isinstance(raw, dict) and isinstance(raw.get("props", {}) or {}, dict):
            props = {k: v for k, v in (raw.get("props") or {}).items() if k not in (IP_PROPERTY, UA_PROPERTY)}
            props.update(stamp)
            raw = {**raw, "props": props}
        out.append(raw)
    return out
