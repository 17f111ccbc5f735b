"""LiveRec recommendations: encoders, the interest model, strategies, the engine, live push.

``recsys.register(Model, title=..., text=..., categories=...)`` makes a host model a
source of catalogue items (call it from your AppConfig.ready()).
"""


def register(model, **kwargs):
    # Imported here: ``import recsys`` (settings, INSTALLED_APPS) must not load Django's models.
    from .adapters import register

    return register(model, **kwargs)
