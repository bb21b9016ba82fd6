"""Fault tests: the serving tests' placements and campaigns, a broker of their own, real celery processes, a
copywriter that holds its answer."""

from tests.processes import broker, celery_process, chat_server  # noqa: F401
from tests.serving.conftest import make_campaign, placement, shopper_with  # noqa: F401
