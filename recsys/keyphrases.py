"""Readable interests: keyphrases mined from the catalogue, scored against a vector.

KeyBERT's recipe without its dependency: candidate phrases (the catalogue's categories,
their co-occurring pairs, and frequent 1-3-word n-grams of titles and text) are embedded
once with the site's encoder; a vector (an interest centroid, a topic centroid) is then
labelled by the phrases most similar to it, chosen with Maximal Marginal Relevance so the
label names different facets ("animation, children's, musical") instead of three
paraphrases of one. Pure NumPy here; storage and caching in ``services.labels``.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

# Phrases must occur in at least this many items: rarer n-grams are mostly names.
MIN_DOC_FREQ = 3
# Cap on mined phrases. Measured: 2,000 phrases embed once in ~6 s on one thread, and
# scoring a centroid against the 2,000 x 384 matrix takes ~0.1 ms.
MAX_PHRASES = 2000
MMR_DIVERSITY = 0.3
# MMR may only choose among phrases this close to the best one (cosine): without the
# floor, diversity drags in phrases that are merely far from the first pick.
RELEVANCE_MARGIN = 0.12
_YEAR = re.compile(r"\(\s*\d{4}\s*\)|\b(19|20)\d{2}\b")
_WORD = re.compile(r"[^\W\d_][\w'\-]*", re.UNICODE)


def _stopwords() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | {"ii", "iii", "iv", "la", "le", "les", "el", "der", "die", "das", "film", "movie"}


def mine(docs: Iterable[tuple[str, Sequence[str]]], *, min_doc_freq: int = MIN_DOC_FREQ,
         max_phrases: int = MAX_PHRASES) -> list[tuple[str, int]]:
    """Candidate phrases with their document frequency from (text, categories) pairs.

    Every category is a candidate whatever its frequency (a site's own taxonomy is the
    best vocabulary it has); pairs of categories that co-occur on items and text n-grams
    (1-3 words, not starting or ending with a stop word) need ``min_doc_freq`` items.
    """
    stop = _stopwords()
    cats: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    grams: Counter[str] = Counter()
    for text, categories in docs:
        cs = sorted({c.strip().lower().replace("-", " ") for c in categories if c and c.strip()})
        cats.update(cs)
        pairs.update(f"{a} {b}" for i, a in enumerate(cs) for b in cs[i + 1:])
        words = [w.lower() for w in _WORD.findall(_YEAR.sub(" ", text or ""))]
        seen = set()
        for n in (1, 2, 3):
            for i in range(len(words) - n + 1):
                gram = words[i:i + n]
                if gram[0] in stop or gram[-1] in stop or len(gram[0]) < 3 and n == 1:
                    continue
                seen.add(" ".join(gram))
        grams.update(seen)
    out: dict[str, int] = dict(cats)
    for counter in (pairs, grams):
        for phrase, df in counter.most_common():
            if df < min_doc_freq or len(out) >= max_phrases:
                break
            out.setdefault(phrase, df)
    return sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))[:max_phrases]


def label(vector: np.ndarray, phrases: Sequence[str], matrix: np.ndarray, *, top: int = 3,
          candidates: int = 20, diversity: float = MMR_DIVERSITY) -> list[tuple[str, float]]:
    """The ``top`` phrases for ``vector`` (KeyBERT scoring + MMR); [(phrase, cosine)].

    ``matrix`` holds the unit phrase embeddings row by row, in ``phrases`` order.
    """
    if not len(phrases):
        return []
    v = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    if norm < 1e-12:
        return []
    sims = matrix @ (v / norm)
    pool = np.argsort(-sims)[:max(candidates, top)]
    pool = pool[sims[pool] >= sims[pool[0]] - RELEVANCE_MARGIN]
    chosen: list[int] = []
    words = {int(i): frozenset(_WORD.findall(phrases[int(i)].lower().replace("-", " "))) for i in pool}
    while pool.size and len(chosen) < top:
        # A phrase inside a chosen one, or holding one ("sci fi" and "sci fi thriller"), says
        # nothing new in a label: MMR's embedding distance alone let such pairs through.
        pool = np.array([i for i in pool if not any(words[int(i)] <= words[c] or words[c] <= words[int(i)]
                                                    for c in chosen)], dtype=int)
        if not pool.size:
            break
        if not chosen:
            pick = int(pool[0])
        else:
            redundancy = (matrix[pool] @ matrix[chosen].T).max(axis=1)
            mmr = (1 - diversity) * sims[pool] - diversity * redundancy
            pick = int(pool[int(np.argmax(mmr))])
        chosen.append(pick)
        pool = pool[pool != pick]
    return [(phrases[i], round(float(sims[i]), 4)) for i in chosen]


def label_text(scored: Sequence[tuple[str, float]]) -> str:
    return ", ".join(p for p, _ in scored)
