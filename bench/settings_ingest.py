"""Settings for bench_ingest.py: the demo site with the per-IP limit raised.

The benchmark's one client IP sends what thousands of visitors would; the limiter
still runs (its Redis round trip is part of the measured path), it just never trips.
"""
from demo.settings import *  # noqa: F401,F403
from demo.settings import LIVEREC_TRACKING

LIVEREC_TRACKING = {**LIVEREC_TRACKING, "RATE_LIMIT_IP": {"EVENTS": 10**9, "SECONDS": 60}}
