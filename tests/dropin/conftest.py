"""Fixtures of tests/dropin: headless Chromium as the browser tests use it, and where screenshots go."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.conftest import browser_context  # noqa: F401


@pytest.fixture
def shots(tmp_path) -> Path:
    """``$LIVEREC_SCREENSHOT_DIR`` (else the test's temp dir), for a human to look at."""
    out = Path(os.environ.get("LIVEREC_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out
