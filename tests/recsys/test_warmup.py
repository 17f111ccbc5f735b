"""Start-up heap freezing (``recsys.warmup``): what it freezes stays alive and usable, later
garbage is still collected."""
from __future__ import annotations

import gc

from recsys import warmup


class _Node:
    def __init__(self):
        self.other = None


def test_freezing_keeps_old_objects_and_still_collects_new_cycles():
    kept = {"payload": list(range(10))}
    thresholds = gc.get_threshold()
    try:
        frozen = warmup.freeze_heap()
        # Reference counting still frees a frozen object that falls out of use, at any moment
        # and on any of the process's threads (a pool's worker), so the count only ever drops.
        assert 0 < gc.get_freeze_count() <= frozen
        assert gc.get_threshold() == thresholds  # the ASGI process keeps CPython's collector
        warmup.tune_collector()  # a Celery worker's
        assert gc.get_threshold() == warmup.GC_THRESHOLDS and gc.isenabled()  # young collections far apart, not off
        assert kept["payload"][-1] == 9  # frozen objects stay alive and usable
        # A reference cycle made after the freeze is garbage the collector still finds.
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2
    finally:
        gc.unfreeze()  # the test process keeps its ordinary collector
        gc.set_threshold(*thresholds)
    assert gc.get_freeze_count() == 0
