"""Settings of the web servers of the scale-out test: production's asynchronous impression log, flushed often;
each process's own cache of what a shopper saw kept for an hour (so only the shared counters can hold a cap
across processes); the per-network limits off (the test's traffic all comes from one address)."""

import os

from tests.faults.server_settings import *  # noqa: F403

ADENGINE = {
    **ADENGINE,  # noqa: F405
    "SERVING_LOG_FLUSH_SECONDS": 0.2,
    "SERVING_LOG_BATCH": 50,
    "SERVING_CAP_CACHE_SECONDS": 3600,
    "TRACKING_RATE_LIMITS": {"view": 0, "click": 0},
    "SHARED_COUNTERS": os.environ.get("ADENGINE_TEST_SHARED_COUNTERS", "database"),
}
