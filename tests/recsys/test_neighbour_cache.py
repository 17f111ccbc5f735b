"""recsys.neighbours: the per-process cache of items' associated items (pure logic)."""
from __future__ import annotations

import pytest

from recsys import neighbours


@pytest.fixture(autouse=True)
def empty(monkeypatch):
    neighbours.forget_all()
    monkeypatch.setattr(neighbours, "ttl", lambda: 10.0)
    yield
    neighbours.forget_all()


def test_a_read_is_reused_until_it_expires(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(neighbours.time, "monotonic", lambda: now[0])
    neighbours.put(["a", "b", "lonely"], 50, {"a": [("x", 1.0)], "b": [("y", 0.5)]}, {"a": "A", "b": "B", "lonely": "L"})
    keys, titles, missing = neighbours.split(["a", "b", "lonely", "new"], 50)
    assert keys == {"a": (("x", 1.0),), "b": (("y", 0.5),)} and titles == {"a": "A", "b": "B"}
    # An item without neighbours is read again (its first pairs show at once); so is any
    # other fetch size, and everything once the entries expire.
    assert missing == ["lonely", "new"]
    assert neighbours.split(["a"], 20)[2] == ["a"]
    now[0] += 10.0
    assert neighbours.split(["a", "b"], 50) == ({}, {}, ["a", "b"])


def test_forget_all_and_a_zero_ttl(monkeypatch):
    neighbours.put(["a"], 50, {"a": [("x", 1.0)]}, {"a": "A"})
    neighbours.forget_all()
    assert neighbours.split(["a"], 50)[2] == ["a"]
    monkeypatch.setattr(neighbours, "ttl", lambda: 0.0)
    neighbours.put(["a"], 50, {"a": [("x", 1.0)]}, {"a": "A"})
    assert neighbours.split(["a"], 50)[2] == ["a"]


def test_the_cache_stays_bounded(monkeypatch):
    monkeypatch.setattr(neighbours, "MAX_ENTRIES", 10)
    now = [0.0]
    monkeypatch.setattr(neighbours.time, "monotonic", lambda: now[0])
    neighbours.put([f"old{i}" for i in range(6)], 50, {f"old{i}": [("x", 1.0)] for i in range(6)}, {})
    now[0] = 5.0
    neighbours.put([f"mid{i}" for i in range(4)], 50, {f"mid{i}": [("x", 1.0)] for i in range(4)}, {})
    now[0] = 12.0  # the "old" entries have expired: they go first, the live ones stay
    neighbours.put(["n0", "n1"], 50, {"n0": [("x", 1.0)], "n1": [("x", 1.0)]}, {})
    assert len(neighbours._entries) == 6 and not neighbours.split(["mid0", "n0"], 50)[2]
    neighbours.put([f"z{i}" for i in range(8)], 50, {f"z{i}": [("x", 1.0)] for i in range(8)}, {})
    assert len(neighbours._entries) == 8  # nothing had expired: all dropped, then the new read kept
