"""Write MovieLens-100K (from the installed recbole wheel) as EVENTS.csv and ITEMS.csv.

    python -m bench.peers.movielens_csv bench/out/ml100k
    python manage.py recsys_evaluate --events bench/out/ml100k/EVENTS.csv --items bench/out/ml100k/ITEMS.csv --protocol loo

The files stay outside the repository: the MovieLens licence forbids redistribution.
Every rating is an interaction (event "rated", the stars as value), in file order, so
timestamp ties keep the file's order, as the reference protocols do (docs/evaluation.md). Item text is what the
demo's FilmAdapter embeds: "Title (year)" as title, genres as text and categories.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path


def write(out_dir: str | Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from demo.catalogue import movielens

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items, events = out / "ITEMS.csv", out / "EVENTS.csv"
    with open(items, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "title", "text", "categories"])
        for f in movielens.films():
            title = f"{f.title} ({f.year})" if f.year else f.title
            w.writerow([f.ml_id, title, " ".join(f.genres), "|".join(f.genres)])
    with open(events, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "event", "timestamp", "value"])
        for user, item, rating, ts in movielens.ratings():
            w.writerow([user, item, "rated", ts, rating])
    return events, items


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.peers.movielens_csv OUT_DIR")
    for path in write(sys.argv[1]):
        print(path)
