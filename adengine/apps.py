"""adengine's AppConfig: system checks and signal handlers are connected in ready()."""

from __future__ import annotations

from django.apps import AppConfig


class AdengineConfig(AppConfig):
    name = "adengine"
    verbose_name = "Ad engine"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            signal_handlers,
        )

        signal_handlers.connect()
