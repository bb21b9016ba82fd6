"""Settings of the demo shop: an ordinary Django shop with adengine plugged in.

Everything comes from the environment with sane defaults; importing it starts nothing. ``DATABASE_URL``,
``CELERY_BROKER_URL`` and ``DJANGO_SECRET_KEY`` must be set: the demo's entry points (``make demo``, ``make test``,
``manage.py``, ``python -m shop.embedded run -- COMMAND``) start the embedded PostgreSQL (with pgvector) and Redis and
set them, the key to the demo's own random one (``.data/secret_key``). There is no fallback key: one written here
would be public, and anyone could sign adengine's billed click links with it.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean from the environment ("1", "true", "yes" are true)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


_missing = [name for name in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY") if not os.environ.get(name)]
if _missing:
    raise ImproperlyConfigured(
        f"{', '.join(_missing[:-1]) + ' and ' if len(_missing) > 1 else ''}{_missing[-1]} not set: run the demo "
        "through `make demo`, `manage.py` or `python -m shop.embedded run -- COMMAND` (they start the embedded "
        "PostgreSQL and Redis and use the demo's own random key, kept in .data/secret_key), or set them yourself "
        "(`python -m shop.embedded urls` prints the demo's)."
    )

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from the shop itself: the docs work offline
    "shop",
    "adengine",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.shop",
            ],
        },
    }
]

DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "adengine-demo",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".data" / "static"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# --- Celery (the demo's worker and beat; adengine's tasks run here) ---------------------------
CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# adengine adds visibility_timeout (its longest task's time limit + 10 min) unless it is set here
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_timeout": 2, "socket_connect_timeout": 2}
if os.environ.get("CELERY_VISIBILITY_TIMEOUT"):
    CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = int(os.environ["CELERY_VISIBILITY_TIMEOUT"])
# a worker outlives broker outages: it retries the connection for ever, at start-up too, and resumes
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# a task running when the connection drops finishes (its results are in the database); its message comes back
# after the visibility timeout and finds the work done (every adengine task is idempotent)
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# `make demo` runs two workers in one terminal (shop.launcher): each of their lines says whose it is
_WORKER = os.environ.get("SHOP_WORKER_NAME", "").replace("%", "")
if _WORKER:
    CELERY_WORKER_LOG_FORMAT = f"[%(asctime)s: %(levelname)s/{_WORKER}/%(processName)s] %(message)s"
    CELERY_WORKER_TASK_LOG_FORMAT = (
        f"[%(asctime)s: %(levelname)s/{_WORKER}/%(processName)s] %(task_name)s[%(task_id)s]: %(message)s"
    )
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # a demo worker's lines go through Celery's handler (which names the worker); a second handler here would
    # print each of them twice
    "loggers": {
        "adengine": {
            "handlers": [] if _WORKER else ["console"],
            "level": os.environ.get("ADENGINE_LOG_LEVEL", "INFO"),
        }
    },
}

# --- adengine: the only things the shop tells the plugin ---------------------------------------
ADENGINE_PRODUCT_MODEL = "shop.Product"
ADENGINE_ORDER_MODEL = "shop.Order"
ADENGINE = {
    "SHOP_ADAPTER": "adengine.adapters.ShopAdapter",
    "CURRENCY": "CNY",  # the demo's prices are in yuan
    "MODELS_DIR": os.environ.get("ADENGINE_MODELS_DIR", str(BASE_DIR / ".data" / "models")),
    "SIMULATION_TRUTH": "shop.simulation.DemoTruth",  # the demo customers' latent interests, for adengine_simulate
}
