"""Scheduling tests: real beat and worker processes on a broker of their own."""

from tests.processes import broker, celery_process  # noqa: F401
