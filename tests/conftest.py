from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


_STACK_STARTED = False


@pytest.fixture(scope="session")
def stack(django_db_setup, django_db_blocker):
    """Real Celery workers (realtime + batch) and a real uvicorn on the test database."""
    from django.db import connection

    from tests.stack import start_stack

    with django_db_blocker.unblock():
        settings_dict = dict(connection.settings_dict)
    s = start_stack(settings_dict)
    global _STACK_STARTED
    _STACK_STARTED = True
    yield s
    s.stop()
    # A killed worker's backend can outlive it for a moment; the test database must be droppable.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture
def realtime_worker_idle_after(stack):
    """Let the realtime worker finish (trailing pushes are timers, which the database check in
    ``pytest_runtest_teardown`` cannot see) before the test's tables are flushed."""
    yield
    import time

    from recsys.conf import settings as liverec
    from recsys.tasks import health_probe

    time.sleep(2 * liverec.PUSH_DEBOUNCE_MS / 1000)
    health_probe.apply_async().get(timeout=60)  # the solo worker runs it after what it is doing


@pytest.fixture
def film_factory(db):
    """Creates demo films; their items are upserted through the adapter (post_save)."""
    from demo.catalogue.models import Film

    counter = {"n": 10000}

    def make(title: str, genres: list[str], year: int = 1995, ml_id: int | None = None):
        counter["n"] += 1
        return Film.objects.create(ml_id=ml_id or counter["n"], title=title, year=year, genres=genres)

    return make


@pytest.fixture
def embedded_catalogue(transactional_db, film_factory):
    """A small catalogue of two clearly different tastes, embedded in-process by the real encoder."""
    from recsys.models import Item
    from recsys.services import items

    films = [
        ("Toy Story", ["Animation", "Children's", "Comedy"]),
        ("Aladdin", ["Animation", "Children's", "Musical"]),
        ("The Lion King", ["Animation", "Children's", "Musical"]),
        ("Pinocchio", ["Animation", "Children's"]),
        ("Cinderella", ["Animation", "Children's", "Musical"]),
        ("Alien", ["Horror", "Sci-Fi", "Thriller"]),
        ("Aliens", ["Action", "Sci-Fi", "Thriller", "War"]),
        ("The Terminator", ["Action", "Sci-Fi", "Thriller"]),
        ("Star Wars", ["Action", "Adventure", "Sci-Fi", "War"]),
        ("Blade Runner", ["Film-Noir", "Sci-Fi"]),
        ("Casablanca", ["Drama", "Romance", "War"]),
        ("Fargo", ["Crime", "Drama", "Thriller"]),
    ]
    made = [film_factory(t, g, ml_id=i + 1) for i, (t, g) in enumerate(films)]
    items.embed_items(list(Item.objects.values_list("pk", flat=True)))
    return made


def _quiesce_test_database(settings_dict: dict, timeout: float = 10.0) -> None:
    """Wait until no other session is mid-statement or mid-transaction on the test database.

    pytest-django flushes with TRUNCATE, which deadlocks against a worker still folding or
    pushing for the test that just ended (seen under load). Workers that stay busy past the
    timeout have their transaction cancelled: the task fails harmlessly (the projection
    rolls back with its cursor) and the next test starts from a clean database.
    """
    import time

    import psycopg

    conninfo = {"dbname": settings_dict["NAME"], "user": settings_dict.get("USER") or None,
                "host": settings_dict.get("HOST") or None, "port": settings_dict.get("PORT") or None,
                "password": settings_dict.get("PASSWORD") or None}
    busy_sql = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')")
    with psycopg.connect(**{k: v for k, v in conninfo.items() if v}, autocommit=True) as conn:
        deadline, quiet = time.monotonic() + timeout, 0
        while time.monotonic() < deadline and quiet < 2:
            quiet = quiet + 1 if not conn.execute(busy_sql).fetchall() else 0
            time.sleep(0.05)
        if quiet < 2:
            conn.execute(f"SELECT pg_cancel_backend(pid) FROM ({busy_sql}) busy")


def _flushes_database(item) -> bool:
    """A transactional test: pytest-django empties the database with TRUNCATE afterwards."""
    names = getattr(item, "fixturenames", ())
    if "transactional_db" in names or "live_server" in names:
        return True
    marker = item.get_closest_marker("django_db")
    return bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    # Runs before the fixtures' finalizers, so before pytest-django's flush. Once the shared
    # workers run, any transactional test may have handed them work (a saved film enqueues its
    # embedding, an event its fold), so every such test waits for them before the TRUNCATE.
    if _STACK_STARTED and _flushes_database(item):
        from django.db import connection

        _wait_for_a_queued_association_fold()
        _quiesce_test_database(dict(connection.settings_dict))
        _lose_deadlocks_to_workers(connection)
    yield


def _wait_for_a_queued_association_fold() -> None:
    """A fold the test's events asked for reaches the batch worker ASSOCIATION_FOLD_INTERVAL_MS
    later: wait until it has started (it releases its flag then, and the quiet check below
    sees its transaction). Flushed before it, the next test's tables got the pairs and
    popularity of this test's events (a "For you" list led by another test's film)."""
    import time

    from django.core.cache import cache

    from recsys.conf import settings as liverec
    from recsys.services.cooccurrence import FOLD_QUEUED_FLAG

    deadline = time.monotonic() + liverec.ASSOCIATION_FOLD_INTERVAL_MS / 1000.0 + 3.0
    while cache.get(FOLD_QUEUED_FLAG) is not None and time.monotonic() < deadline:
        time.sleep(0.05)


def _lose_deadlocks_to_workers(connection) -> None:
    """Make a worker, not the flush, the side PostgreSQL cancels if they still deadlock.

    A task can start between the quiet check and the TRUNCATE (a fold the test's last event
    asked for reaches the batch worker a moment later): the TRUNCATE then takes its table locks
    one by one while the worker holds one it needs, and PostgreSQL aborts whichever waiter runs
    its deadlock check first, after ``deadlock_timeout`` (1 s). Seen once: the test's flush was
    the one aborted and the test errored at teardown. With a longer timeout in this database session the
    worker's check fires first; its task fails and rolls back, harmlessly, as when
    ``_quiesce_test_database`` cancels one.
    Setting it needs a superuser (the embedded server's user); elsewhere it is left as it is.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('deadlock_timeout', '20s', false) FROM pg_roles "
                       "WHERE rolname = current_user AND rolsuper")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with an empty shared cache (trending lists, config generation, rate
    counters, push signatures) and this process's config copies dropped: each test's database
    starts empty, so nothing cached from an earlier test may answer for it. The cache has its
    own Redis database (settings.CACHE_URL), so this never touches the Celery queues."""
    from django.core.cache import cache

    from recsys import configcache, neighbours
    from recsys.services import sequential
    from recsys.strategies import trending

    cache.clear()
    trending._local.clear()
    neighbours.forget_all()
    sequential.forget_checks()
    with configcache._lock:
        configcache._snapshot["generation"] = None
    yield
