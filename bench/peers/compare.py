"""One table: LiveRec's rows from recsys_evaluate JSON reports beside the peers measured by
``bench.peers.run`` on the same split and protocol (no training here: it reads their results).

    python manage.py recsys_evaluate --events E.csv --items I.csv --protocol loo --json bench/out/loo.json
    python manage.py recsys_evaluate --events E.csv --items I.csv --protocol stream --json bench/out/stream.json
    .venv-peers/bin/python -m bench.peers.run --events E.csv --items I.csv --out bench/out/peers.json
    python -m bench.peers.compare bench/out/loo.json bench/out/stream.json --peers bench/out/peers.json

Sources: "measured" (bench.peers.run, tuned on the validation split, scored on test), "LiveRec
run" / "built-in" (the recsys_evaluate reports), and with ``--anchors`` the reference figures
listed below and in docs/evaluation.md ("ANCHORS"), which are not re-run. The target line (the default slot at
>= 1.10 x the best peer's NDCG@10, per protocol) uses the measured peers; only when a protocol
has no measured peer does it fall back to ANCHORS, and says so.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PROTOCOLS = ("loo", "stream")
TARGET = 1.10

# (model, loo HR@10, loo NDCG@10, stream HR@10, stream NDCG@10): peers' reference figures on the same
# protocols (docs/evaluation.md), shown beside the measured ones.
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


def measured_peers(results: dict, data: str | None = None) -> tuple[str | None, dict]:
    """The peers' section of a ``bench.peers.run`` results file: the one for ``data`` (a data
    fingerprint) or else the most recently updated one."""
    if not results:
        return None, {}
    if data is None:
        data = max(results, key=lambda fp: results[fp].get("meta", {}).get("updated", 0))
    return data, results.get(data, {})


def table(loo: dict | None, stream: dict | None, peers: dict | None = None, anchors: bool = False) -> str:
    reports = {"loo": loo, "stream": stream}
    k = next((r["k"] for r in reports.values() if r), (peers or {}).get("meta", {}).get("k", 10))
    metric_names = [f"HR@{k}", f"NDCG@{k}", f"MRR@{k}"]
    rows: dict[str, dict] = {}
    notes: list[str] = []

    for proto in PROTOCOLS:
        for name, section in (peers or {}).get(proto, {}).items():
            test = section.get("test")
            if not test:
                continue
            # "popularity" is LiveRec's own baseline run through the harness (a check), not a peer.
            row = rows.setdefault(section.get("label", name), {"source": "measured", "peer": name != "popularity"})
            for m in metric_names:
                row[f"{proto} {m}"] = test["metrics"].get(m)
            chosen = test["chosen"]
            params = ", ".join(f"{p}={v}" for p, v in chosen["params"].items())
            # ALS's iterations are a grid parameter; the others' epochs come from early stopping.
            epochs = "" if name in ("als", "popularity") else f", {chosen['epochs']} epochs"
            notes.append(f"  {proto:<6} {section.get('label', name)}: {params or 'no parameters'}{epochs}; validation NDCG@{k} "
                         f"{chosen['validation'][f'NDCG@{k}']:.4f}; grid of {len(section['grid'])}; "
                         f"test run {test['seconds']:.0f} s")
    for proto, report in reports.items():
        for r in (report or {}).get("rows", []):
            key = r["name"] if r["name"] not in rows else f"{r['name']} [LiveRec]"
            row = rows.setdefault(key, {"source": "built-in" if r["kind"] == "baseline" else "LiveRec run"})
            for m in metric_names:
                row[f"{proto} {m}"] = r.get(m)
            row["default"] = r["kind"] == "slot" and r["name"].endswith("(default slot)")
    if anchors:
        for name, lh, ln, sh, sn in ANCHORS:
            rows[f"{name} [ANCHORS]"] = {"source": "ANCHORS", f"loo HR@{k}": lh, f"loo NDCG@{k}": ln,
                                         f"stream HR@{k}": sh, f"stream NDCG@{k}": sn}

    cols = [f"{p} {m}" for p in PROTOCOLS for m in metric_names]
    width = max([len(n) for n in rows] + [10]) + 2
    out = [f"{'model':<{width}}{'source':<13}" + "".join(f"{c:>17}" for c in cols)]
    for name, row in rows.items():
        cells = "".join(f"{row[c]:>17.4f}" if row.get(c) is not None else f"{'-':>17}" for c in cols)
        out.append(f"{name:<{width}}{row['source']:<13}{cells}")
    if notes:
        out += ["", "peers' settings (chosen on the validation split):", *notes]

    for proto in PROTOCOLS:
        col = f"{proto} NDCG@{k}"
        peer_values = [(r[col], n) for n, r in rows.items() if r.get("peer") and r.get(col) is not None]
        source = "measured"
        if not peer_values:
            peer_values = [(a[2] if proto == "loo" else a[4], f"{a[0]} [ANCHORS]") for a in ANCHORS]
            source = "ANCHORS (no measured peer on this protocol)"
        best, best_name = max(peer_values)
        for name, row in rows.items():
            v = row.get(col)
            if row.get("default") and v is not None:
                verdict = "met" if v >= TARGET * best else "not met"
                out.append(f"{name} {proto} NDCG@{k}: {v:.4f} = {v / best:.3f} x best peer "
                           f"({best_name}, {best:.4f}, {source}); target >= {TARGET:.2f} x: {verdict}")
    return "\n".join(out)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reports", nargs="*", help="recsys_evaluate --json reports (loo and/or stream)")
    ap.add_argument("--peers", default="bench/out/peers.json", help="bench.peers.run results")
    ap.add_argument("--data", default=None, help="data fingerprint in the peers file (default: latest)")
    ap.add_argument("--anchors", action="store_true", help="add the peers' reference figures (docs/evaluation.md) as rows")
    args = ap.parse_args(argv)
    loo = stream = None
    for path in args.reports:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
        if report["protocol"] == "loo":
            loo = report
        else:
            stream = report
    results = json.loads(Path(args.peers).read_text()) if Path(args.peers).exists() else {}
    if not results:
        print(f"no measured peers in {args.peers}: run python -m bench.peers.run (make peers)", file=sys.stderr)
    _, peers = measured_peers(results, args.data)
    print(table(loo, stream, peers, anchors=args.anchors))


if __name__ == "__main__":
    main(sys.argv[1:])
