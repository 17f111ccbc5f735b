"""The environment every benchmark runs in: production settings, one thread, offline models.

DEBUG off: with DEBUG on, Django wraps every cursor to record its queries (CursorDebugWrapper
showed up in the realtime worker's profile under bench_freshness's load) and keeps them in
memory; DEBUG off makes the settings demand a SECRET_KEY from the environment, and a random
one is fine for a benchmark's own run. Threads and offline model loading as devstack gives
its workers (``devstack.THREAD_ENV``). Import this module before Django is set up.
"""
from __future__ import annotations

import os
import secrets

from devstack.__main__ import THREAD_ENV

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_hex(32))
# Load generators post for thousands of made-up visitors: as a server (the server key), since a
# browser may only post for the visitor of its signed cookie (docs/security.md).
os.environ.setdefault("LIVEREC_SERVER_KEY", secrets.token_hex(16))
SERVER_KEY_HEADERS = {"X-LiveRec-Server-Key": os.environ["LIVEREC_SERVER_KEY"]}
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
for _key, _value in THREAD_ENV.items():
    os.environ.setdefault(_key, _value)
