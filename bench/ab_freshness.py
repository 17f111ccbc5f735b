"""The freshness bench under load, this checkout against another revision, on equal data.

    python bench/ab_freshness.py --base REV [--pairs 3] [--stack DIR] [-- BENCH_FRESHNESS_ARGS]

Every run of ``bench_freshness.py`` grows the stack's database: its background visitors add
~13,000 events, and their views add item pairs to the association projection. One stack that
ran 12 loads in a row went from 1.15 to 2.35 million pairs (215 to 425 MB): the association
fold's upserts and the co-occurrence reads slow down as it grows, so a later run is slower
than an earlier one of the same code, and two codes run one after the other compare the
order they ran in as much as the code.

So this script builds the stack's data once (the demo catalogue, its ratings, a sequence model:
``bench_freshness.ensure_catalogue``), keeps a copy of the data directory, and restores that
copy before every run. It checks ``REV`` out in a temporary git worktree (sharing this
checkout's virtualenv), then runs the two codes in pairs in ABBA order (this checkout first in
odd pairs, the base first in even ones), each as
``python -m devstack run -- python bench/bench_freshness.py --load-only --samples 150 ...``
from its own tree, and prints every run's figures and the medians of each side. Runs one at a
time; nothing else should run meanwhile. Asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# bench_freshness's summary lines: the probe's figures under the load, the server-side ones,
# and the CPU per push.
_PROBE = re.compile(r"^load \(\d+/s\): POST -> pushed list .*?p50=\s*([\d.]+) ms .*?p99=\s*([\d.]+) ms", re.M)
_SERVER = re.compile(r"server side .*?p50=([\d.]+) ms p99=([\d.]+) ms", re.M)
_CPU = re.compile(r"CPU per push received .*\(sum ([\d.]+) ms\)", re.M)


def figures(output: str) -> dict[str, float]:
    """p50/p99 of the probe and of the server side, and CPU per push, from a run's output."""
    found: dict[str, float] = {}
    for pattern, names in ((_PROBE, ("p50", "p99")), (_SERVER, ("server p50", "server p99")), (_CPU, ("cpu/push",))):
        match = pattern.search(output)
        if match:
            found.update(zip(names, map(float, match.groups())))
    return found


def copy(src: Path, dst: Path) -> None:
    """``cp -a``: the embedded PostgreSQL runs as its own user and owns its files, which
    ``shutil.copytree`` would hand to the copying user (the server then cannot start)."""
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)


def run(tree: Path, stack: Path, snapshot: Path, bench_args: list[str], log: Path) -> dict[str, float]:
    shutil.rmtree(stack, ignore_errors=True)
    copy(snapshot, stack)
    env = {**os.environ, "LIVEREC_STACK_DIR": str(stack)}
    command = [sys.executable, "-m", "devstack", "run", "--", sys.executable, "bench/bench_freshness.py",
               "--load-only", "--samples", "150", *bench_args]
    with log.open("w") as out:
        subprocess.run(command, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=1800, check=False)
    got = figures(log.read_text(errors="replace"))
    if "p50" not in got:
        raise SystemExit(f"no figures in {log}: see its end")
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the git revision to compare against (e.g. HEAD~1, a commit)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--stack", default=None, help="the stack directory the runs use, built if missing; its data is restored from a copy "
                        "of its state at the start before every run (default: a temporary one)")
    parser.add_argument("bench_args", nargs="*", help="after --: passed to bench_freshness.py (e.g. --rt-workers 1)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="liverec-ab-"))
    stack = Path(args.stack).resolve() if args.stack else work / "stack"
    snapshot, base_tree = work / "snapshot", work / "base"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base_tree), args.base], cwd=ROOT, check=True)
    try:
        if (ROOT / ".venv").exists():
            (base_tree / ".venv").symlink_to(ROOT / ".venv")
        if not stack.exists():
            print(f"building the stack's data in {stack} (the first time: a few minutes) ...", flush=True)
            subprocess.run([sys.executable, "-m", "devstack", "run", "--", sys.executable, "-c",
                            "import bench.bench_freshness as b; b.ensure_catalogue()"],
                           cwd=ROOT, env={**os.environ, "LIVEREC_STACK_DIR": str(stack)}, check=True)
        copy(stack, snapshot)
        trees = {"this": ROOT, "base": base_tree}
        results: dict[str, list[dict[str, float]]] = {"this": [], "base": []}
        for pair in range(args.pairs):
            for side in (("this", "base") if pair % 2 == 0 else ("base", "this")):
                got = run(trees[side], stack, snapshot, args.bench_args, work / f"{side}-{pair + 1}.log")
                results[side].append(got)
                print(f"pair {pair + 1} {side:>4}: " + ", ".join(f"{k} {v:.1f}" for k, v in got.items()), flush=True)
        for side in ("this", "base"):
            keys = results[side][0].keys()
            print(f"median {side:>4}: " + ", ".join(f"{k} {statistics.median(r[k] for r in results[side] if k in r):.1f}"
                                                   for k in keys), flush=True)
        print(f"logs in {work}", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
        shutil.rmtree(snapshot, ignore_errors=True)
        if not args.stack:  # a temporary stack's data (~1 GB); the logs stay
            shutil.rmtree(stack, ignore_errors=True)


if __name__ == "__main__":
    main()
