"""Simulated days of traffic through the real serving, tracking, attribution and strategy code.

Synthetic shoppers (the host's, with latent interests known to a ``Truth`` object the host provides)
visit pages; ``decide()`` chooses ads; the tracking service records views and clicks that the truth
draws; the truth places real orders for some clicks (attributed by the order signal); after each day
the strategy update learns and refits the click model (switched on only through its off-policy gate). The
shoppers are split by a stable hash into three arms of one experiment, served by the same code and eligible
ads: ``adengine`` (today's serving: ad rank with the relevance floor, the contextual click model), ``previous``
(the policy before them: the context-free Thompson sampling, no relevance floor) and ``random`` (full
exploration: uniformly at random among the eligible ads), so they can be compared day by day.
Each simulated day's rows are moved back to their simulated date, so reports show the curve.

It never touches live data: it refuses a database with live traffic (any impression not made by a
simulation: a shop serving real shoppers, whose campaigns it would bill and whose experiment it would split)
unless ``force`` is given, and even then it re-dates only its own rows (its experiment's impressions of its
shoppers, their events and conversions) and moves only its own spend out of today's budgets.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import transaction
from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone

from adengine import clock
from adengine.models import AdEvent, CampaignDay, Conversion, Experiment, Impression, Placement, Shopper
from adengine.selectors.performance import Figures, figures
from adengine.services.click_models import refit
from adengine.services.strategy import update_strategy
from adengine.services.tracking import record
from adengine.serving import Ad, PageContext, decide, get_backend, tokens
from adengine.serving.experiments import ExperimentEntry, assign
from adengine.serving.log import impression_log

log = logging.getLogger(__name__)

EXPERIMENT = "simulation: adengine vs previous vs uniform random"
ARMS = (
    {"name": "adengine", "weight": 1},
    {"name": "previous", "weight": 1, "settings": {"SERVING_POLICY": "thompson", "RELEVANCE_FLOOR": 0.0}},
    {"name": "random", "weight": 1, "settings": {"SERVING_EXPLORATION": 1.0}},
)
PLACEMENT_FOR_PAGE = {"home": "home-hero", "category": "category-top", "product": "product-sidebar",
                      "search": "search-top"}  # fmt: skip
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) adengine-simulation Chrome/131.0"


class Truth(Protocol):
    """What the host knows about its synthetic shoppers (their latent interests)."""

    def shoppers(self, rng: random.Random, n: int) -> list[Shopper]: ...

    def page(self, shopper: Shopper, rng: random.Random) -> tuple[PageContext, str]: ...

    def click_probability(self, shopper: Shopper, ad: Ad) -> float: ...

    def conversion_probability(self, shopper: Shopper, ad: Ad) -> float: ...

    def place_order(self, shopper: Shopper, ad: Ad, when: dt.datetime) -> Any: ...

    # optional: the shopper's top interests as category keys (for the page-relevance share; without it only the
    # page's category counts)
    # def interests(self, shopper: Shopper) -> set[str]: ...


@dataclass
class DayResult(Figures):
    day: str = ""
    arm: str = ""


def _experiment() -> Experiment:
    exp, _ = Experiment.objects.update_or_create(
        name=EXPERIMENT,
        defaults={
            "status": Experiment.Status.RUNNING,
            "placement": None,
            "holdout": 0.0,
            "arms": list(ARMS),
        },
    )
    return exp


class LiveTraffic(ValueError):
    """The database serves real shoppers: the simulation would bill their campaigns and re-date beside them."""


def live_traffic(exp: Experiment | None = None) -> tuple[int, dt.datetime | None]:
    """How many impressions were not made by the simulation, and when the last one was served."""
    exp = exp or Experiment.objects.filter(name=EXPERIMENT).first()
    qs = Impression.objects.all()
    if exp is not None:
        qs = qs.exclude(context__experiment=exp.pk)
    found = qs.aggregate(n=Count("id"), last=Max("served_at"))
    return found["n"], found["last"]


def check_no_live_traffic() -> None:
    """LiveTraffic if the database has impressions that no simulation made."""
    n, last = live_traffic()
    if n:
        raise LiveTraffic(
            f"this database has live traffic ({n} impression(s) not made by a simulation, the last at "
            f"{timezone.localtime(last):%Y-%m-%d %H:%M %Z}): a simulation would bill its campaigns, split its "
            "serving and write rows beside it. Run it on a copy of the database (or a fresh demo), or pass "
            "--force to run it here anyway."
        )


@transaction.atomic
def _move_to(day: dt.date, marks: dict[str, int], today: dt.date, exp: Experiment, shopper_ids: list[int]) -> None:
    """Move the simulation's rows written since ``marks`` (and its spend of today) to the simulated ``day``."""
    delta = timezone.localdate() - day
    shift = dt.timedelta(days=delta.days)
    mine = Q(context__experiment=exp.pk, shopper_id__in=shopper_ids)
    impressions = Impression.objects.filter(mine, pk__gt=marks["impression"])
    events = AdEvent.objects.filter(pk__gt=marks["event"], impression__in=impressions)
    spend = list(events.filter(charge__gt=0).values("campaign_id").annotate(total=Sum("charge")))
    for row in spend:  # the simulation's own spend moves; live spend of today stays where it is
        CampaignDay.objects.filter(campaign_id=row["campaign_id"], day=today).update(spent=F("spent") - row["total"])
        moved, _ = CampaignDay.objects.get_or_create(campaign_id=row["campaign_id"], day=day)
        CampaignDay.objects.filter(pk=moved.pk).update(spent=F("spent") + row["total"])
    CampaignDay.objects.filter(day=today, spent__lte=0, campaign_id__in=[r["campaign_id"] for r in spend]).delete()
    Conversion.objects.filter(pk__gt=marks["conversion"], impression__in=impressions).update(
        ordered_at=F("ordered_at") - shift, created_at=F("created_at") - shift
    )
    events.update(occurred_at=F("occurred_at") - shift, impression_served_at=F("impression_served_at") - shift)
    impressions.update(served_at=F("served_at") - shift)


def _marks() -> dict[str, int]:
    def top(model) -> int:
        return model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    return {"impression": top(Impression), "event": top(AdEvent), "conversion": top(Conversion)}


@dataclass
class Outcome:
    """A simulation's results: per day and arm the figures, and per arm the page-relevance share."""

    days: list[DayResult]
    # arm -> [sponsored ads on category and product pages matching the page or the shopper's top interests, all
    # sponsored ads there, house ads there]
    page_relevance: dict[str, list[int]]

    def share(self, arm: str) -> float | None:
        matched, total, _ = self.page_relevance.get(arm, [0, 0, 0])
        return matched / total if total else None


def _ad_categories(ad: Ad) -> set[str]:
    if ad.product is not None:
        return set(ad.product.categories)
    snap = get_backend().snapshot()
    i = snap.index_of.get(ad.campaign_id)
    return set(snap.campaigns[i].categories) if i is not None else set()


def run(
    *,
    truth: Truth,
    days: int,
    shoppers: int = 200,
    visits: int = 4,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> Outcome:
    """Simulate ``days`` days ending yesterday; returns per day and arm the outcome, and per arm the share of
    relevant ads on category and product pages. ``progress(done, total)`` counts shopper-days simulated.

    Raises LiveTraffic on a database with live traffic unless ``force``.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if not Placement.objects.filter(key__in=PLACEMENT_FOR_PAGE.values()).exists():
        raise ValueError(f"no placements {', '.join(PLACEMENT_FOR_PAGE.values())}: load the demo campaigns first")
    if not force:
        check_no_live_traffic()
    rng = random.Random(seed)
    exp = _experiment()
    get_backend().invalidate()
    people = truth.shoppers(rng, shoppers)
    if not people:
        raise ValueError("no shoppers to simulate")
    today = timezone.localdate()
    entry = ExperimentEntry(exp.pk, exp.name, None, exp.holdout, exp.salt, tuple(exp.arms))
    arm_of = {p.pk: assign(entry, f"s{p.pk}") for p in people}
    interests = getattr(truth, "interests", None)
    relevance: dict[str, list[int]] = {a["name"]: [0, 0, 0] for a in ARMS}
    try:
        for d in range(days):
            day = today - dt.timedelta(days=days - d)
            marks = _marks()
            get_backend().reset()
            for i, shopper in enumerate(people):
                ip = f"10.{(i // 256) % 256}.{i % 256}.1"
                for _ in range(visits):
                    context, category = truth.page(shopper, rng)
                    key = PLACEMENT_FOR_PAGE.get(context.page)
                    if key is None:
                        continue
                    decision = decide(
                        placement_key=key,
                        shopper=shopper,
                        context=context,
                        product_categories=(category,) if category else (),
                    )
                    page_categories = {context.category, category} - {""}
                    if context.page in ("category", "product"):
                        wanted = page_categories | (set(interests(shopper)) if interests else set())
                        for ad in decision.ads:
                            counts = relevance[arm_of[shopper.pk]]
                            if ad.house:
                                counts[2] += 1
                            else:
                                counts[0] += bool(_ad_categories(ad) & wanted)
                                counts[1] += 1
                    for ad in decision.ads:
                        token = tokens.make(nonce=ad.nonce, row=ad.row)
                        record(kind=AdEvent.Kind.VIEW, token=token, ip=ip, user_agent=BROWSER)
                        if rng.random() < truth.click_probability(shopper, ad):
                            result = record(kind=AdEvent.Kind.CLICK, token=token, ip=ip, user_agent=BROWSER)
                            if result.counted and rng.random() < truth.conversion_probability(shopper, ad):
                                truth.place_order(shopper, ad, timezone.now())
                if progress:
                    progress(d * len(people) + i + 1, days * len(people))
            impression_log.flush()
            _move_to(day, marks, today, exp, [p.pk for p in people])
            update_strategy(lag_seconds=0)
            refit(force=True)
    finally:
        exp.status = Experiment.Status.STOPPED  # live serving is not split by the simulation's experiment
        exp.save(update_fields=["status", "updated_at"])
        get_backend().invalidate()
    return Outcome(days=results(exp, since=today - dt.timedelta(days=days), until=today), page_relevance=relevance)


def results(exp: Experiment, *, since: dt.date | None = None, until: dt.date | None = None) -> list[DayResult]:
    """Per simulated day and arm of the experiment: impressions, clicks, conversions, spend and revenue, read
    from ``selectors.performance`` like every report (a run repeated over the same days adds to them)."""
    prefix = f"{exp.pk}:"
    found = figures(
        None,
        by=("day", "arm"),
        since=clock.day_start(since) if since else None,
        until=clock.day_start(until) if until else None,
    )
    return [
        DayResult(day=day.isoformat(), arm=arm.removeprefix(prefix), **vars(f))
        for (day, arm), f in sorted(found.items())
        if arm.startswith(prefix)
    ]
