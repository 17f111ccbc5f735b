"""bench.probepath splits the measured visitor's pushes with the cycle trace's times."""
from __future__ import annotations

import pytest

from bench.probepath import report, split

T0 = 1_700_000_000.0


def cycle(start: float, touched: int, pushed: list[tuple[str, float, float]]) -> dict:
    """A trace line: ``pushed`` as (visitor, ms from receipt to cycle start, ms from receipt to send)."""
    return {"task": "cycle", "start": start, "touched": touched, "pushed": [p[0] for p in pushed],
            "queued": [p[1] for p in pushed], "latencies": [p[2] for p in pushed]}


def test_a_push_splits_into_the_post_the_wait_the_cycle_and_the_socket():
    # POST sent at T0; received 4 ms later; the cycle starts 10 ms after that and sends 30 ms
    # after the receipt; the client reads the list at T0 + 36 ms.
    traced = [cycle(T0 + 0.014, 2, [("other", 12.0, 32.0), ("probe", 10.0, 30.0)])]
    parts, by_size = split(traced, "probe", [(T0, T0 + 0.036)])
    assert {k: [round(v, 3) for v in ms] for k, ms in parts.items()} == {
        "POST -> received": [4.0], "-> cycle start": [10.0], "-> sent": [20.0], "-> client": [2.0]}
    assert by_size == {2: [pytest.approx(20.0)]}


def test_each_timed_push_takes_the_first_push_of_an_event_sent_after_its_post():
    traced = [cycle(T0 - 0.5, 1, [("probe", 5.0, 20.0)]),              # an earlier post's push
              cycle(T0 + 0.010, 1, [("probe", 5.0, 25.0)]),
              cycle(T0 + 0.050, 4, [("probe", 1.0, 40.0)]),            # a later event of the same burst
              cycle(T0 + 1.010, 5, [("probe", 5.0, 35.0)])]
    parts, by_size = split(traced, "probe", [(T0, T0 + 0.040), (T0 + 1.0, T0 + 1.045), (T0 + 2.0, T0 + 2.05)])
    assert [round(ms, 3) for ms in parts["-> sent"]] == [20.0, 30.0]  # the third POST's push is not traced
    assert sorted(by_size) == [1, 3]  # five visitors ranked counts as "3+"
    text = report(traced, "probe", [(T0, T0 + 0.040), (T0 + 1.0, T0 + 1.045), (T0 + 2.0, T0 + 2.05)])
    assert "(2 of 3 pushes traced)" in text and "3+: 1 (-> sent p50 30.0)" in text


def test_a_trace_without_the_visitor_says_so():
    assert "none found" in report([cycle(T0, 1, [("someone", 1.0, 2.0)])], "probe", [(T0, T0 + 0.1)])
    assert "none found" in report([{"task": "cycle", "start": T0, "touched": 0}], "probe", [(T0, T0 + 0.1)])
