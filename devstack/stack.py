"""The stack's processes on a given database: Celery workers and an ASGI server under the
supervisor, for the tests (the ``stack`` fixture starts it once per test run) and the benches."""
from __future__ import annotations

import os
import socket
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from devstack.__main__ import THREAD_ENV, supervisor, worker_commands
from devstack.supervisor import Supervisor
from recsys.tasks import health_probe, health_probe_batch, health_probe_summaries

ROOT = Path(__file__).resolve().parent.parent


def database_url(settings_dict: dict) -> str:
    host = settings_dict.get("HOST") or ""
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = urllib.parse.quote(user, safe="") + (":" + urllib.parse.quote(password, safe="") if password else "")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgresql://{auth}@{urllib.parse.quote(host, safe='')}{port}/{settings_dict['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    url: str
    port: int
    supervisor: Supervisor
    env: dict

    def stop(self) -> None:
        self.supervisor.stop()


def start_stack(db_settings: dict, *, web: bool = True, timeout: float = 120.0, realtime: int | None = 1) -> Stack:
    """``realtime``: realtime workers (None: the devstack default, as benchmarks use)."""
    env = dict(os.environ)
    env.update(THREAD_ENV)
    env["DATABASE_URL"] = database_url(db_settings)
    env["PYTHONPATH"] = str(ROOT)
    env["DJANGO_SETTINGS_MODULE"] = "demo.settings"
    # The shared test workers write no LLM summaries (8 s of CPU per visitor here, for every
    # visitor of every test); tests/recsys/test_summaries.py runs the real model itself.
    env.setdefault("LIVEREC_SUMMARY_BACKEND", "recsys.summaries.DisabledSummarizer")
    # The demo's supervisor: a crashed child is restarted (with backoff) as under `make demo`.
    sup = supervisor(env)
    summaries = env["LIVEREC_SUMMARY_BACKEND"] != "recsys.summaries.DisabledSummarizer"
    # Tests use one realtime worker: they wait for "the" realtime worker to go idle (one probe
    # task behind its work); the projection's concurrency has its own tests.
    for name, cmd in worker_commands(sys.executable, realtime=realtime, summaries=summaries):
        sup.start(name, cmd)
    port = free_port()
    if web:
        sup.start("web", [sys.executable, "-m", "uvicorn", "demo.asgi:application", "--host", "127.0.0.1",
                          "--port", str(port), "--log-level", "warning", "--no-proxy-headers"])
    stack = Stack(url=f"http://127.0.0.1:{port}", port=port, supervisor=sup, env=env)
    try:
        _wait_ready(stack, web, timeout, summaries)
        sup.watch()
    except BaseException:
        stack.stop()
        raise
    return stack


def _wait_ready(stack: Stack, web: bool, timeout: float, summaries: bool = False) -> None:
    from celery import current_app


    deadline = time.monotonic() + timeout
    # Every queue answers a real round trip (the realtime one also loads the encoder).
    for task in (health_probe, health_probe_batch) + ((health_probe_summaries,) if summaries else ()):
        result = task.apply_async()
        result.get(timeout=max(1.0, deadline - time.monotonic()))
    if web:
        while True:
            exited = stack.supervisor.first_exited()
            if exited:
                raise RuntimeError(f"{exited[0]} exited with {exited[1]}")
            try:
                with socket.create_connection(("127.0.0.1", stack.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("the ASGI server did not start")
                time.sleep(0.2)
    current_app.control.purge()


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout:.0f} s")
