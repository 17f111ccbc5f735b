"""bench.ab_freshness reads each run's figures off bench_freshness's own output."""
from __future__ import annotations

from bench.ab_freshness import figures

# A load run's output as bench_freshness prints it, between the stack's log lines.
RUN = """\
stack up on port 41711; realtime workers: 2; PUSH_DEBOUNCE_MS=250; 1682 embedded items; 2 CPUs; HTTP client aiohttp
    rt1 | [2026-11-29 13:14:02,118: WARNING/MainProcess] Loading weights: 100%
load (200/s): POST -> pushed list  n=150  p50=   56.5 ms  p90=   79.8 ms  p99=  135.5 ms  mean=  59.6 ms (no push: 0)
  of which the POST answered       n=150  p50=   12.1 ms  p90=   19.0 ms  p99=   27.7 ms  mean=  13.2 ms
  CPU per push received (51.1/s): realtime workers 16.0 ms, postgres 7.3 ms, asgi 5.6 ms, valkey 1.3 ms, load generator 1.1 ms, batch worker 0.7 ms, bench client 0.1 ms (sum 31.9 ms)
  every push of the phase, server side (event received -> list sent to the channel layer): n=3431 p50=41.3 ms p99=113.1 ms, of which waiting for a cycle to start p50=9.6 ms p99=44.7 ms
"""


def test_a_runs_figures_are_the_probes_the_server_sides_and_the_cpu_per_push():
    assert figures(RUN) == {"p50": 56.5, "p99": 135.5, "server p50": 41.3, "server p99": 113.1, "cpu/push": 31.9}


def test_the_load_phase_is_read_at_any_rate_and_not_the_posts_own_line():
    other = RUN.replace("load (200/s)", "load (300/s)")
    assert figures(other)["p50"] == 56.5  # not the "POST answered" line's 12.1


def test_a_run_that_printed_no_figures_gives_none():
    assert figures("Traceback (most recent call last):\n  ...\nOSError: no stack\n") == {}
