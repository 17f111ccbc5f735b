"""Writes of A/B experiments: create, start, stop, promote the winner (publishes its config)."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import selectors
from ..models import Experiment, SlotConfig
from . import audit, publishing


def _clean_arms(slot: str, arms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(arms, list) or len(arms) < 2:
        raise ValidationError("an experiment needs two or more arms")
    names, out = set(), []
    for i, arm in enumerate(arms):
        name = str(arm.get("name") or "").strip() or chr(ord("A") + i)
        if name in names:
            raise ValidationError(f"arm names must differ ({name!r} is used twice)")
        names.add(name)
        try:
            weight = float(arm.get("weight", 1))
        except (TypeError, ValueError):
            raise ValidationError(f"arm {name}: weight must be a number") from None
        if weight < 0:
            raise ValidationError(f"arm {name}: weight must not be negative")
        clean: dict[str, Any] = {"name": name, "weight": weight}
        if arm.get("config"):
            clean["config"] = publishing.validate_slot_config(arm["config"])
        elif arm.get("version") not in (None, ""):
            version = int(arm["version"])
            if not SlotConfig.objects.filter(slot=slot, version=version).exists():
                valid = list(SlotConfig.objects.filter(slot=slot).values_list("version", flat=True))
                raise ValidationError(f"arm {name}: slot {slot!r} has no version {version}; versions: {valid}")
            clean["version"] = version
        else:
            raise ValidationError(f"arm {name}: give a published version or an inline config")
        out.append(clean)
    if sum(a["weight"] for a in out) <= 0:
        raise ValidationError("arm weights must not all be zero")
    return out


def create_experiment(name: str, slot: str, arms: list[dict[str, Any]], *, user: str) -> Experiment:
    if slot not in publishing.slot_names():
        raise ValidationError(f"unknown slot {slot!r}; slots: {publishing.slot_names()}")
    if not name.strip():
        raise ValidationError("name the experiment")
    if Experiment.objects.filter(name=name.strip()).exists():
        raise ValidationError(f"an experiment named {name.strip()!r} exists")
    exp = Experiment.objects.create(name=name.strip(), slot=slot, arms=_clean_arms(slot, arms), created_by=user)
    audit.record(user, "create_experiment", str(exp), {"slot": slot, "arms": exp.arms})
    return exp


def start_experiment(experiment_id: int, *, user: str) -> Experiment:
    exp = Experiment.objects.get(pk=experiment_id)
    if exp.status != Experiment.Status.DRAFT:
        raise ValidationError(f"only a draft can start; this one is {exp.status}")
    exp.status, exp.started_at = Experiment.Status.RUNNING, timezone.now()
    try:
        with transaction.atomic():
            exp.save(update_fields=["status", "started_at"])
    except IntegrityError:
        raise ValidationError(f"slot {exp.slot!r} already has a running experiment; stop it first") from None
    audit.record(user, "start_experiment", str(exp))
    return exp


def stop_experiment(experiment_id: int, *, user: str) -> Experiment:
    exp = Experiment.objects.get(pk=experiment_id)
    if exp.status != Experiment.Status.RUNNING:
        raise ValidationError(f"only a running experiment can stop; this one is {exp.status}")
    exp.status, exp.stopped_at = Experiment.Status.STOPPED, timezone.now()
    exp.save(update_fields=["status", "stopped_at"])
    audit.record(user, "stop_experiment", str(exp))
    return exp


@transaction.atomic
def promote_arm(experiment_id: int, arm_name: str, *, user: str) -> SlotConfig:
    """Stop the experiment and publish the arm's config as the slot's new live version."""
    exp = Experiment.objects.select_for_update().get(pk=experiment_id)
    arm = next((a for a in exp.arms if a["name"] == arm_name), None)
    if arm is None:
        raise ValidationError(f"no arm {arm_name!r}; arms: {[a['name'] for a in exp.arms]}")
    config = selectors.arm_config(exp.slot, arm)
    if config is None:
        raise ValidationError(f"arm {arm_name!r} has no config to publish")
    if exp.status == Experiment.Status.RUNNING:
        exp.stopped_at = timezone.now()
    exp.status, exp.winner = Experiment.Status.STOPPED, arm_name
    exp.save(update_fields=["status", "stopped_at", "winner"])
    row = publishing.publish_slot_config(exp.slot, config, user=user, note=f"winner {arm_name} of experiment {exp.name}",
                                     action="promote_arm")
    audit.record(user, "promote_experiment", str(exp), {"winner": arm_name, "published": str(row)})
    return row
