"""Production profile of the demo shop: ``DJANGO_SETTINGS_MODULE=shop.settings_production``.

Everything that differs from a developer's machine comes from the environment, and nothing has a default that would
be wrong in production: without ``DATABASE_URL``, ``CELERY_BROKER_URL``, ``DJANGO_SECRET_KEY`` or
``DJANGO_ALLOWED_HOSTS`` the process stops at once with a message naming what to set (it never starts the embedded
servers, which are for the demo and the tests only). ``manage.py check --deploy`` passes with no warning.

It assumes HTTPS, by default behind one reverse proxy (nginx, a load balancer) that terminates TLS, sets
``X-Forwarded-Proto`` (overwriting whatever the client sent) and appends the client's address to
``X-Forwarded-For``. With ``DJANGO_TRUSTED_PROXIES=0`` the web server faces clients itself and must terminate TLS.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

REQUIRED = {
    "DATABASE_URL": "postgresql://user:password@host:5432/db, a PostgreSQL server with the pgvector extension",
    "CELERY_BROKER_URL": "redis://host:6379/0",
    "DJANGO_SECRET_KEY": "a random key of at least 50 characters, e.g. from "
    "python -c 'import secrets; print(secrets.token_urlsafe(50))'",
    "DJANGO_ALLOWED_HOSTS": "the shop's host names, comma-separated, e.g. shop.example.com,www.shop.example.com",
}

_missing = [name for name in REQUIRED if not os.environ.get(name, "").strip()]
if _missing:  # before shop.settings, so that every missing one is named at once
    raise ImproperlyConfigured(
        "shop.settings_production needs these environment variables, unset now:\n"
        + "\n".join(f"  {name}: {REQUIRED[name]}" for name in _missing)
    )

from shop.settings import *  # noqa: E402, F403
from shop.settings import ADENGINE, env_bool  # noqa: E402


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


DEBUG = False
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]  # adengine.E008 refuses the demo's key and any key under 50 characters
ALLOWED_HOSTS = [h.strip() for h in os.environ["DJANGO_ALLOWED_HOSTS"].split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
CELERY_TASK_ALWAYS_EAGER = False

# --- HTTPS -------------------------------------------------------------------------------------------------------
TRUSTED_PROXIES = _env_int("DJANGO_TRUSTED_PROXIES", 1)
if TRUSTED_PROXIES:
    # the proxy says whether the client used HTTPS; safe only because the proxy overwrites the client's header
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]  # a load balancer's plain-HTTP health check, if the shop adds one
SECURE_HSTS_SECONDS = _env_int("DJANGO_HSTS_SECONDS", 31536000)  # a year; start lower while trying HTTPS out
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- adengine ----------------------------------------------------------------------------------------------------
# the same proxies: the client is read from the right end of X-Forwarded-For, never from what the client wrote
ADENGINE = {**ADENGINE, "TRUSTED_PROXIES": TRUSTED_PROXIES}
