"""adengine's AppConfig: system checks and signal handlers are connected in ready()."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AdengineConfig(AppConfig):
    name = "adengine"
    verbose_name = _("Ad engine")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            signal_handlers,
        )

        signal_handlers.connect()
        # the shopper indexes are HNSW indexes on an expression with an operator class (OpClass), which Django
        # renders correctly once OpClass is an index wrapper: what django.contrib.postgres's ready() registers,
        # done here too so that the host need not install that app
        from django.contrib.postgres.indexes import OpClass
        from django.db.models.expressions import OrderBy
        from django.db.models.functions import Collate
        from django.db.models.indexes import IndexExpression

        IndexExpression.register_wrappers(OrderBy, OpClass, Collate)
        # adengine's queues, routes and periodic tasks in the host's Celery app, before a worker selects its
        # queues and before beat reads its schedule (both start Django first)
        from celery import current_app

        from . import queues

        queues.install(current_app)
        # the impression log writes what is pending when the process is told to stop (SIGTERM, uWSGI's atexit)
        from .conf import settings as ad_settings

        if ad_settings.SERVING_LOG_SIGNALS:
            from .serving.log import install_shutdown_hooks

            install_shutdown_hooks()
