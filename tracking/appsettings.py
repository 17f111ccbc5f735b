"""A small DRF-style settings object: one dict setting per app, defaults, lazy imports.

Shared by ``tracking.conf`` and ``recsys.conf`` so both apps read their settings one way.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string


class AppSettings:
    """Attribute access to ``settings.<setting_name>`` merged over ``defaults``.

    Keys in ``import_strings`` hold dotted paths (or lists of them) that are imported
    on first access. ``reload()`` runs on ``setting_changed`` so tests can override.
    """

    def __init__(self, setting_name: str, defaults: dict[str, Any], import_strings: tuple[str, ...] = ()):
        self.setting_name = setting_name
        self.defaults = defaults
        self.import_strings = import_strings
        self._cached: set[str] = set()
        setting_changed.connect(self._on_setting_changed, weak=False)

    @property
    def user_settings(self) -> dict[str, Any]:
        if not hasattr(self, "_user_settings"):
            self._user_settings = getattr(django_settings, self.setting_name, {}) or {}
            unknown = set(self._user_settings) - set(self.defaults)
            if unknown:
                from django.core.exceptions import ImproperlyConfigured

                raise ImproperlyConfigured(
                    f"{self.setting_name} has unknown keys {sorted(unknown)}; valid keys: {sorted(self.defaults)}"
                )
        return self._user_settings

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_") or attr not in self.defaults:
            raise AttributeError(f"Invalid {self.setting_name} key: {attr!r}")
        value = self.user_settings.get(attr, self.defaults[attr])
        if isinstance(value, dict) and isinstance(self.defaults[attr], dict):
            value = {**self.defaults[attr], **value}
        if attr in self.import_strings:
            value = self._import(attr, value)
        self._cached.add(attr)
        setattr(self, attr, value)
        return value

    def _import(self, attr: str, value: Any) -> Any:
        try:
            if isinstance(value, str):
                return import_string(value)
            if isinstance(value, (list, tuple)):
                return [import_string(v) if isinstance(v, str) else v for v in value]
        except ImportError as exc:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(f"{self.setting_name}['{attr}'] = {value!r} cannot be imported: {exc}") from exc
        return value

    def reload(self) -> None:
        for attr in self._cached:
            self.__dict__.pop(attr, None)
        self._cached.clear()
        self.__dict__.pop("_user_settings", None)

    def _on_setting_changed(self, *, setting: str, **kwargs: Any) -> None:
        if setting == self.setting_name:
            self.reload()
