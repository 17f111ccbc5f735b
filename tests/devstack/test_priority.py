"""A niced process's work runs niced everywhere (``devstack.priority``): its database backends get
its niceness, and under autogroup scheduling so do their sessions and its own. Against the real
test database and real processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.db import connection

from devstack import priority
from tests.stack import ROOT, database_url

# Connects as the process would (Django's pool, the app's ready()), then reports its own
# niceness, its backend's and their autogroups' as the kernel sees them. With "lower" it first
# does what a niced worker does at start-up.
_CHILD = """
import json, os, sys, django
django.setup()
from django.db import connection
from devstack import priority
priority.connect()
if "lower" in sys.argv:
    priority.lower_own_session()
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_backend_pid()")
    pid = cursor.fetchone()[0]
print(json.dumps({"own": priority.own_niceness(), "own_group": priority.autogroup_niceness(),
                  "backend": os.getpriority(os.PRIO_PROCESS, pid), "backend_group": priority.autogroup_niceness(pid)}))
"""


def _run_child(nice: int, *args: str) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "demo.settings", "PYTHONPATH": str(ROOT),
           "DATABASE_URL": database_url(connection.settings_dict)}
    cmd = (["nice", "-n", str(nice)] if nice else []) + [sys.executable, "-c", _CHILD, *args]
    # A session of its own, as devstack starts every service: its autogroup is then its own,
    # and lowering it leaves the test run's session alone.
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, start_new_session=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def local_server():
    if not priority._is_local(connection.settings_dict):
        pytest.skip("the database server is not on this host: its backends are not ours to renice")


@pytest.mark.django_db
def test_a_niced_process_gets_a_niced_backend(local_server):
    niced = min(19, priority.own_niceness() + 7)  # `nice -n 7` adds to the test run's own niceness
    got = _run_child(7)
    assert got["own"] == niced
    assert got["backend"] == niced  # the fold's upserts run in that backend, at the worker's priority
    if priority.autogroups_enabled():
        # PostgreSQL starts each backend in a session of its own: its weight is its autogroup's.
        assert got["backend_group"] == niced


@pytest.mark.django_db
def test_a_niced_worker_weighs_its_session_as_niced(local_server):
    if not priority.autogroups_enabled():
        pytest.skip("no autogroup scheduling here: nice values weigh machine-wide already")
    assert _run_child(7)["own_group"] == 0  # what `nice` alone leaves: a full session's share
    assert _run_child(7, "lower")["own_group"] == min(19, priority.own_niceness() + 7)


@pytest.mark.django_db
def test_a_process_at_the_default_priority_leaves_everything_alone(local_server):
    got = _run_child(0, "lower")
    if got["own"] != 0:
        pytest.skip("the test process itself runs niced")
    assert got["backend"] == 0 and got["own_group"] in (0, None) and got["backend_group"] in (0, None)


def test_only_a_server_on_this_host_is_reniced():
    assert priority._is_local({"HOST": "/tmp/pgdata"})
    assert priority._is_local({"HOST": ""}) and priority._is_local({"HOST": "127.0.0.1"})
    assert not priority._is_local({"HOST": "db.internal"})
