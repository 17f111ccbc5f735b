"""docs/quickstart.md and examples/shop say the same thing: the example is the page, applied."""
from __future__ import annotations

import sys
from pathlib import Path

from tests.dropin import quickstart

SHOP = quickstart.ROOT / "examples" / "shop"


def test_the_example_shop_is_the_quick_start_applied_to_startproject(tmp_path):
    site = quickstart.new_site(tmp_path, str(Path(sys.executable).parent / "django-admin"))
    for path in ("mysite/asgi.py", "mysite/celery.py", "mysite/__init__.py", "mysite/urls.py",
                 "products/adapters.py"):
        assert (site / path).read_text() == (SHOP / path).read_text(), path
    # settings.py differs only in startproject's random SECRET_KEY.
    def without_key(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("SECRET_KEY")]

    assert without_key((site / "mysite/settings.py").read_text()) == without_key((SHOP / "mysite/settings.py").read_text())


def test_the_example_templates_use_the_tags_the_page_shows():
    [tags] = [b.code for b in quickstart.blocks() if b.lang == "django"]
    base = (SHOP / "products/templates/products/base.html").read_text()
    for line in tags.splitlines():
        assert line.strip() in base, line


def test_the_page_runs_its_steps_in_a_newcomers_order():
    commands = quickstart.commands()
    order = ["pip install", "python manage.py migrate", "python manage.py check", "celery -A mysite worker",
             "uvicorn", "python manage.py recsys_embed"]
    positions = [next(i for i, c in enumerate(commands) if c.startswith(step)) for step in order]
    assert positions == sorted(positions)
    assert {b.target[0] for b in quickstart.blocks() if b.lang == "python" and b.target} == {
        "mysite/settings.py", "products/adapters.py", "mysite/asgi.py", "mysite/celery.py", "mysite/__init__.py",
        "mysite/urls.py"}
