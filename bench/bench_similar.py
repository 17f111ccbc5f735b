""""More like this" by text alone: the embedded text with and without release years.

    python -m devstack run -- python bench/bench_similar.py

Embeds the 1,682 MovieLens-100K films twice in this process (``title (year). genres``, what
the demo embedded before, and ``recsys.itemtext.build``'s ``title. genres``), then prints the
five nearest films of a few seeds both ways, and, over every film, how many of its ten text
neighbours share its release year and a genre-overlap figure (mean Jaccard of genre sets
between a film and its ten neighbours). The judge of relatedness here is co-rating: the
NDCG@10 of the text neighbours against each film's 20 most co-rated films (Jaccard of their
raters in the 100,000 ratings), a signal the text never saw.

Then the "similar" slot's fusion (``similar/items`` 1.0 + ``collaborative/co-occurrence`` 0.7,
each list max-normalised as ``ranking.fuse`` does) with behaviour learned from one half of
the raters and judged on the other half's co-rating: text alone, behaviour alone, fused. The
behaviour side is the raters' Jaccard, a stand-in for the association projection's session
pairs (the ratings carry no sessions).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.prodenv  # noqa: E402,F401

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

SEEDS = (135, 50, 1)  # 2001: A Space Odyssey, Star Wars, Toy Story


def main() -> None:
    from demo.catalogue import movielens
    from recsys import itemtext
    from recsys.encoders import get_encoder

    films = list(movielens.films())
    index = {f.ml_id: n for n, f in enumerate(films)}
    old = [f"{f.title} ({f.year}). {', '.join(f.genres)}" if f.year else f"{f.title}. {', '.join(f.genres)}" for f in films]
    new = [itemtext.build(SimpleNamespace(title=f"{f.title} ({f.year})" if f.year else f.title, text="",
                                          categories=f.genres, properties={}), ("title", "categories")) for f in films]
    encoder = get_encoder()
    raters: dict[int, set[int]] = {}
    for user, item, _, _ in movielens.ratings():
        raters.setdefault(item, set()).add(user)
    ids = [f.ml_id for f in films]
    sets = [raters.get(i, set()) for i in ids]
    m = np.zeros((len(ids), 943 + 1), dtype=np.float32)
    for r, s in enumerate(sets):
        m[r, list(s)] = 1.0
    inter = m @ m.T
    sizes = m.sum(axis=1)
    jacc = inter / np.maximum(sizes[:, None] + sizes[None, :] - inter, 1.0)
    np.fill_diagonal(jacc, 0.0)
    judged = np.argsort(-jacc, axis=1)[:, :20]
    texts_vecs = {}
    for name, texts in (("with years (before)", old), ("without dates (now)", new)):
        vecs = np.asarray(encoder.encode(texts, batch_size=64), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        texts_vecs[name] = vecs
        sims = vecs @ vecs.T
        np.fill_diagonal(sims, -1.0)
        top = np.argsort(-sims, axis=1)[:, :10]
        print(f"\n{name}: e.g. {texts[index[135]]!r}")
        for seed in SEEDS:
            print(f"  {films[index[seed]].title}: " + "; ".join(films[j].title for j in top[index[seed]][:5]))
        same_year = np.mean([[films[j].year == films[i].year for j in top[i]] for i in range(len(films))])
        genre = np.mean([[len(set(films[i].genres) & set(films[j].genres)) / max(1, len(set(films[i].genres) | set(films[j].genres)))
                          for j in top[i]] for i in range(len(films))])
        ndcg = []
        for i in range(len(films)):
            if sizes[i] < 5:
                continue
            rel = set(judged[i].tolist())
            dcg = sum(1 / math.log2(r + 2) for r, j in enumerate(top[i]) if j in rel)
            ndcg.append(dcg / sum(1 / math.log2(r + 2) for r in range(10)))
        print(f"  neighbours sharing the film's year: {same_year:.3f}; genre Jaccard: {genre:.3f}; "
              f"NDCG@10 against co-rating: {np.mean(ndcg):.4f} ({len(ndcg)} films with 5+ raters)")

    # Held-out halves of the raters: behaviour from odd user ids, the judge from even ones.
    def jaccard(cols):
        sub_m = m[:, cols]
        inter_h = sub_m @ sub_m.T
        size_h = sub_m.sum(axis=1)
        j = inter_h / np.maximum(size_h[:, None] + size_h[None, :] - inter_h, 1.0)
        np.fill_diagonal(j, 0.0)
        return j, size_h

    learn, _ = jaccard(np.arange(1, 944, 2))
    judge, judge_sizes = jaccard(np.arange(2, 944, 2))
    judge_top = np.argsort(-judge, axis=1)[:, :20]

    def ndcg_of(scores):
        top = np.argsort(-scores, axis=1)[:, :10]
        out = []
        for i in range(len(films)):
            if judge_sizes[i] < 5:
                continue
            rel = set(judge_top[i].tolist())
            out.append(sum(1 / math.log2(r + 2) for r, j in enumerate(top[i]) if j in rel)
                       / sum(1 / math.log2(r + 2) for r in range(10)))
        return float(np.mean(out)), top

    def normalised_top(scores, n=50):
        out = np.zeros_like(scores)
        idx = np.argsort(-scores, axis=1)[:, :n]
        for i in range(len(films)):
            vals = np.maximum(scores[i, idx[i]], 0.0)
            top = vals.max() if vals.size else 0.0
            if top > 0:
                out[i, idx[i]] = vals / top
        return out

    print("\nheld-out co-rating (behaviour from half the raters, judged on the other half), NDCG@10:")
    behaviour = normalised_top(learn)
    print(f"  co-occurrence alone: {ndcg_of(learn)[0]:.4f}")
    for name, vecs in texts_vecs.items():
        sims = vecs @ vecs.T
        np.fill_diagonal(sims, -1.0)
        text = normalised_top(sims)
        parts = [f"alone {ndcg_of(sims)[0]:.4f}"]
        for w_text, w_beh in ((1.0, 0.7), (0.5, 1.0), (0.3, 1.0), (0.1, 1.0)):
            fused_score, fused_top = ndcg_of(w_text * text + w_beh * behaviour)
            parts.append(f"text {w_text} + co-occurrence {w_beh}: {fused_score:.4f} "
                         f"(2001's top: {films[fused_top[index[135]][0]].title})")
        print(f"  text {name}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
