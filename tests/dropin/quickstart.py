"""docs/quickstart.md as data: its code blocks, applied to a new project the way a reader
copies them (the bar test and examples/shop both come from here, so neither drifts from it).

    python -m tests.dropin.quickstart DIR   # startproject mysite in DIR, the products app, the page
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "quickstart.md"
PRODUCTS = ROOT / "examples" / "shop" / "products"
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[a-z]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)


@dataclass
class Block:
    lang: str
    code: str

    @property
    def target(self) -> tuple[str, bool] | None:
        """(file, append) for a python block that names its file on its first line."""
        first = self.code.splitlines()[0]
        m = re.match(r"# (?P<path>[\w/]+\.py)(?P<append>: add at the end)?$", first)
        return (m["path"], bool(m["append"])) if m else None


def blocks(text: str | None = None) -> list[Block]:
    text = PAGE.read_text(encoding="utf-8") if text is None else text
    return [Block(m["lang"], textwrap.dedent(m["body"])) for m in FENCE.finditer(text)]


def commands(lang: str = "sh") -> list[str]:
    return [line.strip() for b in blocks() if b.lang == lang for line in b.code.splitlines() if line.strip()]


def apply(site: Path) -> list[str]:
    """Write every file block into ``site`` (a startproject directory); returns the files written."""
    written = []
    for block in blocks():
        if block.lang != "python" or block.target is None:
            continue
        path, append = block.target
        target = site / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if append:
            with target.open("a", encoding="utf-8") as f:
                f.write("\n" + block.code)
        else:
            target.write_text(block.code, encoding="utf-8")
        written.append(path)
    return written


def new_site(parent: Path, django_admin: str = "django-admin") -> Path:
    """``django-admin startproject mysite``, the example's products app, then the page."""
    subprocess.run([django_admin, "startproject", "mysite"], cwd=parent, check=True)
    site = parent / "mysite"
    shutil.copytree(PRODUCTS, site / "products", ignore=shutil.ignore_patterns("__pycache__", "adapters.py"))
    apply(site)
    return site


if __name__ == "__main__":
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    site = new_site(out, str(Path(sys.executable).parent / "django-admin"))
    print(site)
