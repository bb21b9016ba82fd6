"""Validators shared by the model, the admin, the API and the click redirect."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.http import url_has_allowed_host_and_scheme


def landing_hosts() -> set[str]:
    """Hosts a landing page may point to: the shop's own (exact ALLOWED_HOSTS entries) and LANDING_HOSTS."""
    from adengine.conf import settings as ad_settings

    own = {h for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith(".")}
    return own | {str(h).lower() for h in ad_settings.LANDING_HOSTS}


def is_safe_landing(url: str) -> bool:
    """A path on this shop, or an https URL on one of ``landing_hosts()``; never javascript:, // or /\\."""
    url = (url or "").strip()
    if not url or any(ord(c) < 32 for c in url) or "\\" in url:
        return False
    return url_has_allowed_host_and_scheme(url, allowed_hosts=landing_hosts(), require_https=True)


def validate_landing_url(value: str) -> None:
    """Model and form validator for a campaign's landing URL (empty is allowed: the product page is used)."""
    if value and not is_safe_landing(value):
        raise ValidationError(
            "must be a path on the shop (/...) or an https:// URL on the shop's hosts or ADENGINE['LANDING_HOSTS'].",
            code="landing_url",
        )
