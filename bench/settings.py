"""Settings for bench/serving.py: the demo shop's, on its own database, with a bare DRF endpoint to compare."""

import os

import dj_database_url

from shop.settings import *  # noqa: F403

DATABASES = {"default": dj_database_url.parse(os.environ["ADENGINE_BENCH_DATABASE_URL"], conn_max_age=600)}
ROOT_URLCONF = "bench.urls"
DEBUG = False
ALLOWED_HOSTS = ["*"]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
ADENGINE = {
    **ADENGINE,  # noqa: F405
    # the load generator is one client: lift the per-client rate limits out of the way
    "API_THROTTLE_RATES": {"decisions": "10000000/min", "tracking": "10000000/min", "advertiser": "300/min"},
}
