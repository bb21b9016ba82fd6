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
    # The load generator is one client: per-client rate limits are switched off (None), as the baseline
    # endpoint has none. (A huge rate instead would make DRF keep and re-pickle a history list of every
    # request of the last minute on each call, which measures the throttle, not the decision.)
    "API_THROTTLE_RATES": {"decisions": None, "tracking": None, "advertiser": "300/min"},
}
if os.environ.get("ADENGINE_BENCH_COUNTERS"):  # bench/serving.py --counters: "database" or a Redis URL
    ADENGINE["SHARED_COUNTERS"] = os.environ["ADENGINE_BENCH_COUNTERS"]
if os.environ.get("ADENGINE_BENCH_ENCODER_THREADS"):  # bench/interest_refresh.py --end-to-end: its Celery worker's
    ADENGINE["ENCODER"] = {**ADENGINE.get("ENCODER", {}), "THREADS": int(os.environ["ADENGINE_BENCH_ENCODER_THREADS"])}
