"""Database helpers shared by migrations and queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from pgvector.django import VectorExtension


@contextmanager
def try_advisory_lock(key: int) -> Iterator[bool]:
    """A PostgreSQL session advisory lock, if free: yields whether this process got it (released at the end), so a
    job that another process is already running can skip."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
        got = cur.fetchone()[0]
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [key])


class PgvectorExtension(VectorExtension):
    """``CREATE EXTENSION vector``, with an error that names the fix when the server lacks pgvector."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        conn = schema_editor.connection
        if conn.vendor != "postgresql":
            raise ImproperlyConfigured(
                f"adengine needs PostgreSQL with pgvector, not {conn.vendor}. Set DATABASE_URL to such a "
                "server, or unset it to use the embedded PostgreSQL."
            )
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            available = cur.fetchone() is not None
        if not available:
            raise ImproperlyConfigured(
                f"The PostgreSQL server behind database {conn.alias!r} does not have the pgvector "
                "extension. Install it on that server (Debian: postgresql-NN-pgvector; see "
                "https://github.com/pgvector/pgvector) or unset DATABASE_URL to use the embedded "
                "PostgreSQL, which ships it."
            )
        super().database_forwards(app_label, schema_editor, from_state, to_state)


def activate_one(model, version: str | None):
    """Make the row of ``model`` (a versioned model with ``version`` and ``is_active``) named ``version`` the only
    active one; None: none is. Returns the activated row (or None)."""
    from django.db import transaction

    with transaction.atomic():
        model.objects.filter(is_active=True).update(is_active=False)
        if version is None:
            return None
        row = model.objects.select_for_update().get(version=version)
        row.is_active = True
        row.save(update_fields=["is_active"])
        return row
