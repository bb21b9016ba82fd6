"""A real database outage for fault tests: connections terminated, new ones refused."""

from __future__ import annotations

import contextlib
import time

from django.db import connection


@contextlib.contextmanager
def database_outage(*, keep_mine: bool = True):
    """Every connection to the test database is terminated and no new one is admitted until the end; with
    ``keep_mine`` this thread's connection stays (to look at the table meanwhile), else it fails too and is
    reopened afterwards."""
    import psycopg

    name = connection.settings_dict["NAME"]
    params = {**connection.get_connection_params(), "dbname": "postgres", "autocommit": True}
    params.pop("cursor_factory", None)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        mine = cur.fetchone()[0]
    with psycopg.connect(**params) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
            [name, mine if keep_mine else -1],
        )
        deadline = time.monotonic() + 20
        while admin.execute(  # terminating is asynchronous: wait until they are gone
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> %s", [name, mine if keep_mine else -1]
        ).fetchone()[0]:
            if time.monotonic() > deadline:
                raise AssertionError("the test database's connections did not end")
            time.sleep(0.05)
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            if not keep_mine:
                connection.close()
