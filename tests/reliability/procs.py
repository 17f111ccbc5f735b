"""Process control for fault tests: own workers, beat, ASGI servers, Valkey and PostgreSQL.

Each fault test starts the pieces it breaks, so the session's services stay untouched.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from devstack.__main__ import THREAD_ENV
from devstack.supervisor import Supervisor
from devstack.stack import ROOT, database_url, free_port


def env(**extra: str) -> dict[str, str]:
    """A child environment on the test database (override DATABASE_URL/REDIS_URL as needed)."""
    from django.db import connection

    out = dict(os.environ)
    out.update(THREAD_ENV)
    out["DATABASE_URL"] = database_url(connection.settings_dict)
    out["PYTHONPATH"] = str(ROOT)
    out["DJANGO_SETTINGS_MODULE"] = "demo.settings"
    out.update(extra)
    return out


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "demo", *args]


def start_worker(sup: Supervisor, name: str, queue: str = "liverec.realtime") -> subprocess.Popen:
    return sup.start(name, celery("worker", "-Q", queue, "-P", "solo", "-n", f"{name}@%h", "-l", "warning"))


def start_beat(sup: Supervisor, schedule_dir: Path) -> subprocess.Popen:
    return sup.start("beat", celery("beat", "-l", "warning", "-s", str(schedule_dir / "celerybeat-schedule")))


def start_web(sup: Supervisor, port: int, name: str = "web") -> subprocess.Popen:
    proc = sup.start(name, [sys.executable, "-m", "uvicorn", "demo.asgi:application", "--host", "127.0.0.1",
                            "--port", str(port), "--log-level", "warning"])
    wait_port(port, proc)
    return proc


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port}")
            time.sleep(0.2)


def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the whole process group (uvicorn/celery children included) and reap it."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    proc.wait(30)


from devstack.stack import wait_for  # noqa: E402  (re-exported for the fault tests)

__all__ = ["env", "celery", "start_worker", "start_beat", "start_web", "wait_port", "kill", "wait_for",
           "free_port", "Supervisor"]


def append_search_backlog(prefix: str, visitors: int, per_visitor: int) -> int:
    """``visitors`` x ``per_visitor`` searched events appended in the test process (no fold is
    enqueued when the caller has emptied the appended hook): a backlog a worker folds in several
    batches. Returns how many were accepted."""
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from tracking import services

    now = timezone.now()
    accepted = 0
    for v in range(visitors):
        batch = [{"id": str(uuid.uuid4()), "name": "searched",
                  "ts": int((now - timedelta(seconds=3 * (per_visitor - j))).timestamp() * 1000),
                  "props": {"query": f"films about {['space', 'ships', 'love', 'crime', 'toys'][j % 5]} no {v}"}}
                 for j in range(per_visitor)]
        accepted += sum(o.status == "accepted" for o in services.append_events(batch, visitor_id=f"{prefix}{v:04d}"))
    return accepted
