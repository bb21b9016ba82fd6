"""Scale-out tests: several real web and worker processes on the test database and a broker of their own."""

from tests.processes import broker, celery_process  # noqa: F401
from tests.serving.conftest import make_campaign, placement, shopper_with  # noqa: F401
