"""Phase timings of the realtime worker's cycles, for benchmarks (off unless asked).

When the environment variable LIVEREC_CYCLE_TRACE names a file, each realtime cycle
(``tasks.process_events``) and trailing push (``tasks.refresh_visitor``) appends one JSON line
to it: its phases in ms, the visitors it touched and what became of them, and the time the
process spent in the cyclic garbage collector meanwhile. ``bench/bench_freshness.py`` reads
them to show where a push's time goes under load. Off, a trace costs a clock read per phase.
"""
from __future__ import annotations

import gc
import json
import os
import time
from collections import Counter


class _GcClock:
    """Milliseconds this process spent in the cyclic garbage collector, per generation
    (a gc callback, installed only while tracing)."""

    def __init__(self):
        self.ms = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info.get("generation", 2)
            self.ms[generation] += (time.perf_counter() - self._started) * 1000
            self.runs[generation] += 1

    def snapshot(self) -> tuple[float, int]:
        return sum(self.ms), self.runs[2]


_gc_clock: _GcClock | None = None


def _clock() -> _GcClock:
    global _gc_clock
    if _gc_clock is None:
        _gc_clock = _GcClock()
        gc.callbacks.append(_gc_clock)
    return _gc_clock


_active: "CycleTrace | None" = None


class span:
    """``with span("rank"):`` adds the block's wall and CPU ms to the running cycle's trace as
    ``rank`` and ``rank_cpu`` (summed when the block repeats). Off (no trace running): a global
    read and two calls."""

    __slots__ = ("name", "t0", "c0")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> None:
        if _active is not None:
            self.t0, self.c0 = time.perf_counter(), time.thread_time()

    def __exit__(self, *exc) -> None:
        trace = _active
        if trace is not None:
            spans = trace.spans
            spans[self.name] = spans.get(self.name, 0.0) + (time.perf_counter() - self.t0) * 1000
            key = f"{self.name}_cpu"
            spans[key] = spans.get(key, 0.0) + (time.thread_time() - self.c0) * 1000


class CycleTrace:
    def __init__(self):
        global _active
        self.path = os.environ.get("LIVEREC_CYCLE_TRACE")
        self.spans: dict[str, float] = {}
        if self.path:
            _active = self
        self.t0 = self.last = time.perf_counter()
        self.started = time.time()
        self.cpu0 = self.last_cpu = time.thread_time()
        self.phases: dict[str, float] = {}
        self.gc_before = _clock().snapshot() if self.path else (0.0, 0)

    def mark(self, phase: str) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.phases[phase] = round((now - self.last) * 1000, 2)
        self.phases[f"{phase}_cpu"] = round((cpu - self.last_cpu) * 1000, 2)
        self.last, self.last_cpu = now, cpu

    def done(self, touched: int, latencies: list[float], outcomes: dict[str, str], task: str = "cycle",
             queued: list[float] = (), pushed: list[str] = ()) -> None:
        """``queued``: for each pushed visitor, ms from their event's receipt to this cycle's start;
        ``pushed``: those visitors, in the same order (a bench follows its own visitor's pushes)."""
        global _active
        if not self.path:
            return
        if _active is self:
            _active = None
        counts = Counter(outcomes.values())
        gc_ms, full = _clock().snapshot()
        line = json.dumps({"task": task, "pid": os.getpid(), "start": self.started, "touched": touched,
                           "latencies": [round(ms, 1) for ms in latencies], "outcomes": counts,
                           "queued": [round(ms, 1) for ms in queued], "pushed": list(pushed),
                           "total": round((time.perf_counter() - self.t0) * 1000, 2), **self.phases,
                           "cpu": round((time.thread_time() - self.cpu0) * 1000, 2),
                           **{f"span:{k}": round(v, 2) for k, v in self.spans.items()},
                           "gc": round(gc_ms - self.gc_before[0], 2), "gc_full": full - self.gc_before[1]})
        try:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        except OSError:  # a benchmark's trace file must never fail a realtime cycle
            return
