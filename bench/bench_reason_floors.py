"""Reason floors: cosine similarities of the twelve-film test catalogue to a query and to a
sci-fi interest, with the real encoder, to show where ``min_similarity`` of search/hybrid,
content/query and content/interests sits between matching and non-matching films.

    python bench/bench_reason_floors.py

The films and their text are those of ``tests/conftest.py``'s ``embedded_catalogue`` (title and
genres, as the demo embeds them); the interest is the unit mean of Alien, Aliens and The
Terminator, the films a visitor viewed (what the interest model's centroid is for three views
of one taste).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.prodenv  # noqa: E402,F401

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

FILMS = [
    ("Toy Story", ["Animation", "Children's", "Comedy"], False),
    ("Aladdin", ["Animation", "Children's", "Musical"], False),
    ("The Lion King", ["Animation", "Children's", "Musical"], False),
    ("Pinocchio", ["Animation", "Children's"], False),
    ("Cinderella", ["Animation", "Children's", "Musical"], False),
    ("Alien", ["Horror", "Sci-Fi", "Thriller"], True),
    ("Aliens", ["Action", "Sci-Fi", "Thriller", "War"], True),
    ("The Terminator", ["Action", "Sci-Fi", "Thriller"], True),
    ("Star Wars", ["Action", "Adventure", "Sci-Fi", "War"], True),
    ("Blade Runner", ["Film-Noir", "Sci-Fi"], True),
    ("Casablanca", ["Drama", "Romance", "War"], False),
    ("Fargo", ["Crime", "Drama", "Thriller"], False),
]
QUERIES = ["space adventure aliens", "animated musical for children", "sci fi thriller"]


def unit(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


def main() -> None:
    from recsys.encoders import get_encoder
    from recsys.models import Item

    enc = get_encoder()
    texts = [Item(title=t, categories=c, text="", source="").embedding_text() for t, c, _ in FILMS]
    vecs = unit(np.asarray(enc.encode(texts), dtype=np.float32))
    print(f"encoder {enc.name}, dim {vecs.shape[1]}")
    for q in QUERIES:
        qv = unit(np.asarray(enc.encode([q]), dtype=np.float32))[0]
        sims = vecs @ qv
        print(f"\nquery {q!r}: cosine per film, best first")
        for i in np.argsort(-sims):
            print(f"  {sims[i]:.3f}  {FILMS[i][0]}")
    seen = [i for i, (t, _, _) in enumerate(FILMS) if t in ("Alien", "Aliens", "The Terminator")]
    centroid = unit(vecs[seen].mean(axis=0))
    sims = vecs @ centroid
    print("\ninterest (Alien, Aliens, The Terminator): cosine per unseen film, best first")
    for i in np.argsort(-sims):
        if i not in seen:
            print(f"  {sims[i]:.3f}  {FILMS[i][0]}  ({'sci-fi' if FILMS[i][2] else 'other'})")


if __name__ == "__main__":
    main()
