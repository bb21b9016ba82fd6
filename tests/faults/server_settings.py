"""Settings of a web server a fault test starts: the test database, the impression log in production mode.

The writer waits an hour between batches, so every impression of a burst is still pending when the test
stops the server: only the shutdown path can write them.
"""

import os

from tests.settings import *  # noqa: F403

DATABASES["default"]["NAME"] = os.environ["ADENGINE_TEST_DATABASE"]  # noqa: F405
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
ADENGINE = {
    **ADENGINE,  # noqa: F405
    "SERVING_LOG_MODE": "async",
    "SERVING_LOG_FLUSH_SECONDS": float(os.environ.get("ADENGINE_TEST_FLUSH_SECONDS", 3600)),
    "SERVING_LOG_BATCH": 1_000_000,
    "SERVING_LOG_SHUTDOWN_SECONDS": float(os.environ.get("ADENGINE_TEST_SHUTDOWN_SECONDS", 10)),
    "API_THROTTLE_RATES": {"decisions": "100000/min", "tracking": "100000/min", "advertiser": "100000/min"},
}
