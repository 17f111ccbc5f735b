"""The documentation describes the product as it is now.

A short README that opens with the two commands; no run diaries, notes of who decided what,
or paths of a particular machine in any tracked file; links and module paths in the README
and docs/ that resolve. Pure file checks: no database, no services.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 350

# Diary voice: figures and decisions told as a story of past runs instead of the present.
_ORDINALS = ("third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|"
             "fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|\\d+(?:st|nd|rd|th)")
DIARY = [
    re.compile(rf"\b(?:{_ORDINALS})[- ]sessions?\b", re.IGNORECASE),
    re.compile(r"\bsession[- ]start\b", re.IGNORECASE),
    re.compile(r"\bthe brief\b", re.IGNORECASE),
    re.compile(r"\bmeasured,? (?:and )?not kept\b", re.IGNORECASE),
    re.compile(r"\bfoundation name\b", re.IGNORECASE),
]

# Absolute paths of one machine, and paths that reach outside the repository.
MACHINE_PATH = re.compile(r"(?<![\w.~-])(?:/work/|/root/|/home/\w|\.\./shared/)")
TMP_PATH = re.compile(r"(?<![\w.~-])/tmp/")
# Files where /tmp/ is a value the code uses, not a machine's path told as documentation.
TMP_ALLOWED = {
    "Makefile": "PEERS_DATA's default directory for the MovieLens CSVs",
    "tests/devstack/test_priority.py": "a Unix-socket directory as a database HOST value",
}

SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()
_SKIP_DIRS = {".git", ".venv", ".venv-peers", ".stack", "__pycache__", "node_modules", "build", "dist"}


def tracked_text_files() -> list[tuple[str, str]]:
    """(repository path, text) of every tracked text file; the tree minus ignored directories
    when this is not a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        paths = [p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        paths = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                 if p.is_file() and not _SKIP_DIRS.intersection(p.relative_to(ROOT).parts)
                 and not p.relative_to(ROOT).as_posix().startswith("bench/out/")]
    files = []
    for path in paths:
        full = ROOT / path
        if path == SELF or not full.is_file():
            continue
        data = full.read_bytes()
        if b"\0" in data:
            continue
        try:
            files.append((path, data.decode("utf-8")))
        except UnicodeDecodeError:
            continue
    return files


def hits(pattern: re.Pattern, files: list[tuple[str, str]], skip=frozenset()) -> list[str]:
    found = []
    for path, text in files:
        if path in skip:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            match = pattern.search(line)
            if match:
                found.append(f"{path}:{number}: {match.group(0)!r} in {line.strip()[:120]}")
    return found


@pytest.fixture(scope="module")
def files() -> list[tuple[str, str]]:
    return tracked_text_files()


def test_the_readme_stays_a_short_reference():
    lines = README.read_text().splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines; keep it under {README_MAX_LINES} (depth goes to docs/)"


def test_the_readme_opens_with_the_two_commands():
    head = README.read_text().splitlines()[:8]
    demo = [i for i, line in enumerate(head) if line.startswith("make demo")]
    test = [i for i, line in enumerate(head) if line.startswith("make test")]
    assert demo and test and demo[0] < test[0], f"README's first lines must give `make demo` then `make test`: {head}"


@pytest.mark.parametrize("pattern", DIARY, ids=lambda p: p.pattern[:40])
def test_no_tracked_file_speaks_in_diary_voice(files, pattern):
    found = hits(pattern, files)
    assert not found, "describe the product as it is now (history belongs in git log):\n" + "\n".join(found)


def test_no_tracked_file_names_a_machine_path(files):
    found = hits(MACHINE_PATH, files)
    assert not found, "no absolute paths of a particular machine, nothing outside the repository:\n" + "\n".join(found)


def test_tmp_paths_appear_only_as_code_defaults(files):
    found = hits(TMP_PATH, files, skip=frozenset(TMP_ALLOWED))
    assert not found, ("use a path inside the checkout (bench/out/ and .stack/ are ignored by git), or add the file to "
                       "TMP_ALLOWED with the reason:\n" + "\n".join(found))


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _doc_pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "CHANGELOG.md"]


def test_every_local_link_in_the_readme_and_docs_resolves():
    broken = []
    for page in _doc_pages():
        if not page.exists():
            continue
        for target in _LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            resolved = (page.parent / target.split("#")[0]).resolve()
            if not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


_MODULE_PATH = re.compile(r"`((?:tracking|recsys|devstack|demo|bench)/[\w./*-]+)`")


def test_module_paths_named_in_the_readme_and_docs_exist():
    # The README's "Where a pushed list is computed" walk and docs/architecture.md must name
    # modules that exist, or a newcomer follows them into nothing.
    missing = []
    for page in _doc_pages():
        if not page.exists():
            continue
        for path in _MODULE_PATH.findall(page.read_text()):
            path = path.rstrip(".")
            if path.startswith("bench/out/"):  # ignored by git: what benches and evaluations write
                continue
            if not any(ROOT.glob(path)):
                missing.append(f"{page.relative_to(ROOT)}: {path}")
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)
