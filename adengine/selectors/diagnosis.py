"""Why a campaign is not delivering, or delivers less than it could: each cause in words with its fix.

Every cause is read from the data the decision engine decides with, the way it reads it (``serving.builder`` and
``serving.eligibility``): status and schedule, total and daily budget after pacing (``services.budgets``), the
placements it may show in, approved headlines in the shop's languages, the relevance floors, audience thresholds
and target vectors, stock of the promoted products, and today's impressions against the frequency cap. A list of
campaigns is diagnosed in a fixed number of queries, whatever its length.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import get_language_info

from adengine import clock
from adengine.adapters import get_adapter
from adengine.conf import settings as ad_settings
from adengine.models import Campaign, CampaignDay, Creative, GenerationRequest, Impression, Placement, ProductVector
from adengine.routers import read_connection
from adengine.services.budgets import daily_plan, unit_price
from adengine.serving.context import CONTEXT_CATEGORY, CONTEXT_PRODUCT, CONTEXT_QUERY
from adengine.serving.snapshot import words
from adengine.text import CJK

EPSILON = 1e-9  # as serving compares money and relevance
FREQUENCY_MIN_SHOPPERS = 5  # fewer shoppers reached today: too few to say "most of its audience"
FREQUENCY_MOST = 0.5  # share of today's shoppers at their cap that counts as "most"
LANGUAGE_NAMES = {"zh": "Chinese"}  # Django's own table names only "zh-hans" and "zh-hant"


@dataclass(frozen=True)
class Reason:
    """One cause: what stops (``blocks``) or limits delivery, in words, and how to fix it (with a link)."""

    code: str
    message: str
    fix: str
    url: str = ""
    blocks: bool = True


@dataclass
class Diagnosis:
    """A campaign's delivery diagnosis, and the spend figures it was judged on."""

    campaign_id: int
    reasons: list[Reason] = field(default_factory=list)
    spent_today: Decimal = Decimal(0)
    plan_today: Decimal | None = None  # what the daily budget may have spent by now (pacing), None without one

    @property
    def blocking(self) -> list[Reason]:
        return [r for r in self.reasons if r.blocks]

    @property
    def delivering(self) -> bool:
        """Nothing stops it now (it may still be limited)."""
        return not self.blocking

    @property
    def cannot_deliver(self) -> list[Reason]:
        """What stops it and needs a person: a start date in the future clears by itself."""
        return [r for r in self.blocking if r.code != "not_started"]


def money(amount: Decimal | float) -> str:
    """An amount in the shop's currency, as its ads show prices ("¥120.00")."""
    return get_adapter().format_price(Decimal(amount), str(ad_settings.CURRENCY or ""), ad_settings.default_language)


def language_name(code: str) -> str:
    """A language's English name ("Chinese"), else its code."""
    if code in LANGUAGE_NAMES:
        return LANGUAGE_NAMES[code]
    try:
        return get_language_info(code)["name"]
    except KeyError:
        return code


def _when(value: dt.datetime, now: dt.datetime) -> str:
    local, today = timezone.localtime(value), timezone.localtime(now)
    text = date_format(local, "j M" if local.year == today.year else "j M Y")
    if (local.hour, local.minute) != (0, 0):
        text += local.strftime(" %H:%M")
    return text


def _url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:  # the host did not mount the admin
        return ""


def _counts(pairs) -> dict[int, int]:
    found: dict[int, int] = defaultdict(int)
    for cid, n in pairs:
        found[cid] += n
    return found


@dataclass
class _Facts:
    """What the diagnosis reads for a list of campaigns, in a fixed number of queries."""

    now: dt.datetime
    active_placements: list[Placement]
    allowed: dict[int, set[int]]  # campaign -> its own placements (empty: all)
    placement_keys: dict[int, str]
    headlines: dict[int, set[str]]  # campaign -> languages with an approved headline that passes the rules
    waiting: dict[int, int]  # campaign -> variants that pass the rules and wait for review
    failing: dict[int, int]  # campaign -> draft variants that fail the rules
    writing: dict[int, int]  # campaign -> copy requests queued or running
    spent_today: dict[int, Decimal]
    promoted: dict[int, list]  # campaign -> promoted product ids
    in_stock: set  # promoted products serving would show (active, in stock)
    with_vector: set  # promoted products with a vector
    target_vectors: set[int]  # campaigns with a stored target vector
    capped: dict[int, tuple[int, int]]  # campaign -> (shoppers at their cap today, shoppers reached today)


def _facts(campaigns: list[Campaign], now: dt.datetime) -> _Facts:
    ids = [c.pk for c in campaigns]
    placements = list(Placement.objects.all())
    allowed: dict[int, set[int]] = defaultdict(set)
    for cid, pid in Campaign.placements.through.objects.filter(campaign_id__in=ids).values_list(
        "campaign_id", "placement_id"
    ):
        allowed[cid].add(pid)
    headlines: dict[int, set[str]] = defaultdict(set)
    waiting: dict[int, int] = defaultdict(int)
    failing: dict[int, int] = defaultdict(int)
    rows = (
        Creative.objects.filter(campaign_id__in=ids)
        .values("campaign_id", "language", "asset_type")
        .annotate(
            approved=Count("pk", filter=Q(status=Creative.Status.APPROVED, passes_rules=True)),
            waiting=Count("pk", filter=Q(status=Creative.Status.DRAFT, passes_rules=True)),
            failing=Count("pk", filter=Q(status=Creative.Status.DRAFT, passes_rules=False)),
        )
    )
    for row in rows:
        cid = row["campaign_id"]
        if row["asset_type"] == Creative.AssetType.HEADLINE and row["approved"]:
            headlines[cid].add(row["language"])
        waiting[cid] += row["waiting"]
        failing[cid] += row["failing"]
    writing = _counts(
        GenerationRequest.objects.filter(
            campaign_id__in=ids, status__in=[GenerationRequest.Status.QUEUED, GenerationRequest.Status.RUNNING]
        )
        .values("campaign_id")
        .annotate(n=Count("pk"))
        .values_list("campaign_id", "n")
    )
    spent_today = dict(
        CampaignDay.objects.filter(campaign_id__in=ids, day=clock.today(now)).values_list("campaign_id", "spent")
    )
    product_fk = Campaign.promoted_products.field.m2m_reverse_field_name()
    promoted: dict[int, list] = defaultdict(list)
    for cid, pid in Campaign.promoted_products.through.objects.filter(campaign_id__in=ids).values_list(
        "campaign_id", product_fk
    ):
        promoted[cid].append(pid)
    every = {pid for pids in promoted.values() for pid in pids}
    in_stock, with_vector = set(), set()
    if every:
        adapter = get_adapter()
        for product in adapter.products().filter(pk__in=every):
            stock = adapter.product_stock(product)
            if stock is None or stock > 0:  # as the builder: never advertise what cannot be bought
                in_stock.add(product.pk)
        with_vector = set(ProductVector.objects.filter(product_id__in=every).values_list("product_id", flat=True))
    targets = set(Campaign.objects.filter(pk__in=ids, target_vector__isnull=False).values_list("pk", flat=True))
    return _Facts(
        now=now,
        active_placements=[p for p in placements if p.is_active],
        allowed=allowed,
        placement_keys={p.pk: p.key for p in placements},
        headlines=headlines,
        waiting=waiting,
        failing=failing,
        writing=writing,
        spent_today=spent_today,
        promoted=promoted,
        in_stock=in_stock,
        with_vector=with_vector,
        target_vectors=targets,
        capped=_capped_today([c for c in campaigns if c.frequency_cap > 0], now),
    )


def _capped_today(campaigns: list[Campaign], now: dt.datetime) -> dict[int, tuple[int, int]]:
    """Per capped campaign: (shoppers who saw it today as often as its cap allows, shoppers who saw it today),
    from the impression log as the frequency cap reads it (one query on its campaign-and-time index)."""
    if not campaigns:
        return {}
    caps = {c.pk: c.frequency_cap for c in campaigns}
    with read_connection().cursor() as cur:  # REPORTS_DATABASE on the dashboard
        cur.execute(
            f"""
            SELECT campaign_id, seen, count(*) FROM (
                SELECT campaign_id, shopper_id, count(*) AS seen FROM {Impression._meta.db_table}
                WHERE campaign_id = ANY(%s) AND served_at >= %s AND shopper_id IS NOT NULL
                GROUP BY campaign_id, shopper_id
            ) AS per_shopper GROUP BY campaign_id, seen
            """,
            [list(caps), clock.midnight(now)],
        )
        found: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for cid, seen, shoppers in cur.fetchall():
            found[cid][1] += shoppers
            if seen >= caps[cid]:
                found[cid][0] += shoppers
    return {cid: (capped, reached) for cid, (capped, reached) in found.items()}


def diagnose(campaigns: Iterable[Campaign], *, now: dt.datetime | None = None) -> dict[int, Diagnosis]:
    """Each campaign's diagnosis (by id): why it does not deliver, or delivers less than it could."""
    campaigns = list(campaigns)
    if not campaigns:
        return {}
    now = now or timezone.now()
    facts = _facts(campaigns, now)
    return {c.pk: _diagnose(c, facts) for c in campaigns}


def diagnose_one(campaign: Campaign, *, now: dt.datetime | None = None) -> Diagnosis:
    """One campaign's diagnosis."""
    return diagnose([campaign], now=now)[campaign.pk]


def _diagnose(c: Campaign, facts: _Facts) -> Diagnosis:
    change = _url("admin:adengine_campaign_change", c.pk)
    out = Diagnosis(c.pk, spent_today=Decimal(facts.spent_today.get(c.pk, 0)))
    add = out.reasons.append
    if not ad_settings.SERVING_ENABLED:
        add(Reason("serving_off", "ad serving is switched off for the whole shop",
                   "set ADENGINE['SERVING_ENABLED'] to True"))  # fmt: skip
    _status(c, facts, add, change)
    _budget(c, facts, out, add, change)
    _copy(c, facts, add)
    allowed = _placements(c, facts, add, change)
    products = [p for p in facts.promoted.get(c.pk, []) if p in facts.in_stock]
    # serving's target: the stored vector, else the mean of the in-stock promoted products' vectors
    has_target = c.pk in facts.target_vectors or any(p in facts.with_vector for p in products)
    _relevance(c, facts, allowed, products, has_target, add, change)
    _audience(c, bool(facts.promoted.get(c.pk)), has_target, add, change)
    if facts.promoted.get(c.pk) and not products:
        n = len(facts.promoted[c.pk])
        add(Reason("out_of_stock", f"its {n} promoted product{'s are' if n > 1 else ' is'} out of stock or not for "
                   "sale: its ads show no product and never appear for it on product pages",
                   "restock them or promote products that are for sale", change, blocks=False))  # fmt: skip
    capped, reached = facts.capped.get(c.pk, (0, 0))
    if reached >= FREQUENCY_MIN_SHOPPERS and capped >= FREQUENCY_MOST * reached:
        add(Reason("frequency_cap", f"frequency cap reached for most of its audience: {capped} of the {reached} "
                   f"shoppers who saw it today have seen it {c.frequency_cap} time{'s' if c.frequency_cap > 1 else ''}",
                   "raise the frequency cap, or widen its audience", change, blocks=False))  # fmt: skip
    out.reasons.sort(key=lambda r: not r.blocks)  # what stops it first, then what limits it
    return out


def _status(c: Campaign, facts: _Facts, add, change: str) -> None:
    if c.status == Campaign.Status.DRAFT:
        add(Reason("draft", "a draft: not running yet", "set its status to active", change))
    elif c.status == Campaign.Status.PAUSED:
        add(Reason("paused", "paused", "set its status to active (or use the Activate action)", change))
    elif c.status == Campaign.Status.ENDED:
        add(Reason("ended", "ended", "set its status to active to run it again", change))
    if c.starts_at is not None and c.starts_at > facts.now:
        add(Reason("not_started", f"outside its schedule (starts {_when(c.starts_at, facts.now)})",
                   "wait for its start, or move the start date", change))  # fmt: skip
    if c.ends_at is not None and c.ends_at <= facts.now:
        add(Reason("schedule_over", f"outside its schedule (ended {_when(c.ends_at, facts.now)})",
                   "move the end date, or clear it", change))  # fmt: skip


def _budget(c: Campaign, facts: _Facts, out: Diagnosis, add, change: str) -> None:
    if c.daily_budget is not None:
        out.plan_today = Decimal(str(round(float(daily_plan(float(c.daily_budget), facts.now)), 4)))
    if c.tier == Campaign.Tier.HOUSE:  # house ads are never billed: no budget stops them
        return
    price = unit_price(pricing=c.pricing, bid=c.bid)
    event = "click" if c.pricing == Campaign.Pricing.CPC else "view"
    if c.spent + price > c.total_budget + Decimal(EPSILON):
        short = f"; one {event} costs {money(price)}" if c.spent < c.total_budget else ""
        add(Reason("total_budget", f"total budget spent ({money(c.spent)} of {money(c.total_budget)}{short})",
                   "raise the total budget", change))  # fmt: skip
    if c.daily_budget is None:
        return
    today = out.spent_today
    if today + price > c.daily_budget + Decimal(EPSILON):
        add(Reason("daily_budget", f"today's budget spent ({money(today)} of {money(c.daily_budget)})",
                   "raise the daily budget, or wait for tomorrow", change))  # fmt: skip
    elif today + price > out.plan_today + Decimal(EPSILON):
        add(Reason("pacing", f"ahead of today's pacing plan ({money(today)} spent, {money(out.plan_today)} planned "
                   f"by now of {money(c.daily_budget)}): it pauses until the plan catches up",
                   "nothing: pacing spreads the daily budget over the day; raise it to deliver faster", change,
                   blocks=False))  # fmt: skip


def _copy(c: Campaign, facts: _Facts, add) -> None:
    """Serving shows a campaign to a shopper when it has an approved headline (that passes the rules) in their
    language or the default one."""
    review = _url("admin:adengine_campaign_review", c.pk)
    shop = list(ad_settings.LANGUAGES)
    default = ad_settings.default_language
    have = facts.headlines.get(c.pk, set()) & set(shop)
    if not have:
        waiting, writing = facts.waiting.get(c.pk, 0), facts.writing.get(c.pk, 0)
        if waiting:
            fix = f"review {waiting} waiting variant{'s' if waiting > 1 else ''}"
        elif writing:
            fix = f"wait for {writing} copy request{'s' if writing > 1 else ''} being written, then review them"
        elif facts.failing.get(c.pk):
            fix = "its drafts fail the advertising rules: generate new copy or write a headline"
        else:
            fix = "generate copy (action “Generate copy”) or write a headline"
        add(Reason("no_copy", "no approved copy", fix, review))
        return
    targeted = [lang for lang in c.languages if lang in shop] or shop
    missing = [lang for lang in targeted if lang not in have]
    if not missing:
        return
    names = ", ".join(language_name(lang) for lang in missing)
    if default in have:  # those shoppers get the default language's copy
        add(Reason("language_fallback", f"no approved {names} headline: {names} shoppers see its "
                   f"{language_name(default)} copy", f"approve or write a headline in {names}", review,
                   blocks=False))  # fmt: skip
        return
    reached = ", ".join(language_name(lang) for lang in shop if lang in have)
    add(Reason("language", f"no approved headline in the shopper languages it targets ({names}): only {reached} "
               f"shoppers see it", f"approve or write a headline in {names}", review, blocks=False))  # fmt: skip


def _placements(c: Campaign, facts: _Facts, add, change: str) -> list[Placement]:
    """The active placements serving may show the campaign in (house ads: those that take house ads)."""
    own = facts.allowed.get(c.pk, set())
    allowed = [p for p in facts.active_placements if not own or p.pk in own]
    house = c.tier == Campaign.Tier.HOUSE
    if house:
        allowed = [p for p in allowed if p.allow_house_ads]
    if allowed:
        return allowed
    placements = _url("admin:adengine_placement_changelist")
    if own:
        keys = ", ".join(sorted(facts.placement_keys[p] for p in own))
        why = "inactive or take no house ads" if house else "inactive"
        add(Reason("no_placement", f"no eligible placement: its placements ({keys}) are {why}",
                   "activate one of them, or choose other placements", change))  # fmt: skip
    elif house and facts.active_placements:
        add(Reason("no_placement", "no eligible placement: no active placement takes house ads",
                   "let a placement take house ads", placements))  # fmt: skip
    else:
        add(Reason("no_placement", "no eligible placement: the shop has no active placement",
                   "add or activate a placement", placements))  # fmt: skip
    return allowed


def _relevance(c, facts: _Facts, allowed: list[Placement], products: list, has_target: bool, add, change) -> None:
    """Sponsored ads need relevance (fit to the page, or the shopper's place in the campaign's audience) at least
    the placement's floor; see ``serving.context``."""
    if c.tier == Campaign.Tier.HOUSE or not allowed:
        return
    page_fit = 0.0
    if products:
        page_fit = CONTEXT_PRODUCT  # on its product's page
    elif any(words(k) or CJK.search(k) for k in c.keywords):
        page_fit = CONTEXT_QUERY  # on a search for its keywords
    elif c.categories:
        page_fit = CONTEXT_CATEGORY  # on its category's pages
    # the shopper's fit: up to 1.0 for the best-fitting shoppers when it has a target, 0.5 for everyone else
    best = max(page_fit, 1.0 if has_target else 0.5)
    typical = max(page_fit, 0.5)
    own = [(p, p.relevance_floor) for p in allowed if p.relevance_floor is not None]
    fix = "add promoted products, keywords or categories that match the pages, or lower the placements' floor"
    if len(own) == len(allowed) and all(best < floor - EPSILON for _, floor in own):
        floors = ", ".join(f"{p.key} {floor:.2f}" for p, floor in own)
        add(Reason("relevance", f"relevance below the floor on every placement it can show on (it reaches at most "
                   f"{best:.2f}; floors: {floors})", fix, change))  # fmt: skip
        return
    floors = [floor for _, floor in own]
    if len(own) < len(allowed):  # the others take the page kind's floor
        floors += [float(v) for v in dict(ad_settings.RELEVANCE_FLOORS).values()]
    high = [f for f in floors if typical < f - EPSILON]
    if not high:
        return
    who = "only shoppers close to its audience" if has_target else "no one"
    if page_fit == 0.0:
        add(Reason("relevance_low", f"relevance below the floor ({min(high):.2f}) on some pages: with no promoted "
                   f"product, keywords or categories to match a page it has {typical:.2f} there, so it reaches "
                   f"{who} on them", fix, change, blocks=False))  # fmt: skip
    else:
        add(Reason("relevance_low", f"relevance below the floor ({min(high):.2f}) on some pages: it fits a page at "
                   f"{page_fit:.2f} at most, so there it reaches {who}", fix, change, blocks=False))  # fmt: skip


def _audience(c: Campaign, promotes: bool, has_target: bool, add, change: str) -> None:
    """An audience threshold compares shoppers with the campaign's target: none (yet), no shopper qualifies."""
    inputs = bool(c.description.strip() or c.keywords or promotes)
    threshold = c.audience_min_similarity
    if has_target:
        return
    worker = "make sure the Celery worker runs: it computes targets (task adengine.refresh_campaign_targets)"
    if threshold is not None and threshold > 0:
        if inputs:
            add(Reason("target", f"waiting for its target vector (worker): its audience (similarity "
                       f"{threshold:.2f}+) cannot be found without it", worker, change))  # fmt: skip
        else:
            add(
                Reason(
                    "target",
                    "limited to an audience but nothing describes it: no description, keywords or promoted products",
                    "describe the campaign, or clear its audience threshold",
                    change,
                )
            )
    elif inputs:
        add(Reason("target", "waiting for its target vector (worker): until then it is not personalised",
                   worker, change, blocks=False))  # fmt: skip
