#!/usr/bin/env python
"""Django's command-line utility for the demo shop."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    if os.environ["DJANGO_SETTINGS_MODULE"] == "shop.settings":
        # the demo's entry point starts its embedded servers (settings never do) and uses its own key
        from shop import embedded

        if not (os.environ.get("DATABASE_URL") and os.environ.get("CELERY_BROKER_URL")):
            embedded.ensure_services()
        embedded.ensure_secret_key()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
