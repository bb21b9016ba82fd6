"""Test settings: the demo shop's, against the real embedded PostgreSQL and Redis."""

import os

from shop import embedded

embedded.ensure_services()  # a test run started without `make test` gets the embedded servers too
# the tests' own key (strong enough for adengine.E008: tests run with DEBUG off); shop.settings requires one
TESTS_SECRET_KEY = "tests-only-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOP"
os.environ.setdefault("DJANGO_SECRET_KEY", TESTS_SECRET_KEY)

from shop.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
SECRET_KEY = TESTS_SECRET_KEY  # not the demo's (`make test` runs with it exported)
ADENGINE = {
    **ADENGINE,  # noqa: F405
    "REFRESH_DEBOUNCE_SECONDS": 0,  # tests run refreshes explicitly
    "SERVING_LOG_MODE": "sync",  # tests look at impressions right after deciding (async mode: its own test)
    "SERVING_INDEX_CHECK_SECONDS": 3600,  # changes reach the index through signals (no background rebuilds)
    "SHOPPER_CACHE_SECONDS": 0,  # tests change shopper rows directly (the cache: its own test)
    # the first index build in the test's own thread, inside its transaction (the background build: its own test)
    "SERVING_INDEX_WAIT_SECONDS": None,
}

# a read replica for reports, as a shop that scales out has one (in tests it mirrors the default database); the
# router is inert until ADENGINE["REPORTS_DATABASE"] names it (tests/scale/test_reports_replica.py does)
DATABASES["replica"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}  # noqa: F405
DATABASE_ROUTERS = ["adengine.routers.ReportsRouter"]
