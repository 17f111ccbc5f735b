"""pgvector helpers: literal encoding, binary-format cursors and per-dimension HNSW indexes."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
from django.db import connection

from ..models import Item

_vector_types: dict[int, tuple[object, object]] = {}


def _vector_type(raw):
    """pgvector's type info for this DB session (one catalogue query per connection)."""
    from psycopg.types import TypeInfo

    cached = _vector_types.get(id(raw))
    if cached is None or cached[0] is not raw:
        if len(_vector_types) > 64:  # connections come and go; forget the closed ones
            _vector_types.clear()
        cached = _vector_types[id(raw)] = (raw, TypeInfo.fetch(raw, "vector"))
    return cached[1]


@contextmanager
def binary_vector_cursor() -> Iterator:
    """A plain psycopg cursor on Django's connection that moves pgvector values in binary.

    Vectors travel as their float32 bytes, read into NumPy and written by binary COPY: the
    text form cost 0.3 ms per 384-d vector to parse under load, and repr() of the floats
    ~50 ms per 64 vectors to write. It runs in the caller's transaction like any query.
    """
    import psycopg

    connection.ensure_connection()
    raw = connection.connection
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        _register(cursor, _vector_type(raw))
        yield cursor


def fetch_binary(sql: str, params) -> list[tuple]:
    """The rows of a read in binary format (``binary_vector_cursor``): vectors as NumPy-ready
    values, and psycopg's C loaders for timestamps and arrays, where Django's cursor parses
    timestamps as text in Python (~15 us each, a visible share of a for-you request).
    """
    with binary_vector_cursor() as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


def fetch_binary_many(reads: list[tuple[str, list]]) -> list[list[tuple]]:
    """``fetch_binary`` of several independent reads, in one round trip: psycopg's pipeline
    mode sends them all with one Sync when the block ends, and each cursor keeps its result
    (fetching inside the block would ask for a flush first: a second round trip). For reads
    that only need the same earlier results (the fold's item embeddings and profiles both need
    only its events): under load each round trip waited 1-2 ms for the server to be scheduled.
    """
    import psycopg

    connection.ensure_connection()
    raw = connection.connection
    info = _vector_type(raw)
    cursors = [psycopg.Cursor(raw) for _ in reads]
    try:
        for cursor in cursors:
            _register(cursor, info)
        with connection.wrap_database_errors:
            with raw.pipeline():
                for cursor, (sql, params) in zip(cursors, reads):
                    cursor.execute(sql, params, binary=True)
            return [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


_adapter_classes: dict[int, tuple] = {}


def _register(cursor, info) -> None:
    """pgvector's ``register_vector_info`` for one cursor, with its dumper classes made once
    per type oid: it builds two classes per call, 4% of a for-you request's time."""
    from pgvector.psycopg.vector import VectorBinaryDumper, VectorBinaryLoader, VectorDumper, VectorLoader

    from pgvector import Vector

    classes = _adapter_classes.get(info.oid)
    if classes is None:
        classes = _adapter_classes[info.oid] = (type("VectorTextDumper", (VectorDumper,), {"oid": info.oid}),
                                                type("VectorBinDumper", (VectorBinaryDumper,), {"oid": info.oid}))
    adapters = cursor.adapters
    info.register(cursor)
    for dumper in classes:
        adapters.register_dumper(Vector, dumper)
        adapters.register_dumper("numpy.ndarray", dumper)
    adapters.register_loader(info.oid, VectorLoader)
    adapters.register_loader(info.oid, VectorBinaryLoader)


def index_name(dim: int) -> str:
    return f"recsys_item_embedding_hnsw_{dim}"


def ensure_hnsw_index(dim: int) -> None:
    """HNSW (cosine) index on ``embedding::vector(dim)``, built once per dimension.

    The column is dimensionless so the encoder can change; queries cast the same way
    (see ``cast_expr``) so the planner uses this index. Partial on the dimension so
    rows of another encoder never break the cast.
    """
    table = Item._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {index_name(dim)} ON {table} "
            f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
            f"WHERE vector_dims(embedding) = {dim}"
        )


def drop_hnsw_index(dim: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {index_name(dim)}")


def hnsw_index_exists(dim: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [index_name(dim)])
        return cursor.fetchone() is not None


def cast_expr(dim: int) -> str:
    return f"embedding::vector({dim})"


def to_literal(vec: np.ndarray | list[float]) -> str:
    return "[" + ",".join(f"{float(x):.6g}" for x in vec) + "]"


def normalise(vec: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 1e-12 else vec
