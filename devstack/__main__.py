"""``python -m devstack run -- CMD`` | ``python -m devstack demo``.

``run`` starts the backing services, runs CMD with DATABASE_URL and REDIS_URL set,
then stops what it started and exits with CMD's status. ``demo`` also migrates,
imports the MovieLens-100K catalogue (first run only: later runs reuse it) and
serves the site with its Celery workers and beat until Ctrl-C.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from .services import REPO_ROOT, start_all, stack_dir, wait_for_port
from .supervisor import CrashLoop, Supervisor

# One thread each: on 2 shared cores, 2 torch threads ran 5x slower (measured).
THREAD_ENV = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
}


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(THREAD_ENV)
    env.update(extra)
    env.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    # A key of this checkout's own (never one from the repository), kept with the embedded
    # servers so cookies and sessions outlive a restart.
    env.setdefault("SECRET_KEY", _stack_secret_key())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _stack_secret_key() -> str:
    import secrets

    path = stack_dir() / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


def worker_commands(python: str, realtime: int | None = None, *, summaries: bool = True) -> list[tuple[str, list[str]]]:
    """The Celery processes: realtime workers for per-event work, a batch worker for item
    embeddings and the association/trending fold, and a summaries worker for the LLM's
    visitor summaries (``summaries=False`` leaves it out, for a site without them).

    Summaries have a queue and a worker of their own: at ~2 s of CPU each, a burst of visitors
    once queued 978 of them ahead of an item embedding and 38 association folds on a shared
    batch queue (a film saved was still not embedded 8 minutes later). Celery's Redis
    transport has no strict queue priority (a worker consuming two queues takes from both in
    turn), so only a separate worker makes "never behind a summary" hold.

    Two realtime workers by default (``LIVEREC_RT_WORKERS``): folds serialise on the
    projection cursor, but the rankings of the visitors a fold touched, most of a push's
    cost, then run on both cores, and one long cycle does not hold every push. Under
    bench_freshness's 200 events/s from 50 live visitors, on equal data
    (``bench/bench_freshness.py --load-only --rt-workers 1`` against the default), one
    worker gives the same p50, no worse a p99, for 20% less CPU per push (its cycles rank two
    visitors where two workers' rank one), so ``LIVEREC_RT_WORKERS=1`` suits a machine whose
    cores the site itself needs; under burstier load one worker falls behind.
    """
    count = realtime if realtime is not None else int(os.environ.get("LIVEREC_RT_WORKERS", "2"))
    celery = [python, "-m", "celery", "-A", "demo"]
    rt = [(f"rt{i}" if count > 1 else "rt",
           celery + ["worker", "-Q", "liverec.realtime", "-P", "solo", "-n", f"rt{i if count > 1 else ''}@%h",
                     "-l", "warning"]) for i in range(1, count + 1)]
    # The batch worker runs its tasks in one pool child that Celery replaces after a task once
    # the child's resident memory passes LIVEREC_BATCH_MAX_MEMORY_MB: the LLM (xllamacpp) and
    # torch keep allocator arenas that never shrink, and bench_soak saw the solo batch worker
    # grow 568 -> 847 MB in 10 minutes of summaries. A replacement reloads the models lazily.
    limit_kb = int(float(os.environ.get("LIVEREC_BATCH_MAX_MEMORY_MB", "700")) * 1024)
    # At a lower CPU priority (LIVEREC_BATCH_NICE, default 10): an LLM summary is ~2 s of a
    # core and 50 live visitors ask for close to one a second, so an equal-priority batch
    # worker took a core the pushes needed (bench_freshness under load). Background work
    # still gets every cycle the realtime path leaves idle. Each service runs in a process
    # session of its own (setsid), and with Linux's autogroup scheduling a nice value weighs only
    # inside its session: the worker also weighs its session, and its PostgreSQL backends, as niced
    # (devstack.priority, at start-up and per connection).
    nice = int(os.environ.get("LIVEREC_BATCH_NICE", "10"))
    batch = (["nice", "-n", str(nice)] if nice else []) + celery + ["worker", "-Q", "liverec.batch", "-P", "prefork", "-c", "1",
                      f"--max-memory-per-child={limit_kb}", "-n", "batch@%h", "-l", "warning"]
    out = rt + [("batch", batch)]
    if summaries:
        # Lower still (LIVEREC_SUMMARIES_NICE, default 15): a summary is the least urgent work.
        snice = int(os.environ.get("LIVEREC_SUMMARIES_NICE", "15"))
        out.append(("summ", (["nice", "-n", str(snice)] if snice else []) + celery + [
            "worker", "-Q", "liverec.summaries", "-P", "prefork", "-c", "1", f"--max-memory-per-child={limit_kb}",
            "-n", "summaries@%h", "-l", "warning"]))
    return out


def supervisor(env: dict[str, str], **kwargs) -> Supervisor:
    """The demo's supervisor: restarts after LIVEREC_RESTART_BACKOFF_SECONDS (default 1, doubling
    to 30), gives up on a crash loop of LIVEREC_CRASH_LOOP restarts/seconds (default "5/120")."""
    limit, _, window = os.environ.get("LIVEREC_CRASH_LOOP", "5/120").partition("/")
    kwargs.setdefault("backoff", float(os.environ.get("LIVEREC_RESTART_BACKOFF_SECONDS", "1")))
    kwargs.setdefault("crash_loop", (int(limit), float(window or 120)))
    return Supervisor(env, **kwargs)


def cmd_run(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m devstack run -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    services = start_all()
    try:
        proc = subprocess.Popen(argv, env=child_env(services.env), cwd=REPO_ROOT)
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                proc.send_signal(signal.SIGINT)
    finally:
        _ignore_signals()
        services.stop()


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def cmd_demo(port: int) -> int:
    services = start_all()
    env = child_env(services.env)
    env.setdefault("DEBUG", "1")  # the demo's own entry point, and only it, turns debug on
    python = sys.executable
    sup = supervisor(env)
    try:
        subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=REPO_ROOT)
        for name, cmd in worker_commands(python):
            sup.start(name, cmd)
        # Import needs the batch worker: it embeds the catalogue and shows progress.
        subprocess.run([python, "manage.py", "demo_import"], env=env, check=True, cwd=REPO_ROOT)
        sup.start("beat", [python, "-m", "celery", "-A", "demo", "beat", "-l", "warning",
                           "-s", str(stack_dir() / "celerybeat-schedule")])
        # No proxy in front: X-Forwarded-For is the client's word (see docs/security.md).
        sup.start("web", [python, "-m", "uvicorn", "demo.asgi:application", "--host", "127.0.0.1",
                          "--port", str(port), "--log-level", "warning", "--no-proxy-headers"])
        wait_for_port("127.0.0.1", port)
        print(f"\n  LiveRec demo: http://127.0.0.1:{port}/   health: http://127.0.0.1:{port}/liverec/health/"
              f"   admin: http://127.0.0.1:{port}/admin/ (user admin / password admin)\n  Ctrl-C stops everything.\n",
              flush=True)
        while True:
            sup.poll()  # restarts a crashed child after its backoff; raises on a crash loop
            time.sleep(0.2)
    except CrashLoop as exc:
        print(f"devstack: {exc}", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\ndevstack: stopping", flush=True)
        return 0
    finally:
        _ignore_signals()  # a second Ctrl-C must not abort the clean-up and orphan processes
        sup.stop()
        services.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run a command with the services up")
    demo = sub.add_parser("demo", help="serve the demo site with the whole stack")
    demo.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args, rest = parser.parse_known_args()
    # SIGTERM (CI, make) stops everything the same way as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if args.command == "run":
        return cmd_run(rest)
    return cmd_demo(args.port)


if __name__ == "__main__":
    sys.exit(main())
