"""The embedded services are real: PostgreSQL with pgvector, Redis as Celery's broker."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection


@pytest.mark.django_db
def test_database_is_postgresql_with_pgvector():
    # given the test database
    # when we ask PostgreSQL for the vector extension
    with connection.cursor() as cur:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cur.fetchone()
    # then it is installed (by adengine's first migration)
    assert connection.vendor == "postgresql"
    assert row is not None and row[0].startswith("0.8")


def test_broker_is_a_real_redis_server():
    import redis

    url = settings.CELERY_BROKER_URL
    assert url.startswith(("redis://", "redis+socket://", "rediss://"))
    client = (
        redis.Redis(unix_socket_path=url.removeprefix("redis+socket://"))
        if "socket" in url
        else (redis.Redis.from_url(url))
    )
    assert client.ping() is True


@pytest.mark.django_db(databases=["default", "replica"])  # it checks the history of every database
def test_no_missing_migrations():
    # makemigrations --check exits non-zero when models and migrations disagree
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
