"""The copy review page of a campaign: every variant side by side by language, with its rules in words, its
quality score, the facts that ground its claims, and Approve / Reject (through ``services.creatives.review``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import SafeString
from django.utils.translation import get_language_info
from django.utils.translation import gettext as _

from adengine.conf import settings as ad_settings
from adengine.ml.compliance import Evidence, evidence
from adengine.models import Campaign, Creative, GenerationRequest
from adengine.selectors.generation import waiting_requests

from .creatives import RULE_NAMES

PERMISSION = "adengine.change_creative"
LANGUAGE_NAMES = {"zh": "中文"}  # Django's own table names only "zh-hans" and "zh-hant"
# the order a reviewer works in: what waits for them, then what runs, then what does not
GROUPS = ["waiting for review", "approved", "paused", "rejected", "fails the rules"]


@dataclass
class Card:
    """One variant as the review page shows it."""

    creative: Creative
    group: str
    failed: list[tuple[str, str]]  # (rule in words, why)
    passed: list[str]  # rules in words
    evidence: list[Evidence]
    preview: SafeString | str = ""  # the variant in the campaign's placements (adengine.admin.previews)

    @property
    def quality(self) -> str:
        return "–" if self.creative.score is None else f"{self.creative.score:.2f}"

    @property
    def source(self) -> str:
        return "generated" if self.creative.source == Creative.Source.GENERATED else "a person's"

    @property
    def approve_blocked(self) -> str:
        """Why Approve is disabled ("" when it is not)."""
        if not self.creative.passes_rules:
            if self.failed:
                return "fails the rules: " + "; ".join(f"{name} ({why})" if why else name for name, why in self.failed)
            return "fails the rules"
        return "already approved" if self.creative.status == Creative.Status.APPROVED else ""


@dataclass
class Section:
    asset_type: str  # "headlines", "descriptions"
    cards: list[Card] = field(default_factory=list)


@dataclass
class Column:
    language: str
    name: str
    sections: list[Section] = field(default_factory=list)


def language_name(code: str) -> str:
    """The language's own name for itself ("English", "中文"), else its code."""
    if code in LANGUAGE_NAMES:
        return LANGUAGE_NAMES[code]
    try:
        return get_language_info(code)["name_local"]
    except KeyError:
        return code


def card(creative: Creative) -> Card:
    """A variant's status group, its rules in words (failed ones with their reason) and its claims' evidence."""
    results = creative.rule_results or []
    failed = [(RULE_NAMES.get(r["rule"], r["rule"]), r.get("reason") or "") for r in results if not r.get("passed")]
    passed = [RULE_NAMES.get(r["rule"], r["rule"]) for r in results if r.get("passed")]
    if not creative.passes_rules:
        group = "fails the rules"
    elif creative.status == Creative.Status.DRAFT:
        group = "waiting for review"
    else:
        group = creative.status  # approved, paused, rejected
    return Card(creative, group, failed, passed, evidence(results))


def columns(campaign: Campaign, *, request: GenerationRequest | None = None) -> list[Column]:
    """The campaign's variants (or one request's) by language, then asset type, waiting for review first."""
    found = Creative.objects.filter(campaign=campaign).select_related("reviewed_by", "request")
    if request is not None:
        found = found.filter(request=request)
    cards = [card(c) for c in found]
    known = [*campaign.languages, *ad_settings.LANGUAGES]
    present = {c.creative.language for c in cards}
    order = [code for code in dict.fromkeys(known) if code in present] + sorted(present - set(known))
    out = []
    for code in order:
        column = Column(code, language_name(code))
        for asset_type in Creative.AssetType:
            chosen = [c for c in cards if c.creative.language == code and c.creative.asset_type == asset_type]
            chosen.sort(key=lambda c: (GROUPS.index(c.group), -(c.creative.score or 0.0), c.creative.pk))
            if chosen:
                column.sections.append(Section(f"{asset_type.label.capitalize()}s", chosen))
        out.append(column)
    return out


def with_previews(campaign: Campaign, found: list[Column], *, request=None) -> None:
    """Give every card its preview in the campaign's placements (the campaign's copy and product read once)."""
    from adengine.selectors.previews import campaign_copy

    from .previews import asset_preview

    copy = campaign_copy(campaign)
    for column in found:
        for section in column.sections:
            for c in section.cards:
                c.preview = asset_preview(c.creative, copy=copy, request=request)


def waiting(campaign: Campaign) -> int:
    """How many of the campaign's variants pass the rules and wait for a person's review."""
    return Creative.objects.filter(campaign=campaign, status=Creative.Status.DRAFT, passes_rules=True).count()


def review_url(campaign_id: int, *, request_id: uuid.UUID | str | None = None, creative_id: int | None = None) -> str:
    """The review page of a campaign (one request's variants, or scrolled to one variant)."""
    url = reverse("admin:adengine_campaign_review", args=[campaign_id])
    if request_id:
        url += f"?request={request_id}"
    if creative_id:
        url += f"#creative-{creative_id}"
    return url


def review_view(model_admin, request, pk: int):
    """GET: the variants side by side. POST: approve or reject one (its button) or the selected ones."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    campaign = get_object_or_404(Campaign.objects.select_related("advertiser"), pk=pk)
    generation = None
    if request.GET.get("request"):
        try:
            generation = GenerationRequest.objects.get(pk=uuid.UUID(request.GET["request"]), campaign=campaign)
        except (ValueError, GenerationRequest.DoesNotExist):
            messages.warning(request, _("No such copy generation request for this campaign; showing all its variants."))
    if request.method == "POST":
        decide(request, campaign)
        return HttpResponseRedirect(request.get_full_path())
    found = columns(campaign, request=generation)
    with_previews(campaign, found, request=request)
    context = {
        **model_admin.admin_site.each_context(request),
        "campaign": campaign,
        "generation": generation,
        "columns": found,
        "waiting": waiting(campaign),
        "copy_requests": waiting_requests(campaign_id=campaign.pk),  # queued or being written, with an estimate
        "opts": model_admin.model._meta,
        # (admin/base_site.html shows it as the page's heading)
        "title": _("Review copy of %(campaign)s") % {"campaign": campaign},
    }
    return TemplateResponse(request, "adengine/admin/campaign_review.html", context)


def decide(request, campaign: Campaign) -> None:
    """Approve or reject what the POST names, and say what happened (failing variants are never approved)."""
    from adengine.services.creatives import review

    one = {"approve_one": True, "reject_one": False}
    named = next((name for name in one if request.POST.get(name)), None)
    if named:
        approve, raw = one[named], [request.POST[named]]
    elif request.POST.get("bulk") in ("approve", "reject"):
        approve, raw = request.POST["bulk"] == "approve", request.POST.getlist("selected")
    else:
        messages.error(request, _("Choose Approve or Reject."))
        return
    try:
        ids = [int(v) for v in raw]
    except ValueError:
        messages.error(request, _("The selection is not a list of variant ids; nothing changed."))
        return
    chosen = Creative.objects.filter(campaign=campaign, pk__in=ids)
    if not ids or not chosen.exists():
        messages.warning(request, _("Select at least one variant of this campaign; nothing changed."))
        return
    total = chosen.count()
    failing = list(chosen.filter(passes_rules=False)) if approve else []
    changed = review(creatives=chosen, approve=approve, user=request.user)
    unchanged = total - changed - len(failing)
    if changed:
        done = (_("Approved %(count)d.") if approve else _("Rejected %(count)d.")) % {"count": changed}
        if unchanged > 0:
            done += " " + _("%(count)d already were.") % {"count": unchanged}
        messages.success(request, done)
    elif not failing:
        messages.info(
            request,
            _("Nothing changed: the selected variants already were approved.")
            if approve
            else _("Nothing changed: the selected variants already were rejected."),
        )
    for creative in failing:
        messages.warning(
            request,
            _("“%(text)s” was not approved: it %(why)s.")
            % {"text": creative.text, "why": card(creative).approve_blocked},
        )
