"""pgvector helpers: literal encoding and per-dimension HNSW indexes."""
from __future__ import annotations

import numpy as np
from django.db import connection

from ..models import Item


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
