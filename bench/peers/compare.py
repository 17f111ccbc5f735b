"""One table: LiveRec's rows from recsys_evaluate JSON reports beside the peer libraries.

    python manage.py recsys_evaluate --events E.csv --items I.csv --protocol loo --json /tmp/loo.json
    python manage.py recsys_evaluate --events E.csv --items I.csv --protocol stream --json /tmp/stream.json
    python -m bench.peers.compare /tmp/loo.json /tmp/stream.json

The peer rows (RecBole 1.2.1 SASRec/GRU4Rec/BERT4Rec/LightGCN, implicit ALS/BPR) are the
figures of /work/shared/ANCHORS.md, measured on this machine on the same MovieLens-100K
split and protocols (full ranking, history excluded); they are NOT re-run by this script and
are labelled "ANCHORS" in the source column. The target is the default slot at >= 1.10 x the
best peer's NDCG@10 on both protocols.
"""
from __future__ import annotations

import json
import sys

# (model, loo HR@10, loo NDCG@10, stream HR@10, stream NDCG@10) from ANCHORS.md.
ANCHORS = [
    ("popularity", 0.0838, 0.0433, 0.0696, 0.0326),
    ("item-kNN (cosine, k=10)", 0.1241, 0.0625, 0.1474, 0.0737),
    ("ALS (implicit 0.7, 256 factors)", 0.1368, 0.0733, 0.1455, 0.0735),
    ("BPR (implicit)", 0.1294, 0.0651, 0.0696, 0.0327),
    ("LightGCN (RecBole 1.2.1)", 0.1453, 0.0801, 0.0725, 0.0342),
    ("BERT4Rec (RecBole)", 0.1368, 0.0681, 0.1450, 0.0733),
    ("GRU4Rec (RecBole, CE all positions)", 0.1951, 0.1054, 0.1982, 0.0982),
    ("SASRec (RecBole, 2x64, CE all positions)", 0.2163, 0.1068, 0.1950, 0.0992),
]


def table(loo: dict | None, stream: dict | None) -> str:
    k = (loo or stream or {}).get("k", 10)
    rows: dict[str, dict[str, float | None]] = {}
    for proto, report in (("loo", loo), ("stream", stream)):
        for r in (report or {}).get("rows", []):
            row = rows.setdefault(r["name"], {"source": "LiveRec run" if r["kind"] != "baseline" else "built-in"})
            row[f"{proto} HR"], row[f"{proto} NDCG"] = r[f"HR@{k}"], r[f"NDCG@{k}"]
    for name, lh, ln, sh, sn in ANCHORS:
        key = f"{name} [peer]" if name in rows else name
        rows[key] = {"source": "ANCHORS", "loo HR": lh, "loo NDCG": ln, "stream HR": sh, "stream NDCG": sn}
    best_loo = max(a[2] for a in ANCHORS)
    best_stream = max(a[4] for a in ANCHORS)
    cols = ["loo HR", "loo NDCG", "stream HR", "stream NDCG"]
    width = max(len(n) for n in rows) + 2
    out = [f"{'model':<{width}}{'source':<13}" + "".join(f"{c:>13}" for c in cols)]
    for name, row in rows.items():
        cells = "".join(f"{row[c]:>13.4f}" if row.get(c) is not None else f"{'-':>13}" for c in cols)
        out.append(f"{name:<{width}}{row['source']:<13}{cells}")
    for name, row in rows.items():
        if name.endswith("(default slot)"):
            for proto, best in (("loo", best_loo), ("stream", best_stream)):
                v = row.get(f"{proto} NDCG")
                if v is not None:
                    out.append(f"{name} {proto} NDCG@{k}: {v:.4f} = {v / best:.3f} x best peer ({best:.4f}); "
                               f"target >= 1.10 x")
    return "\n".join(out)


def main(argv: list[str]) -> None:
    loo = stream = None
    for path in argv:
        with open(path, encoding="utf-8") as fh:
            report = json.load(fh)
        if report["protocol"] == "loo":
            loo = report
        else:
            stream = report
    print(table(loo, stream))


if __name__ == "__main__":
    main(sys.argv[1:])
