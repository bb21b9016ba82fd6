"""Settings for bench/resilience.py: the demo shop's, on the bench's own database and broker, behind one proxy."""

import os

import dj_database_url

from shop.settings import *  # noqa: F403

DATABASES = {"default": dj_database_url.parse(os.environ["ADENGINE_BENCH_DATABASE_URL"], conn_max_age=600)}
DEBUG = False
ALLOWED_HOSTS = ["*"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"celery": {"level": "INFO"}},
}
ADENGINE = {
    **ADENGINE,  # noqa: F405
    # the load generator stands for 50 shoppers behind one reverse proxy that sets X-Forwarded-For
    "TRUSTED_PROXIES": 1,
    # the strategy learns every 10 s, so its runs can be seen within a one-minute load
    "STRATEGY_INTERVAL_SECONDS": 10,
    "STRATEGY_LAG_SECONDS": 2,
    "API_THROTTLE_RATES": {"decisions": None, "tracking": None, "advertiser": "300/min"},
}
