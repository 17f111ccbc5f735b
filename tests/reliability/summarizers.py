"""A summarizer backend for the queue tests: the real task path, a fixed second of CPU-free wait
in place of the LLM's ~2 s (the model itself has its own tests in tests/recsys/test_summaries.py)."""
from __future__ import annotations

import time

from recsys.summaries import Summarizer


class SlowSummarizer(Summarizer):
    def generate(self, messages, max_tokens):
        time.sleep(1.0)
        return "Likes slow films."
