"""The realtime cycle's phase timings (``recsys.cycletrace``), written only when asked:
bench_freshness reads them to show where a push's time goes under load."""
from __future__ import annotations

import json

import pytest

from recsys import tasks
from tests.recsys.engine_helpers import isolated_cache, make_items  # noqa: F401
from tracking.services import record_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def projection_driven_by_the_test(monkeypatch):
    from tracking import hooks

    monkeypatch.setitem(hooks._hooks, hooks.EVENTS_APPENDED, [])  # the live workers must not fold these events


def test_a_cycle_appends_its_phases_to_the_trace_file_when_one_is_named(tmp_path, monkeypatch, isolated_cache):  # noqa: F811
    make_items("tr1", "tr2")
    record_event("item_viewed", visitor_id="visitor-trace", item_id="tr1")
    tasks.process_events()  # no trace file named: nothing written anywhere
    trace = tmp_path / "cycles.jsonl"
    monkeypatch.setenv("LIVEREC_CYCLE_TRACE", str(trace))
    record_event("item_viewed", visitor_id="visitor-trace", item_id="tr2")

    assert tasks.process_events() == 1

    (line,) = [json.loads(x) for x in trace.read_text().splitlines()]
    assert line["task"] == "cycle" and line["touched"] == 1 and line["latencies"] == []
    assert line["outcomes"] == {"offline": 1}  # the visitor has no socket: nothing pushed
    assert line["gc"] >= 0 and line["gc_full"] >= 0
    phases = ("fold", "states", "refresh", "store_states", "serve", "associations")
    assert all(line[p] >= 0 for p in phases) and line["total"] >= sum(line[p] for p in phases) - 0.1
    # CPU next to wall time (the rest is waiting), and the steps inside the phases (cycletrace.span).
    assert 0 <= line["cpu"] <= line["total"] + 1 and line["fold_cpu"] >= 0 and line["queued"] == []
    assert {"span:f:next_batch", "span:f:read", "span:f:fold", "span:f:save"} <= set(line)
    assert line["span:f:fold"] <= line["fold"] and line["span:f:fold_cpu"] >= 0


def test_the_trace_names_each_pushed_visitor_beside_its_times(tmp_path, monkeypatch, isolated_cache):  # noqa: F811
    from recsys.live import presence

    make_items("tp1", "tp2")
    presence.socket_opened("visitor-trace-live", ["for-you"])  # online: its change is ranked and pushed
    trace = tmp_path / "cycles.jsonl"
    monkeypatch.setenv("LIVEREC_CYCLE_TRACE", str(trace))
    record_event("item_viewed", visitor_id="visitor-trace-live", item_id="tp1")
    record_event("item_viewed", visitor_id="visitor-trace-quiet", item_id="tp2")  # offline: folded, not pushed

    assert tasks.process_events() == 2

    (line,) = [json.loads(x) for x in trace.read_text().splitlines()]
    assert line["outcomes"] == {"pushed": 1, "offline": 1}
    assert line["pushed"] == ["visitor-trace-live"]
    assert len(line["queued"]) == len(line["latencies"]) == 1 and 0 <= line["queued"][0] <= line["latencies"][0]
