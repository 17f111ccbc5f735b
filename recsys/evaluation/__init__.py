"""Offline evaluation: splits of a log (``splits``), full-ranking metrics (``ranking_metrics``),
built-in baselines, the runner behind ``recsys_evaluate`` and the fusion-weight search."""
