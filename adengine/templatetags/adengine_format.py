"""Number formats of the admin's pages: rates as percentages with sensible precision."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value, places: int = 2) -> str:
    """A rate (0.0237) as a percentage with ``places`` decimals ("2.37 %"); "–" when there is none."""
    if value is None or value == "":
        return "–"
    try:
        return f"{float(value) * 100:.{int(places)}f} %"
    except (TypeError, ValueError):
        return "–"
