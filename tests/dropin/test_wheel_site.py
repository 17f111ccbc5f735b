"""The bar: a newcomer's site from the wheel, following docs/quickstart.md literally.

Builds the wheel, installs it into a fresh virtualenv (no system site-packages: the wheel's
declared dependencies are the proof), creates ``mysite`` with ``django-admin startproject``
plus the example's products app, applies the quick-start page's code blocks, runs its commands
(``check`` with no errors, the Celery workers, beat and uvicorn) against the real PostgreSQL
+ pgvector and Valkey, and in Chromium views three products and sees the widget update over
its WebSocket. torch is installed first from its pinned CPU build, as the page says.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.dropin import quickstart
from tests.stack import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
TORCH = "torch==2.13.0"
DATABASE = "liverec_wheel_site"
# Valkey databases of their own: the suite's workers consume the same queue names on db 0.
BROKER_DB, CACHE_DB = 5, 6
pytestmark = [pytest.mark.browser, pytest.mark.stack]
VIEWED = ["Two-Person Dome Tent", "Down Sleeping Bag", "Camp Stove"]


def run(cmd: list[str], cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{shlex.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def redis_url(db: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))._replace(path=f"/{db}"))


@pytest.fixture
def database():
    """An empty database of its own on the suite's PostgreSQL server (the PG* variables the page reads)."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    admin = dict(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None)
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    yield {"PGDATABASE": DATABASE, "PGHOST": str(admin["host"]), "PGPORT": str(admin["port"]),
           "PGUSER": admin["user"] or "", "PGPASSWORD": admin["password"] or ""}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


@pytest.fixture
def flushed_valkey():
    import redis

    for db in (BROKER_DB, CACHE_DB):
        redis.Redis.from_url(redis_url(db)).flushdb()
    yield


def clean_env() -> dict[str, str]:
    """The environment without the suite's own project on the path: with the repository on
    PYTHONPATH, pip finds its egg-info and takes django-liverec as installed already."""
    return {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "DATABASE_URL")}


def install_wheel(tmp: Path) -> Path:
    """The wheel in a fresh venv; returns its bin folder. Prints how long each step took."""
    started = time.monotonic()
    env = clean_env()
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
         str(ROOT)], cwd=tmp, env=env)
    [wheel] = (tmp / "dist").glob("django_liverec-*.whl")
    built = time.monotonic()
    run([sys.executable, "-m", "venv", str(tmp / "venv")], cwd=tmp, env=env)
    # --no-compile: byte-compiling torch's thousands of modules was most of its install time.
    pip = [str(tmp / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile"]
    run(pip + [TORCH], cwd=tmp, env=env)
    torch_done = time.monotonic()
    # The page's install line, with the package name pointing at the wheel just built.
    [install] = [c for c in quickstart.commands() if c.startswith("pip install")]
    requirement = shlex.split(install)[2]
    assert requirement.startswith("django-liverec")
    run(pip + [str(wheel) + requirement[len("django-liverec"):]], cwd=tmp, env=env)
    done = time.monotonic()
    print(f"wheel built in {built - started:.0f} s; fresh venv: torch {torch_done - built:.0f} s, "
          f"the wheel and its dependencies {done - torch_done:.0f} s")
    return tmp / "venv" / "bin"


class Services:
    """The long-running commands of the page, each in its own process group (stopped by group)."""

    def __init__(self, cwd: Path, env: dict, logs: Path):
        self.cwd, self.env, self.logs, self.procs = cwd, env, logs, []

    def start(self, name: str, argv: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "w")
        self.procs.append((name, subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                  start_new_session=True)))

    def exited(self) -> str | None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                return f"{name} exited {proc.returncode}:\n" + (self.logs / f"{name}.log").read_text()[-3000:]
        return None

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def get_json(url: str) -> tuple[int, dict]:
    import json
    from urllib.error import HTTPError

    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, json.load(resp)
    except HTTPError as exc:
        return exc.code, json.load(exc)
    except OSError:
        return 0, {}


def test_a_new_site_from_the_wheel_follows_the_quick_start_to_a_live_widget(tmp_path, database, flushed_valkey,
                                                                             browser_context, shots):
    started = time.monotonic()
    bin_dir = install_wheel(tmp_path)
    installed = time.monotonic()
    site = quickstart.new_site(tmp_path, str(bin_dir / "django-admin"))
    env = clean_env()
    env.update(database, REDIS_URL=redis_url(BROKER_DB), CACHE_URL=redis_url(CACHE_DB),
               PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    port = free_port()
    services = Services(site, env, tmp_path)
    try:
        # The page's commands, in its order: one-shot ones run to the end; workers, beat and the
        # server keep running (the page starts each in its own terminal).
        for line in quickstart.commands():
            argv = shlex.split(line)
            if argv[0] == "pip":
                continue  # done above, from the wheel
            if argv[0] == "python":
                argv[0] = str(bin_dir / "python")
            if argv[0] in ("celery", "uvicorn"):
                if argv[0] == "uvicorn":
                    argv += ["--host", "127.0.0.1", "--port", str(port)]
                services.start(f"{argv[0]}-{len(services.procs)}", [str(bin_dir / argv[0]), *argv[1:]])
                continue
            result = run(argv, cwd=site, env=env)
            if argv[-1] == "check":
                assert "ERRORS" not in result.stderr + result.stdout
                print(result.stdout.strip(), result.stderr.strip()[-1500:])
        # /liverec/health/: every part answers (the worker round trip included).
        deadline = time.monotonic() + 180
        while True:
            if services.exited():
                pytest.fail(services.exited())
            status, report = get_json(f"http://127.0.0.1:{port}/liverec/health/")
            if status == 200:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"/liverec/health/ answered {status}: {report}")
            time.sleep(1)
        assert report["ok"] is True
        ready = time.monotonic()

        # Tab one shows the first product and stays open; the visitor views two more in tab two.
        base = f"http://127.0.0.1:{port}"
        first = browser_context.new_page()
        first.goto(base + "/")
        first.get_by_role("link", name=VIEWED[0], exact=True).first.click()
        first.wait_for_function("() => document.querySelector('liverec-widget[slot=\"for-you\"]')?.hasAttribute('live')",
                                timeout=30000)
        other = browser_context.new_page()
        for title in VIEWED[1:]:
            other.goto(base + "/")
            other.get_by_role("link", name=title, exact=True).first.click()
            assert other.locator("h1").inner_text() == title
        # Tab one's widget, never reloaded, gets the new lists pushed over its WebSocket, the last
        # one without any of the three products viewed.
        first.wait_for_function("""viewed => { const w = document.querySelector('liverec-widget[slot="for-you"]');
            const titles = [...w.querySelectorAll('.liverec-list .liverec-link')].map(a => a.textContent);
            return +(w.dataset.updates || 0) >= 1 && titles.length > 0 && !titles.some(t => viewed.includes(t)); }""",
                                arg=VIEWED, timeout=60000)
        widget = first.locator('liverec-widget[slot="for-you"]')
        assert widget.get_attribute("polling") is None  # pushed, not polled
        titles = widget.locator(".liverec-list .liverec-link").all_inner_texts()
        camping = {"Ultralight Backpacking Tent", "Family Cabin Tent", "Synthetic Sleeping Bag",
                   "Inflatable Sleeping Pad", "Titanium Cook Pot", "Headlamp 400", "Hiking Backpack 50L"}
        assert camping & set(titles[:4]), titles
        page = first
        page.screenshot(path=str(shots / "wheel_site.png"), full_page=True)
        print(f"install {installed - started:.0f} s, then to a healthy site {ready - installed:.0f} s, whole test "
              f"{time.monotonic() - started:.0f} s;"
              f" widget: {titles}")
    finally:
        services.stop()
