"""The demo shop: stands for a customer's existing Django shop."""

from .celery import app as celery_app

__all__ = ["celery_app"]
