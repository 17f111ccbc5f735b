"""The event log's time partitions: PostgreSQL declarative range partitioning on ``received_at``.

``received_at`` is the server's clock at append, so each append lands in the newest partition
and a partition, once its range has passed, only ever shrinks (forget). ``occurred_at`` (the
client's corrected time) is never later than ``received_at``, so every event of a partition
ending before a retention cutoff is older than the cutoff: retention drops whole partitions.

Ranges follow ``LIVEREC_TRACKING['EVENT_PARTITION_INTERVAL']`` ("month", "week" or "day", in
UTC). ``ensure_partitions`` (the periodic ``tracking.tasks.ensure_event_partitions``) creates
them ``EVENT_PARTITIONS_AHEAD`` intervals ahead. A DEFAULT partition takes any row no partition
covers (the task not run for months, a clock far off), so an append never fails for want of a
partition; creating a partition moves the default partition's rows of its range into it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import connection, transaction
from django.utils import timezone

from .conf import settings

TABLE = "tracking_event"
DEFAULT_PARTITION = f"{TABLE}_default"
INTERVALS = ("month", "week", "day")
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime
    end: datetime


def interval() -> str:
    value = settings.EVENT_PARTITION_INTERVAL
    if value not in INTERVALS:
        raise ValueError(f"LIVEREC_TRACKING['EVENT_PARTITION_INTERVAL'] must be one of {list(INTERVALS)}, not {value!r}")
    return value


def bounds(moment: datetime, unit: str | None = None) -> tuple[datetime, datetime]:
    """The [start, end) in UTC of the interval holding ``moment``."""
    unit = unit or interval()
    t = moment.astimezone(dt_timezone.utc)
    if unit == "month":
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    elif unit == "week":  # ISO weeks, Monday first
        start = (t - timedelta(days=t.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=7)
    else:
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
    return start, end


def is_partitioned() -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass)", [TABLE])
        return cur.fetchone()[0]


def partitions() -> list[Partition]:
    """The range partitions, oldest first (the DEFAULT partition is not listed)."""
    with connection.cursor() as cur:
        cur.execute("SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass", [TABLE])
        rows = cur.fetchall()
    out = []
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match:
            out.append(Partition(name, _parse(match.group(1)), _parse(match.group(2))))
    return sorted(out, key=lambda p: p.start)


def _parse(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace(" ", "T"))
    return value if value.tzinfo else value.replace(tzinfo=dt_timezone.utc)


def ensure_partitions(now: datetime | None = None, ahead: int | None = None) -> list[str]:
    """Create the partitions of the current interval and ``ahead`` (default
    ``EVENT_PARTITIONS_AHEAD``) intervals after it; returns the names created."""
    now = now or timezone.now()
    ahead = settings.EVENT_PARTITIONS_AHEAD if ahead is None else ahead
    start, end = bounds(now)
    for _ in range(ahead):
        end = bounds(end)[1]
    return ensure_range(start, end)


def ensure_range(start: datetime, end: datetime) -> list[str]:
    """The partitions of every interval meeting [start, end), where none covers it yet
    (clipped to the gaps between existing ones, so a changed interval setting never overlaps
    old partitions). Returns the names created."""
    created = []
    with transaction.atomic():
        with connection.cursor() as cur:
            # One creator at a time; appends go on (SHARE UPDATE EXCLUSIVE lets them through).
            cur.execute(f"LOCK TABLE {TABLE} IN SHARE UPDATE EXCLUSIVE MODE")
        existing = partitions()
        moment = start
        while moment < end:
            lo, hi = bounds(moment)
            for gap_start, gap_end in _gaps(lo, hi, existing):
                created.append(_create(gap_start, gap_end))
            moment = hi
    return created


def _gaps(start: datetime, end: datetime, existing: list[Partition]) -> list[tuple[datetime, datetime]]:
    gaps, cursor = [], start
    for p in existing:
        if p.end <= cursor or p.start >= end:
            continue
        if p.start > cursor:
            gaps.append((cursor, p.start))
        cursor = max(cursor, p.end)
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def _create(start: datetime, end: datetime) -> str:
    name = f"{TABLE}_p{start:%Y%m%d}" + ("" if bounds(start)[0:2] == (start, end) else f"_{end:%Y%m%d%H}")
    lo, hi = start.isoformat(), end.isoformat()
    with connection.cursor() as cur:
        cur.execute(f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} WHERE received_at >= %s AND received_at < %s)",
                    [lo, hi])
        if not cur.fetchone()[0]:
            cur.execute(f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM ('{lo}') TO ('{hi}')")
            return name
        # Rows of the range wait in the DEFAULT partition: move them into a table of their
        # own, then attach it (attaching checks the default holds none of the range any more).
        cur.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cur.execute(f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE received_at >= %s AND received_at < %s "
                    f"RETURNING *) INSERT INTO {name} SELECT * FROM moved", [lo, hi])
        cur.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{lo}') TO ('{hi}')")
    return name


def create_default_partition() -> None:
    with connection.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")


def drop_partition(partition: Partition) -> list[str]:
    """Detach and drop one partition inside the caller's transaction; returns the visitors
    whose events it held (their projections must follow)."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT DISTINCT visitor_id FROM {partition.name}")
        visitors = sorted(row[0] for row in cur.fetchall())
        cur.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {partition.name}")
        cur.execute(f"DROP TABLE {partition.name}")
    return visitors
