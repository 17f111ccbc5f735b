"""recsys.dbbackend: the pool hands out the connection returned last (Django's backend otherwise)."""
from __future__ import annotations

import pytest
from django.db import connection, connections
from psycopg_pool import ConnectionPool

from recsys.dbbackend.base import DatabaseWrapper, LastInFirstOutPool


def test_the_demo_runs_on_it_and_its_pool_is_last_in_first_out():
    wrapper = connections["default"]
    assert isinstance(wrapper, DatabaseWrapper) and wrapper.vendor == "postgresql"
    assert type(wrapper.pool) is LastInFirstOutPool


@pytest.fixture
def pool(django_db_setup):
    params = connection.get_connection_params()
    p = LastInFirstOutPool(kwargs={**params, "autocommit": True}, min_size=3, max_size=3, open=False)
    p.open(wait=True, timeout=30)
    yield p
    p.close()


def backend_pid(conn) -> int:
    return conn.info.backend_pid


def test_the_connection_returned_last_is_handed_out_first(pool):
    a, b, c = pool.getconn(), pool.getconn(), pool.getconn()
    for conn in (a, b, c):
        pool.putconn(conn)
    first = pool.getconn()
    assert backend_pid(first) == backend_pid(c)  # psycopg_pool's own order would give a
    second = pool.getconn()
    assert backend_pid(second) == backend_pid(b)
    pool.putconn(second)
    pool.putconn(first)
    assert backend_pid(pool.getconn()) == backend_pid(c)


def test_the_plain_pool_hands_them_out_oldest_first(django_db_setup):
    # What the subclass changes: if psycopg_pool ever takes from the other end itself, this fails
    # and the subclass is to be dropped (it would then undo it).
    params = connection.get_connection_params()
    plain = ConnectionPool(kwargs={**params, "autocommit": True}, min_size=2, max_size=2, open=False)
    plain.open(wait=True, timeout=30)
    try:
        a, b = plain.getconn(), plain.getconn()
        plain.putconn(a)
        plain.putconn(b)
        assert backend_pid(plain.getconn()) == backend_pid(a)
    finally:
        plain.close()
