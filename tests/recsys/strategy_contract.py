"""The contract every strategy honours. Each strategy's tests subclass ``StrategyContract``.

A subclass sets ``strategy_cls`` and ``config_override`` (a tuning row to merge) and
provides a ``ctx`` fixture: a RequestContext, built on real data, for which the strategy
has at least three candidates to offer.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar


from recsys.strategies import registry
from recsys.strategies.base import RequestContext, Strategy


class StrategyContract:
    strategy_cls: ClassVar[type[Strategy]]
    config_override: ClassVar[dict[str, Any]] = {}

    def strategy(self, **config) -> Strategy:
        return self.strategy_cls(config or None)

    def test_is_registered_under_its_id(self):
        assert registry.get(self.strategy_cls.id) is self.strategy_cls

    def test_tuning_is_merged_over_default_config(self):
        assert self.config_override, "a contract subclass must name a tuning row to merge"
        s = self.strategy(**self.config_override)
        assert s.config == {**self.strategy_cls.DEFAULT_CONFIG, **self.config_override}
        untouched = set(self.strategy_cls.DEFAULT_CONFIG) - set(self.config_override)
        assert all(s.config[key] == self.strategy_cls.DEFAULT_CONFIG[key] for key in untouched)

    def test_returns_at_most_n_candidates(self, ctx: RequestContext):
        many = self.strategy().candidates(ctx, 50)
        assert len(many) >= 3, "the ctx fixture must give the strategy something to recommend"
        assert len(self.strategy().candidates(ctx, 2)) == 2
        assert len({c.item_id for c in many}) == len(many), "an item appears once"

    def test_candidates_are_sorted_best_first(self, ctx: RequestContext):
        scores = [c.score for c in self.strategy().candidates(ctx, 50)]
        assert scores == sorted(scores, reverse=True)

    def test_excluded_items_never_come_back(self, ctx: RequestContext):
        first = self.strategy().candidates(ctx, 50)
        banned = {first[0].item_id, first[-1].item_id}
        again = self.strategy().candidates(dataclasses.replace(ctx, exclude=ctx.exclude | banned), 50)
        assert again and not banned & {c.item_id for c in again}

    def test_every_candidate_has_a_reason_of_this_strategy(self, ctx: RequestContext):
        for c in self.strategy().candidates(ctx, 50):
            assert c.reasons, c
            assert all(r.strategy == self.strategy_cls.id and r.text for r in c.reasons), c.reasons

    def test_an_unknown_visitor_without_context_gets_a_list(self, ctx: RequestContext):
        out = self.strategy().candidates(RequestContext(visitor_id="nobody-at-all"), 10)
        assert isinstance(out, list) and len(out) <= 10
