"""The system check that guards slot configurations."""
from __future__ import annotations

from django.test import override_settings

from recsys.checks import check_slots
from recsys.conf import DEFAULTS


def test_default_slots_pass_and_an_unknown_strategy_is_named_with_the_valid_ones():
    assert check_slots(None) == []
    bad = {**DEFAULTS["SLOTS"], "for-you": {"strategies": {"content/interest": 1.0}}}
    with override_settings(LIVEREC={"SLOTS": bad}):
        (error,) = check_slots(None)
    assert error.id == "recsys.E005" and "content/interest" in error.msg and "content/interests" in error.hint
