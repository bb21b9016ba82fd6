"""The candidate index updated incrementally: after each kind of change, the updated snapshot is the one a full
build gives, field by field and array by array; only the changed campaigns are re-read; other processes find the
changes in the database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from decimal import Decimal

import numpy as np
import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from adengine.models import Campaign, Creative, Placement, ProductVector, Shopper
from adengine.services.creatives import review
from adengine.serving import builder, get_backend
from adengine.serving.index import IndexHolder
from adengine.serving.parts import CampaignPart
from tests.factories import CampaignFactory, CreativeFactory, PlacementFactory, ProductFactory

from .conftest import unit

# what differs between two builds of the same data: when they ran, and the per-snapshot caches
VOLATILE = {"built_at", "spend_at", "full_at", "eligible_cache", "parts"}


def assert_same(a, b, path: str = "snapshot") -> None:
    """Two values equal all the way down: arrays by dtype, shape and every element (NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), path
        assert (a.dtype, a.shape) == (b.dtype, b.shape), path
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), path
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            if path == "snapshot" and f.name in VOLATILE:
                continue
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path}: keys {set(a) ^ set(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float) and np.isnan(a):
        assert np.isnan(b), path
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"


def assert_parts_same(a: dict[int, CampaignPart], b: dict[int, CampaignPart]) -> None:
    assert a.keys() == b.keys()
    for cid in a:
        assert_same(a[cid], b[cid], f"parts[{cid}]")


def check(snap):
    """The snapshot equals a fresh full build of the same data, its parts too."""
    full = builder.build()
    assert_same(snap, full)
    assert_parts_same(snap.parts, full.parts)
    return full


@pytest.fixture
def shop(db):
    """Two placements; six campaigns of every kind (house, CPM, no target, keywords in two scripts, a description,
    a placement restriction, Chinese copy) and 220 shoppers with interest vectors (the audience fit is computed)."""
    hero = PlacementFactory(key="home-hero", max_ads=2)
    side = PlacementFactory(key="product-sidebar", max_ads=1, format=Placement.Format.TEXT)
    campaigns = []
    for i in range(6):
        products = [ProductFactory(), ProductFactory()]
        c = CampaignFactory(
            products=products,
            bid=Decimal("0.50") + i,
            tier=Campaign.Tier.HOUSE if i == 0 else Campaign.Tier.SPONSORED,
            pricing=Campaign.Pricing.CPM if i == 1 else Campaign.Pricing.CPC,
            keywords=[f"running shoes {i}", "跑步鞋"] if i % 2 else [f"kettle {i}"],
            categories=[f"cat-{i % 3}"],
            languages=["en", "zh"],
            placement_weights={"home-hero": 1.5} if i == 3 else {},
            pacing_rate=0.5 if i == 4 else 1.0,
        )
        if i != 2:  # campaign 2 has no target vector yet: its products' mean stands in
            c.target_vector = unit(i)
            c.save()
        for j, p in enumerate(products):
            ProductVector.objects.create(product=p, embedding=unit(50 + 2 * i + j), text_hash="x", model_version="t")
        for k in range(3):
            CreativeFactory(campaign=c, score=0.2 * k + 0.1, ctr_alpha=3.0 if k == 1 else None, ctr_beta=90.0)
        CreativeFactory(campaign=c, language="zh", text=f"标题{i}")
        if i == 5:
            CreativeFactory(campaign=c, asset_type=Creative.AssetType.DESCRIPTION, text="A fine kettle.")
            c.placements.set([side])
        campaigns.append(c)
    Shopper.objects.bulk_create(
        [Shopper(anonymous_key=f"s{n:030d}", interest_vector=unit(100 + n)) for n in range(220)]
    )
    return {"campaigns": campaigns, "hero": hero, "side": side}


def test_a_full_build_reads_every_kind_of_campaign(shop):
    # given the shop, when the index is built, then every campaign is in it with its audience fit
    snap = builder.build()
    assert len(snap.campaigns) == 6 and snap.audience_mean is not None
    assert snap.has_target.tolist() == [True, True, True, True, True, True]  # 2: its products' mean stands in
    assert "跑步鞋" in snap.cjk_keywords and "running" in snap.by_word
    assert snap.descriptions[(5, "en")][1] == "A fine kettle."
    # and a second build of the same data is the same snapshot (the audience sample is repeatable)
    check(snap)


def test_each_kind_of_change_updates_to_what_a_full_build_gives(shop):
    c = shop["campaigns"]
    snap = builder.build()

    # a bid edit: only that campaign is re-read
    Campaign.objects.filter(pk=c[3].pk).update(bid=Decimal("7.25"))
    fresh = builder.update(snap, campaign_ids={c[3].pk})
    assert fresh.campaigns[3].bid == Decimal("7.25") and snap.campaigns[3].bid != Decimal("7.25")  # snap unchanged
    assert fresh.parts[c[1].pk] is snap.parts[c[1].pk] and fresh.parts[c[3].pk] is not snap.parts[c[3].pk]
    snap = fresh
    check(snap)

    # a status edit: the paused campaign leaves, every later one moves up
    c[2].status = Campaign.Status.PAUSED
    c[2].save()
    snap = builder.update(snap, campaign_ids={c[2].pk})
    assert c[2].pk not in snap.index_of and len(snap.campaigns) == 5
    check(snap)

    # an asset approved (a bulk review), a headline's posterior moved, a description added
    pending = CreativeFactory(campaign=c[4], status=Creative.Status.DRAFT, text="A brand new headline")
    review(creatives=Creative.objects.filter(pk=pending.pk), approve=True)
    Creative.objects.filter(campaign=c[1], language="en").update(ctr_alpha=40.0, ctr_beta=60.0)
    CreativeFactory(campaign=c[4], asset_type=Creative.AssetType.DESCRIPTION, language="zh", text="好水壶")
    snap = builder.update(snap, campaign_ids={c[4].pk, c[1].pk})
    assert pending.pk in snap.arms["en"].creative_ids
    check(snap)

    # a placement edit, a new placement, a campaign restricted to it
    Placement.objects.filter(pk=shop["hero"].pk).update(max_ads=3)
    banner = PlacementFactory(key="search-top")
    c[0].placements.set([banner])
    snap = builder.update(snap, campaign_ids={c[0].pk})
    assert snap.placements["home-hero"].max_ads == 3 and banner.pk in snap.placement_mask
    check(snap)

    # a promoted product sold out (its card goes), an asset deleted, a campaign deleted, a new campaign
    product = c[5].promoted_products.first()
    product.stock = 0
    product.save()
    Creative.objects.filter(campaign=c[3]).first().delete()
    c[1].delete()
    new = CampaignFactory(products=[ProductFactory()], keywords=["teapot"])
    CreativeFactory(campaign=new)
    snap = builder.update(snap, campaign_ids={c[5].pk, c[3].pk, c[1].pk, new.pk})
    assert product.pk not in snap.cards and c[1].pk not in snap.index_of and new.pk in snap.index_of
    check(snap)

    # a campaign whose end passed, with no write at all
    Campaign.objects.filter(pk=c[4].pk).update(ends_at=timezone.now() + dt.timedelta(seconds=1))
    snap = builder.update(snap, campaign_ids={c[4].pk})
    assert c[4].pk in snap.index_of
    time.sleep(1.1)
    snap = builder.update(snap)
    assert c[4].pk not in snap.index_of
    check(snap)


def test_changes_made_in_this_process_reach_the_engine_through_signals(shop):
    # given the engine's index
    backend = get_backend()
    backend.reset()
    first = backend.snapshot()
    c = shop["campaigns"]
    # when a campaign, an asset and a placement are saved the ordinary way
    c[3].bid = Decimal("9.00")
    c[3].save()
    CreativeFactory(campaign=c[2], text="Signalled headline")
    shop["side"].max_ads = 2
    shop["side"].save()
    snap = backend.snapshot()
    # then the next read has them, updated rather than rebuilt
    assert snap is not first and snap.full_at == first.full_at
    assert snap.parts[c[0].pk] is first.parts[c[0].pk]
    assert snap.campaigns[snap.index_of[c[3].pk]].bid == Decimal("9.00")
    assert snap.placements["product-sidebar"].max_ads == 2
    check(snap)


@pytest.mark.django_db(transaction=True)
def test_another_process_finds_committed_changes_and_swaps_them_in(shop):
    # given a process's index, built and checked
    holder = IndexHolder()
    first = holder.get()
    c = shop["campaigns"]
    # when another process commits changes without any signal here (bulk updates, no updated_at)
    Campaign.objects.filter(pk=c[2].pk).update(bid=Decimal("3.33"))
    Creative.objects.filter(campaign=c[5], language="en").update(ctr_alpha=11.0)
    Placement.objects.filter(pk=shop["side"].pk).update(is_active=False)
    assert builder.fingerprint() != first.version
    # and this process's next check is due
    with override_settings(
        ADENGINE={**settings.ADENGINE, "SERVING_INDEX_CHECK_SECONDS": 0, "SERVING_INDEX_FULL_REBUILD_SECONDS": 0}
    ):
        assert holder.get() is first  # requests go on with the current snapshot while the update runs
        deadline = time.monotonic() + 30
        while holder.rebuilding and time.monotonic() < deadline:
            time.sleep(0.05)
    # then the process serves the update: only those campaigns re-read, and the same as a full build
    snap = holder.snapshot
    assert snap is not first and snap.full_at == first.full_at
    assert snap.campaigns[snap.index_of[c[2].pk]].bid == Decimal("3.33")
    assert not snap.placements["product-sidebar"].is_active
    assert snap.parts[c[0].pk] is first.parts[c[0].pk] and snap.parts[c[2].pk] is not first.parts[c[2].pk]
    check(snap)


@pytest.mark.django_db(transaction=True)
def test_the_safety_net_rebuilds_in_full_in_the_background(shop):
    holder = IndexHolder()
    first = holder.get()
    with override_settings(
        ADENGINE={**settings.ADENGINE, "SERVING_INDEX_CHECK_SECONDS": 0, "SERVING_INDEX_FULL_REBUILD_SECONDS": 0.01}
    ):
        time.sleep(0.02)
        holder.get()
        deadline = time.monotonic() + 30
        while holder.rebuilding and time.monotonic() < deadline:
            time.sleep(0.05)
    snap = holder.snapshot
    assert snap is not first and snap.full_at > first.full_at
    assert all(snap.parts[cid] is not first.parts[cid] for cid in snap.parts)  # every campaign read again
    assert_same(snap, first)


@pytest.mark.django_db(transaction=True)
def test_a_change_here_during_a_background_update_is_applied_again_on_top(shop, monkeypatch):
    # given a background update that is slow to finish
    holder = IndexHolder()
    first = holder.get()
    c = shop["campaigns"]
    release = threading.Event()
    real_update = builder.update

    def slow_update(snap, version=None, **kwargs):
        if not kwargs.get("campaign_ids"):
            release.wait(10)
        return real_update(snap, version, **kwargs)

    monkeypatch.setattr(builder, "update", slow_update)
    real = builder.fingerprint()
    monkeypatch.setattr(builder, "fingerprint", lambda: (*real[:-1], "changed elsewhere"))
    with override_settings(
        ADENGINE={**settings.ADENGINE, "SERVING_INDEX_CHECK_SECONDS": 0, "SERVING_INDEX_FULL_REBUILD_SECONDS": 0}
    ):
        holder.get()
        assert holder.rebuilding
        # when this process changes a campaign meanwhile (applied at once)
        Campaign.objects.filter(pk=c[1].pk).update(bid=Decimal("4.44"))
        holder.invalidate([c[1].pk])
        assert holder.get().campaigns[1].bid == Decimal("4.44")
        release.set()
        deadline = time.monotonic() + 30
        while holder.rebuilding and time.monotonic() < deadline:
            time.sleep(0.05)
    # then the background result (started before the change) is swapped in and the change applied again on top
    assert holder.pending == {c[1].pk}
    with override_settings(ADENGINE={**settings.ADENGINE, "SERVING_INDEX_CHECK_SECONDS": 3600}):
        assert holder.get().campaigns[1].bid == Decimal("4.44")
    assert first.campaigns[1].bid != Decimal("4.44")


def test_a_build_reads_in_as_many_queries_whatever_the_number_of_campaigns_and_products(shop):
    # given the shop's index, built once (warm caches), and the queries of a second build counted
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    builder.build()
    with CaptureQueriesContext(connection) as few:
        builder.build()
    # when campaigns with their products and headlines are added
    for _ in range(4):
        c = CampaignFactory(products=[ProductFactory(), ProductFactory()])
        CreativeFactory(campaign=c)
    with CaptureQueriesContext(connection) as more:
        snap = builder.build()
    # then a build reads them in the same number of queries (no query per product or campaign)
    assert len(snap.campaigns) == 10
    assert len(more.captured_queries) == len(few.captured_queries)
