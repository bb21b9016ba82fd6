"""Settings for the real-beat test: the test settings with periodic tasks due every second."""

from tests.settings import *  # noqa: F403

ADENGINE = {
    **ADENGINE,  # noqa: F405
    "REFRESH_INTERVAL_SECONDS": 1,
    "STRATEGY_INTERVAL_SECONDS": 1,
}
