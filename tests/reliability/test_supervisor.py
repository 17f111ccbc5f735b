"""The demo's supervisor (devstack): a crashed child is restarted with backoff and logged, the
others keep running; only a crash loop stops everything. Real child processes."""
from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from devstack.supervisor import CrashLoop, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
CRASHER = [sys.executable, "-c", "import sys; sys.exit(3)"]


def poll_until(sup: Supervisor, predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        sup.poll()
        assert time.monotonic() < deadline, f"not reached: {sup.status()}"
        time.sleep(0.02)


def test_a_killed_child_is_restarted_with_backoff_and_the_others_keep_running():
    lines: list[str] = []
    sup = Supervisor(dict(os.environ), backoff=0.3, log=lines.append)
    try:
        worker = sup.start("rt1", SLEEPER)
        web = sup.start("web", SLEEPER)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        poll_until(sup, lambda: sup.status()["rt1"].startswith("restarting"))
        assert sup.status()["web"] == "running" and web.poll() is None
        poll_until(sup, lambda: sup.status()["rt1"] == "running")
        assert sup.children["rt1"].proc.pid != worker.pid
        assert lines[0] == "devstack: rt1 exited with status -9; restarting in 0.3 s (restart 1 within 120 s)"
        assert lines[1].startswith("devstack: rt1 restarted (pid ")
        # The next crash of the same child waits twice as long.
        os.killpg(sup.children["rt1"].proc.pid, signal.SIGKILL)
        poll_until(sup, lambda: len(lines) >= 3)
        assert "restarting in 0.6 s (restart 2 within 120 s)" in lines[2]
    finally:
        sup.stop()
    assert all(proc.poll() is not None for _, proc in sup.procs)


def test_a_crash_loop_stops_the_supervisor():
    lines: list[str] = []
    sup = Supervisor(dict(os.environ), backoff=0.01, max_backoff=0.01, crash_loop=(3, 60.0), log=lines.append)
    try:
        sup.start("beat", CRASHER)
        web = sup.start("web", SLEEPER)
        with pytest.raises(CrashLoop, match="beat exited 4 times within 60 s .last status 3.; stopping"):
            poll_until(sup, lambda: False)
        assert web.poll() is None  # the caller stops everything (devstack does, in its finally)
    finally:
        sup.stop()
    assert web.poll() is not None
    assert sum("beat exited with status 3" in line for line in lines) == 3


def test_the_watch_thread_restarts_and_keeps_a_crash_loop_for_the_owner():
    sup = Supervisor(dict(os.environ), backoff=0.01, max_backoff=0.01, crash_loop=(2, 60.0), log=lambda _: None)
    try:
        sup.start("summ", CRASHER)
        sup.watch(interval=0.01)
        deadline = time.monotonic() + 30
        while sup.fatal is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert isinstance(sup.fatal, CrashLoop)
    finally:
        sup.stop()
