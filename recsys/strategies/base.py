"""The strategy contract: one method that returns scored candidates with reasons."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Generator

from ..interest_model import InterestState
from ..services import vectors

# A database read a strategy hands to the engine (``Strategy.candidates_steps``): SQL and its
# parameters; the rows come back as ``services.vectors.fetch_binary`` returns them.
Read = tuple[str, list]
Steps = Generator[Read, list[tuple], list[list["Candidate"]]]


@dataclass
class Reason:
    """Why an item is shown, in words and with its evidence (``recsys.reasons``).

    ``kind`` names the reason template ("item_viewed", "search", "interest", "popular", ...);
    ``evidence`` lists what it rests on, each a dict with a ``kind`` of "item" (``item_id``,
    ``title``, ``event``, ``at``), "query" (``query``, ``at``), "interest" (``label``) or
    "popularity" (``scope``). A strategy may leave ``text`` empty: the engine renders it from
    the kind and the evidence once it has read the items' titles.
    """

    strategy: str
    text: str  # e.g. "Because you viewed Toy Story"
    interest: int | None = None  # the interest's index in the visitor's state (internal only)
    item_id: str | None = None
    kind: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict:
        """``dataclasses.asdict(self)`` without its deep copy of every field: a pushed list's
        reasons are serialised two or three times (message, list cache, API), and the copies
        were ~5% of a ranking's CPU (cProfile, bench refresh of 3 visitors)."""
        return {"strategy": self.strategy, "text": self.text, "kind": self.kind, "item_id": self.item_id,
                "evidence": self.evidence}


@dataclass
class Candidate:
    item_id: str
    score: float
    reasons: list[Reason] = field(default_factory=list)


@dataclass
class RequestContext:
    """What a strategy may use: the visitor's state and what is on their screen."""

    visitor_id: str
    state: InterestState | None = None
    item_id: str = ""  # the item on the page, for "similar" and cold visitors
    query: str = ""  # a search the visitor just made
    exclude: set[str] = field(default_factory=set)
    recent_items: list[str] = field(default_factory=list)  # most recent first
    extra: dict[str, Any] = field(default_factory=dict)
    # The visitor's latest positive engagements, newest first (association_model.Engagement).
    engagements: list[Any] = field(default_factory=list)
    category: str = ""  # a category the page is about (context), for per-category strategies
    # The visitor's stored sequence-model state (seqmodel.VisitorState), when current.
    sequence: Any = None


class Strategy:
    """Subclass, set ``id`` and ``DEFAULT_CONFIG``, implement ``candidates``.

    ``config`` is DEFAULT_CONFIG merged with the staff-tuned row of this strategy.
    Scores only need to be comparable within one call: the engine normalises them.
    """

    id: ClassVar[str] = ""
    DEFAULT_CONFIG: ClassVar[dict[str, Any]] = {}
    # Most strategies wait on the database and run on the engine's thread pool
    # (recsys.overlap); a strategy that mostly computes in this process says so here and runs
    # in the calling thread meanwhile.
    cpu_bound: ClassVar[bool] = False

    def __init__(self, config: dict[str, Any] | None = None):
        self.config = {**self.DEFAULT_CONFIG, **(config or {})}

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        raise NotImplementedError

    def candidates_many(self, ctxs: list[RequestContext], n: int) -> list[list[Candidate]]:
        """``candidates`` for several requests (``engine.recommend_many``), in order. Override it
        to answer them all with one query; the default asks one at a time."""
        return [self.candidates(ctx, n) for ctx in ctxs]

    def candidates_steps(self, ctxs: list[RequestContext], n: int) -> Steps:
        """``candidates_many`` as a generator that yields its database reads (``Read``) instead
        of running them, and is sent each read's rows: the engine runs the reads of several
        strategies in one round trip (``run_together``). Override it next to
        ``candidates_many`` (which can then be ``run_steps(self.candidates_steps(...))``); the
        default hands no read over and answers with ``candidates_many``."""
        return self.candidates_many(ctxs, n)
        yield  # noqa: unreachable: makes this a generator function


def run_steps(steps: Steps):
    """Drive one ``candidates_steps`` generator, each read on its own round trip."""
    try:
        read = next(steps)
        while True:
            read = steps.send(vectors.fetch_binary(*read))
    except StopIteration as done:
        return done.value


def run_together(all_steps: list[Steps]) -> list:
    """Drive several ``candidates_steps`` generators at once: their pending reads go to the
    database together, one round trip per round (``vectors.fetch_binary_many``). Under load
    each round trip waited 1-3 ms for a core; the content and co-occurrence strategies each
    read once, so a ranking batch saves a round trip."""
    results: list = [None] * len(all_steps)
    pending: dict[int, Read] = {}

    def advance(i: int, rows=None) -> None:
        try:
            pending[i] = all_steps[i].send(rows)
        except StopIteration as done:
            results[i] = done.value

    for i in range(len(all_steps)):
        advance(i)
    while pending:
        order = list(pending)
        rows_of = vectors.fetch_binary_many([pending.pop(i) for i in order])
        for i, rows in zip(order, rows_of):
            advance(i, rows)
    return results
