from __future__ import annotations

import os
import shutil
import tempfile

import pytest

# Playwright's sync API runs an event loop in this thread; the tests' own ORM reads are
# still synchronous, as the pytest-playwright docs advise for Django.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser_context():
    """A fresh headless Chromium profile (Debian's chromium, never a downloaded one)."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    user_dir = tempfile.mkdtemp(prefix="liverec-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(user_dir, executable_path=CHROMIUM, headless=True,
                                                       args=FLAGS)
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(user_dir, ignore_errors=True)
