"""Fixtures of tests/dropin: headless Chromium as the browser tests use it."""
from tests.browser.conftest import browser_context  # noqa: F401
