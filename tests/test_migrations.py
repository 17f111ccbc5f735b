"""The models and their migrations agree (a model change without its migration fails here)."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db  # makemigrations checks the migration history's consistency
def test_every_model_change_has_its_migration():
    out = io.StringIO()
    # --check exits non-zero (SystemExit) when a migration is missing; --dry-run writes nothing.
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    assert "No changes detected" in out.getvalue()
