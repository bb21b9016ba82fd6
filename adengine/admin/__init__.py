"""Django admin for adengine, one module per area (registered on import)."""

from . import campaigns, creatives, serving, shoppers  # noqa: F401
