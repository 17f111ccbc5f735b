"""Strict JSON for untrusted bodies: what Python's json accepts but PostgreSQL's jsonb does not.

Found by the fuzzer (tests/reliability/test_fuzz_ingest.py): each of these passed
``json.loads`` and then failed inside PostgreSQL or the encoder as a 500 instead of a 400.
"""
from __future__ import annotations

import json
import math
from typing import Any

# Nesting deeper than this is never a real event; Python's parser would hit its recursion
# limit near 1,000 (a RecursionError, not a ValueError).
MAX_DEPTH = 32


class UnsafeJSON(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise UnsafeJSON(f"{name} is not valid JSON")


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise UnsafeJSON(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise UnsafeJSON("strings may not contain the NUL character (\\u0000)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UnsafeJSON("strings may not contain unpaired UTF-16 surrogates") from None
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise UnsafeJSON("numbers must be finite (1e400 overflows)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth + 1)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


def loads(body: bytes | str) -> Any:
    """``json.loads`` that raises ``ValueError`` (with the reason) for everything jsonb refuses."""
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise UnsafeJSON(f"nested deeper than {MAX_DEPTH} levels") from None
    _check(value, 0)
    return value
