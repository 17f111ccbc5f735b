"""Where one measured visitor's pushes spent their time, from the realtime cycle trace.

``bench_freshness`` times each push of its measured visitor from the POST to the list arriving
on its socket. The trace (``recsys.cycletrace``) has, for every visitor a cycle pushed, when
the server stamped the visitor's newest event, how long it then waited for the cycle to start,
and when the list was sent. Matched to the client's own times (one machine, one clock), each
push splits into four parts:

- POST -> received: the request reaching the ingest view (the ASGI server and its thread hop);
- -> cycle start: the ingest's insert, commit and publish, then the wait for a free worker;
- -> sent: the cycle (fold, sequence states, ranking) up to the end of its refresh phase,
  where the server side's latency is taken: the lists sent, then cached (``p:store``, ~1.5 ms
  after the send under the load);
- -> client: the channel layer, the ASGI consumer and the socket, less that caching (so it can
  come out slightly negative).

It also counts the visitors ranked by the cycles that pushed it: a cycle ranks every visitor
whose events it folded, and sends their lists when all are ranked.
"""
from __future__ import annotations

import statistics

PARTS = ("POST -> received", "-> cycle start", "-> sent", "-> client")


def split(traced: list[dict], visitor: str, walls: list[tuple[float, float]]) -> tuple[dict[str, list[float]], dict[int, list[float]]]:
    """The four parts (ms) of each of ``visitor``'s pushes that ``walls`` timed ((POST sent,
    list read) on the wall clock), and the cycle time (-> sent) by visitors ranked (3 = 3+)."""
    pushes = []  # (received, queued ms, latency ms, visitors ranked)
    for cycle in traced:
        for v, queued, latency in zip(cycle.get("pushed", ()), cycle.get("queued", ()), cycle.get("latencies", ())):
            if v == visitor:
                pushes.append((cycle["start"] - queued / 1000, queued, latency, cycle["touched"]))
    parts: dict[str, list[float]] = {name: [] for name in PARTS}
    by_size: dict[int, list[float]] = {}
    for sent, read in walls:
        # The first push of an event received after this POST was sent (2 ms of slack for
        # rounding) and before its list was read.
        matches = [p for p in pushes if sent - 0.002 <= p[0] <= read]
        if not matches:
            continue
        received, queued, latency, size = min(matches)
        for name, ms in zip(PARTS, ((received - sent) * 1000, queued, latency - queued,
                                    (read - received) * 1000 - latency)):
            parts[name].append(ms)
        by_size.setdefault(min(size, 3), []).append(latency - queued)
    return parts, by_size


def report(traced: list[dict], visitor: str, walls: list[tuple[float, float]]) -> str:
    parts, by_size = split(traced, visitor, walls)
    if not parts["-> sent"]:
        return "  the measured visitor's pushes: none found in the cycle trace"
    sizes = ", ".join(f"{'3+' if k == 3 else k}: {len(v)} (-> sent p50 {statistics.median(v):.1f})"
                      for k, v in sorted(by_size.items()))
    return (f"  the measured visitor's path, p50 ms ({len(parts['-> sent'])} of {len(walls)} pushes traced): "
            + ", ".join(f"{name} {statistics.median(ms):.1f}" for name, ms in parts.items())
            + f"; its pushes by visitors their cycle ranked: {sizes}")
