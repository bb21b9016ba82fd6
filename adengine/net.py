"""The client's address, trusting X-Forwarded-For only as far as the configured proxies (as DRF's NUM_PROXIES)."""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or with ``ADENGINE['TRUSTED_PROXIES'] = n`` the n-th address from the right of X-Forwarded-For.

    Each trusted proxy appends the address it received the request from, so only the last ``n``
    entries are facts; anything left of them is whatever the client wrote (and rotating it must not
    give a client a fresh throttle or click budget).
    """
    from adengine.conf import settings as ad_settings

    remote = request.META.get("REMOTE_ADDR")
    proxies = int(ad_settings.TRUSTED_PROXIES or 0)
    if proxies <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if not hops:
        return remote
    candidate = hops[-min(proxies, len(hops))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
