"""MovieLens-100K, read from the installed ``recbole==1.2.1`` wheel (its licence forbids
redistribution: never copy these files into the repository)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


def dataset_dir() -> Path:
    try:
        import recbole
    except ImportError as exc:
        raise RuntimeError("MovieLens-100K ships in the recbole wheel: pip install --no-deps recbole==1.2.1") from exc
    path = Path(recbole.__file__).parent / "dataset_example" / "ml-100k"
    if not (path / "ml-100k.item").exists():
        raise RuntimeError(f"ml-100k files not found under {path}")
    return path


@dataclass
class FilmRow:
    ml_id: int
    title: str
    year: int | None
    genres: list[str]


def films() -> Iterator[FilmRow]:
    with open(dataset_dir() / "ml-100k.item", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader)
        for row in reader:
            ml_id, title, year, genres = (row + ["", "", "", ""])[:4]
            yield FilmRow(int(ml_id), title.strip(), int(year) if year.strip().isdigit() else None, genres.split())


def ratings() -> Iterator[tuple[int, int, float, int]]:
    """(user_id, item_id, rating, unix timestamp) in file order."""
    with open(dataset_dir() / "ml-100k.inter", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader)
        for user, item, rating, ts in reader:
            yield int(user), int(item), float(rating), int(float(ts))
