"""Run several processes as one: output prefixed, crashed children restarted with backoff,
all stopped together, no orphans.

A child that exits is started again after a backoff (``backoff`` seconds, doubled on each
further exit up to ``max_backoff``, back to ``backoff`` once a run lasted ``stable_after``
seconds). Only a crash loop stops everything: more than ``crash_loop[0]`` restarts of one
child within ``crash_loop[1]`` seconds raises :class:`CrashLoop` from :meth:`poll`.
Restarts happen in :meth:`poll` (the demo's main loop calls it) or in the thread
:meth:`watch` starts (the tests' stack); a supervisor nobody polls never restarts anything,
which the fault tests that kill a process on purpose rely on.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable


class CrashLoop(RuntimeError):
    """One child kept exiting: restarting it again would only hide the fault."""


@dataclass
class Child:
    name: str
    cmd: list[str]
    restart: bool
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff: float = 0.0
    next_start: float | None = None  # set while waiting out a backoff
    restarts: deque = field(default_factory=deque)  # monotonic times of recent restarts

    def state(self) -> str:
        if self.proc is not None and self.proc.poll() is None:
            return "running"
        if self.next_start is not None:
            return f"restarting in {max(0.0, self.next_start - time.monotonic()):.1f} s"
        return f"exited {self.proc.returncode if self.proc else '?'}"


def _print(line: str) -> None:
    print(line, flush=True)


class Supervisor:
    """Starts children in their own process groups and kills whole groups on stop.

    Process groups matter: Celery's prefork pool and uvicorn's workers are
    grandchildren, which a plain ``terminate()`` of the child would orphan.
    """

    def __init__(self, env: dict[str, str], *, backoff: float = 1.0, max_backoff: float = 30.0,
                 stable_after: float = 60.0, crash_loop: tuple[int, float] = (5, 120.0),
                 log: Callable[[str], None] = _print):
        self.env = env
        self.backoff, self.max_backoff, self.stable_after = backoff, max_backoff, stable_after
        self.crash_loop = crash_loop
        self.log = log
        self.children: dict[str, Child] = {}
        self.fatal: CrashLoop | None = None  # what stopped the watch thread, if anything
        self._lock = threading.RLock()
        self._stopping = False
        self._watcher: threading.Thread | None = None

    @property
    def procs(self) -> list[tuple[str, subprocess.Popen]]:
        return [(c.name, c.proc) for c in self.children.values() if c.proc is not None]

    def start(self, name: str, cmd: list[str], *, restart: bool = True) -> subprocess.Popen:
        """Start ``cmd`` as child ``name``; ``restart=False``: an exit is final (see ``first_exited``)."""
        with self._lock:
            child = self.children.get(name) or Child(name, cmd, restart, backoff=self.backoff)
            child.cmd, child.restart = cmd, restart
            self.children[name] = child
            self._spawn(child)
            return child.proc

    def _spawn(self, child: Child) -> None:
        if child.proc is not None:  # what the exited child left in its group (a pool child)
            try:
                os.killpg(child.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        proc = subprocess.Popen(child.cmd, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                text=True, bufsize=1)
        threading.Thread(target=self._pump, args=(child.name, proc), daemon=True).start()
        child.proc, child.started_at, child.next_start = proc, time.monotonic(), None

    @staticmethod
    def _pump(name: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            sys.stdout.write(f"{name:>7} | {line}")
            sys.stdout.flush()

    def poll(self) -> None:
        """Restart what exited (after its backoff); raise :class:`CrashLoop` on a crash loop."""
        with self._lock:
            if self._stopping:
                return
            now = time.monotonic()
            for child in self.children.values():
                if not child.restart or child.proc is None or child.proc.poll() is None:
                    continue
                if child.next_start is None:
                    self._schedule(child, now)
                elif now >= child.next_start:
                    self._spawn(child)
                    self.log(f"devstack: {child.name} restarted (pid {child.proc.pid})")

    def _schedule(self, child: Child, now: float) -> None:
        limit, window = self.crash_loop
        while child.restarts and now - child.restarts[0] > window:
            child.restarts.popleft()
        if len(child.restarts) >= limit:
            raise CrashLoop(f"{child.name} exited {len(child.restarts) + 1} times within {window:.0f} s "
                            f"(last status {child.proc.returncode}); stopping")
        if now - child.started_at >= self.stable_after:
            child.backoff = self.backoff
        child.restarts.append(now)
        child.next_start = now + child.backoff
        self.log(f"devstack: {child.name} exited with status {child.proc.returncode}; restarting in "
                 f"{child.backoff:.1f} s (restart {len(child.restarts)} within {window:.0f} s)")
        child.backoff = min(child.backoff * 2, self.max_backoff)

    def watch(self, interval: float = 0.2) -> None:
        """Poll from a daemon thread until ``stop``; a crash loop is kept in ``fatal``."""
        def run() -> None:
            while not self._stopping:
                try:
                    self.poll()
                except CrashLoop as exc:
                    self.fatal = exc
                    self.log(f"devstack: {exc}")
                    return
                time.sleep(interval)

        self._watcher = threading.Thread(target=run, name="supervisor-watch", daemon=True)
        self._watcher.start()

    def status(self) -> dict[str, str]:
        with self._lock:
            return {name: child.state() for name, child in self.children.items()}

    def first_exited(self) -> tuple[str, int] | None:
        """A child that exited and will not be restarted (``restart=False``, or nobody polls)."""
        for child in self.children.values():
            final = not child.restart or self._watcher is None
            if final and child.proc is not None and child.proc.poll() is not None:
                return child.name, child.proc.returncode
        return None

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stopping = True
            procs = [c.proc for c in self.children.values() if c.proc is not None]
        for proc in reversed(procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # the group may hold grandchildren even after the child exited
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
