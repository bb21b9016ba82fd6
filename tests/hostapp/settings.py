"""Settings of the second host: the same real services, a different shop."""

import os

import dj_database_url

from shop import embedded

embedded.ensure_services()

SECRET_KEY = "hostapp-tests-only-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "rest_framework",
    "drf_spectacular",
    "tests.hostapp",
    "adengine",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.hostapp.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
_db = dj_database_url.parse(os.environ["DATABASE_URL"])
_db["NAME"] = "hostapp"  # its own test database: test_hostapp
DATABASES = {"default": _db}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

ADENGINE_PRODUCT_MODEL = "hostapp.Item"
ADENGINE_ORDER_MODEL = "hostapp.Purchase"
ADENGINE = {
    "SHOP_ADAPTER": "tests.hostapp.adapter.HostAdapter",
    "PRODUCT_KEY_FIELD": "article_number",
    "LANGUAGES": ("en",),
    "REFRESH_DEBOUNCE_SECONDS": 0,
    "SERVING_LOG_MODE": "sync",
    "SHOPPER_CACHE_SECONDS": 0,
    # the first index build in the test's own thread, inside its transaction: a background build reads only what
    # is committed, and the test's rows are not (a real shop's are)
    "SERVING_INDEX_WAIT_SECONDS": None,
    "MODELS_DIR": str(embedded.ROOT / ".data" / "models"),
}
