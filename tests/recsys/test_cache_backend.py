"""``recsys.cache.RedisCache``: Django's Redis cache with one shared redis-py client, on the real
Redis/Valkey of the test run."""
from __future__ import annotations

import threading
import uuid

from django.conf import settings
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from recsys.cache import RedisCache


def _backends():
    location = settings.CACHES["default"]["LOCATION"]
    return RedisCache(location, {}), DjangoRedisCache(location, {})


def test_one_client_serves_every_call_and_the_data_is_djangos():
    ours, django_backend = _backends()
    key = f"cache-test-{uuid.uuid4().hex}"
    assert ours._cache.get_client(write=True) is ours._cache.get_client(key)
    ours.set(key, {"list": [1, 2]}, 30)
    assert django_backend.get(key) == {"list": [1, 2]}  # same keys and serialisation as Django's
    assert ours.add(key, "other", 30) is False  # already there
    assert ours.add(f"{key}:n", 0, 30) is True and ours.incr(f"{key}:n") == 1
    assert ours.get_many([key, f"{key}:n"]) == {key: {"list": [1, 2]}, f"{key}:n": 1}
    ours.delete_many([key, f"{key}:n"])
    assert django_backend.get(key) is None


def test_the_shared_client_is_safe_across_threads():
    ours, _ = _backends()
    key = f"cache-threads-{uuid.uuid4().hex}"
    ours.set(key, 0, 30)
    errors = []

    def bump():
        try:
            for _ in range(50):
                ours.incr(key)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and ours.get(key) == 400
    ours.delete(key)
