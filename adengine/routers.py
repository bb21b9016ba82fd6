"""Reports and exports on a read replica: a database router, and the scope in which it applies.

A shop that outgrows one PostgreSQL adds a streaming replica and lets the marketer's heavy reads go there, away
from the database that serves ads and takes clicks:

    DATABASES = {"default": ..., "replica": {..., "TEST": {"MIRROR": "default"}}}
    DATABASE_ROUTERS = ["adengine.routers.ReportsRouter"]
    ADENGINE = {..., "REPORTS_DATABASE": "replica"}

Only what runs inside ``reports()`` -- the report pages and their CSV exports, the campaign dashboard, the
advertiser API's statistics -- reads from ``REPORTS_DATABASE``; everything else, serving above all, reads and writes
the default database, and every write inside a report goes to the default database too. A replica lags its
primary by a moment: figures a second old are fine for a report, never for a budget.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections

from adengine.conf import settings as ad_settings

_in_reports: contextvars.ContextVar[bool] = contextvars.ContextVar("adengine_in_reports", default=False)


def reports_alias() -> str:
    """The database alias reports read from (the default database unless REPORTS_DATABASE names another)."""
    return ad_settings.REPORTS_DATABASE or DEFAULT_DB_ALIAS


def read_alias() -> str:
    """The alias reads go to here and now: REPORTS_DATABASE inside ``reports()``, else the default database."""
    return reports_alias() if _in_reports.get() else DEFAULT_DB_ALIAS


def read_connection():
    """The connection raw-SQL selectors read from (``read_alias()``): ``with read_connection().cursor() as cur``."""
    return connections[read_alias()]


@contextmanager
def reports() -> Iterator[None]:
    """Within it, reads (ORM, with ``ReportsRouter`` installed, and raw SQL through ``read_connection``) go to
    REPORTS_DATABASE."""
    token = _in_reports.set(True)
    try:
        yield
    finally:
        _in_reports.reset(token)


def for_reports(view: Callable) -> Callable:
    """A view (or any function) whose reads go to REPORTS_DATABASE."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        with reports():
            return view(*args, **kwargs)

    return wrapper


class ReportsRouter:
    """Sends reads inside ``reports()`` to REPORTS_DATABASE; has no opinion on anything else (other routers, or
    the default database, decide). Never migrates the replica: it copies its primary."""

    def db_for_read(self, model, **hints):
        if _in_reports.get():
            alias = reports_alias()
            return alias if alias != DEFAULT_DB_ALIAS else None
        return None

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS if _in_reports.get() and ad_settings.REPORTS_DATABASE else None

    def allow_relation(self, obj1, obj2, **hints):
        replica = ad_settings.REPORTS_DATABASE
        if replica and {obj1._state.db, obj2._state.db} <= {DEFAULT_DB_ALIAS, replica}:
            return True  # the same data, read from one or the other
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        replica = ad_settings.REPORTS_DATABASE
        return False if replica and db == replica and replica != DEFAULT_DB_ALIAS else None
