"""Settings of the celery processes the fault tests start: the test settings, with small bounds.

The copywriter is the test's own chat server (FAULT_COPYWRITER_URL), which holds its answer while the test
kills the worker; heartbeats are frequent so that a dead worker is noticed in seconds.
"""

import os

from tests.settings import *  # noqa: F403

ADENGINE = {
    **ADENGINE,  # noqa: F405
    "COPYWRITER": {
        "BACKEND": "openai",
        "BASE_URL": os.environ.get("FAULT_COPYWRITER_URL", "http://127.0.0.1:9/v1"),
        "MODEL": "test",
        "BATCH_SIZE": 2,
        "TIMEOUT": 150,
        "RETRIES": 0,
    },
    "GENERATION_HEARTBEAT_SECONDS": 0.3,
    "STRATEGY_INTERVAL_SECONDS": 1,
    "REFRESH_INTERVAL_SECONDS": 1,
}
if os.environ.get("CELERY_VISIBILITY_TIMEOUT"):  # a short one: tasks must be shorter still (adengine.W010)
    limit = max(1, int(os.environ["CELERY_VISIBILITY_TIMEOUT"]) - 1)
    ADENGINE["TASK_TIME_LIMITS"] = {"interactive": limit, "batch": limit, "strategy": limit}
    # look for messages whose visibility timeout expired every second (kombu: every 10 x 10 s)
    CELERY_BROKER_TRANSPORT_OPTIONS = {  # noqa: F405
        **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
LOGGING = {
    **LOGGING,  # noqa: F405
    "loggers": {"adengine": {"handlers": ["console"], "level": "INFO"}},
}
