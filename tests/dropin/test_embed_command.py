"""``recsys_embed`` with no worker on the batch queue says so at once and gives up, instead of
waiting silently for half an hour."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


def test_embedding_with_no_batch_worker_says_it_is_waiting_then_fails_with_the_command(film_factory):
    from celery import current_app

    film_factory("Alien", ["Sci-Fi"])
    out = io.StringIO()
    try:
        with pytest.raises(CommandError, match="no Celery worker consumes the liverec.batch queue"):
            call_command("recsys_embed", "--worker-timeout", "1", stdout=out)
    finally:
        current_app.control.purge()  # the enqueued embedding jobs: no worker of this test takes them
    assert "waiting for a worker on liverec.batch…" in out.getvalue()
