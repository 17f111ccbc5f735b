"""Does this machine run vector code slowly right after an idle spell? (a property of the host)

    python bench/machine_wake.py

Times the same small NumPy and torch operations back to back and after sleeping 10, 50 and
350 ms (the idle freshness phase posts every 300-400 ms), on one thread. On a host whose
cores sleep deeply, a sum over 64 KB takes 6 us back to back and 0.5-2.7 ms after 50-350 ms
of sleep, and the sequence model's forward pass 1.9 ms against 28 ms, while a pure-Python
loop is only ~10% slower after the same sleep; on a host that wakes quickly the same sum
takes under 0.1 ms after any sleep. Under load the cores never
idle that long, so this weighs on the idle phase of ``bench_freshness`` only: compare idle
figures across machines with this in mind. Asserts nothing.
"""
from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

GAPS_MS = (0, 10, 50, 350)


def timed(fn, gap_s: float, n: int = 12) -> float:
    """Median wall microseconds of ``fn`` when each call follows ``gap_s`` of sleep."""
    out = []
    for _ in range(n):
        time.sleep(gap_s)
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(out)


def python_loop() -> int:
    s = 0
    for i in range(20_000):
        s += i
    return s


def main() -> None:
    torch.set_num_threads(1)
    vec = np.ones(64 * 1024 // 8)
    mat = np.random.rand(256, 256).astype(np.float32)
    tmat = torch.rand(256, 256)
    cases = {"numpy sum, 64 KB": vec.sum, "numpy 256x256 matmul": lambda: mat @ mat,
             "torch 256x256 matmul": lambda: tmat @ tmat, "pure-Python loop, 20k additions": python_loop}
    for fn in cases.values():
        for _ in range(30):
            fn()  # warm: code, caches, allocator
    print("median us per call after sleeping " + " / ".join(f"{g} ms" for g in GAPS_MS))
    for name, fn in cases.items():
        print(f"  {name:<34}" + " / ".join(f"{timed(fn, g / 1000):8.0f}" for g in GAPS_MS), flush=True)


if __name__ == "__main__":
    main()
