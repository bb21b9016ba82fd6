"""Storefront-facing views: view beacons, click redirects, "Why this ad?" and the personalisation switch."""

from __future__ import annotations

import base64
import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from adengine.models import AdEvent, Impression
from adengine.net import client_ip
from adengine.selectors.why import explain
from adengine.services.shoppers import set_personalisation, shopper_for_request
from adengine.services.tracking import claim_impression, impression_for, record
from adengine.serving import tokens
from adengine.serving.context import resolve_language
from adengine.validators import is_safe_landing

log = logging.getLogger(__name__)

UNAVAILABLE = _("ads are unavailable right now; please try again")
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _refused(request: HttpRequest, message: str, status: int, landing: str = "") -> HttpResponse:
    """The page a shopper sees for a link that cannot be followed, in their language."""
    landing = landing if is_safe_landing(landing) else ""  # never an off-site link, whatever was stored
    # without the request: the host's context processors may need the database, which may be what failed
    html = render_to_string("adengine/refused.html", {"message": gettext(str(message)), "landing": landing})
    return HttpResponse(html, status=status)


@never_cache
@require_GET
def view_beacon(request: HttpRequest, token: str) -> HttpResponse:
    """The 1x1 image a rendered ad loads: counts (and for CPM bills) one view per impression."""
    try:
        result = record(
            kind=AdEvent.Kind.VIEW, token=token, ip=client_ip(request), user_agent=request.headers.get("User-Agent", "")
        )
    except tokens.TokenError as exc:
        return HttpResponse(PIXEL, content_type="image/gif", status=exc.status)
    except DatabaseError:
        log.exception("view beacon not recorded")
        return HttpResponse(PIXEL, content_type="image/gif", status=503)
    status = 409 if result.event.status == AdEvent.Status.DUPLICATE else 200
    return HttpResponse(PIXEL, content_type="image/gif", status=status)


@never_cache
@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    """Count the click once and send the shopper to the ad's stored landing page (never a URL from the request)."""
    try:
        result = record(
            kind=AdEvent.Kind.CLICK,
            token=token,
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except tokens.TokenError as exc:
        return _refused(request, str(exc), exc.status)
    except DatabaseError:
        log.exception("click not recorded")
        return _refused(request, UNAVAILABLE, 503)
    if result.event.status == AdEvent.Status.DUPLICATE:
        return _refused(request, _("this ad link was already used"), 409, landing=result.impression.landing_url)
    if result.counted and result.impression.shopper_id is None:
        # a click is the visitor's first meaningful event: now they get a shopper (and a session), and the
        # ad they clicked becomes theirs, so a later guest order is credited to it
        claim_impression(impression=result.impression, shopper=shopper_for_request(request))
    landing = result.impression.landing_url
    return HttpResponseRedirect(landing if is_safe_landing(landing) else "/")


def _impression(token: str, request: HttpRequest) -> Impression | HttpResponse:
    try:
        return impression_for("why", token, related=("campaign__advertiser",))
    except tokens.TokenError as exc:
        return _refused(request, str(exc), exc.status)
    except DatabaseError:
        log.exception("why page not shown")
        return _refused(request, UNAVAILABLE, 503)


@never_cache
@require_GET
def why(request: HttpRequest, token: str) -> HttpResponse:
    """Why this ad was shown: the campaign's targeting, the page, the interests that matched (to its viewer)."""
    impression = _impression(token, request)
    if isinstance(impression, HttpResponse):
        return impression
    viewer = shopper_for_request(request, create=False)
    # the page is in the reader's language (the host's LocaleMiddleware, if any, chose it), product titles too
    why = explain(impression, viewer=viewer, language=resolve_language(get_language()))
    return render(request, "adengine/why.html", {"why": why, "next": _safe_next(request)})


def _safe_next(request: HttpRequest, value: str | None = None) -> str:
    """A same-site path to return to, or ''."""
    target = request.GET.get("next", "") if value is None else value
    ok = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return target if ok else ""


@require_POST
def personalisation(request: HttpRequest) -> HttpResponse:
    """Turn personalised ads off (withdraws consent, deletes browsing history) or back on."""
    allowed = request.POST.get("allowed")
    if allowed not in {"on", "off"}:
        return _refused(request, _("say allowed=on or allowed=off"), 400)
    shopper = shopper_for_request(request)
    if shopper is None:
        return _refused(request, _("no session: enable cookies"), 400)
    set_personalisation(shopper=shopper, allowed=allowed == "on")
    return HttpResponseRedirect(_safe_next(request, request.POST.get("next", "")) or "/")
