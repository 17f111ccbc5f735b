"""Benchmarks measure the stack as it runs in production: DEBUG off.

With DEBUG on, Django wraps every cursor to record its queries (CursorDebugWrapper showed up
in the realtime worker's profile under bench_freshness's load) and keeps them in memory.
DEBUG off makes the settings demand a SECRET_KEY from the environment: a random one is
fine for a benchmark's own run. Import this module before Django is set up.
"""
from __future__ import annotations

import os
import secrets

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_hex(32))
