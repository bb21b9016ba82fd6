"""adengine_load_campaigns: campaigns from a JSON file, and generated copy queued for as many as asked;
adengine_check_copy: the rules' verdict on any text, from the command line."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from adengine.models import Campaign, Creative, GenerationRequest

pytestmark = pytest.mark.django_db  # (copy requests are queued on commit: recorded, not sent, here)


def _campaign(name: str) -> dict:
    return {
        "advertiser": "Kestrel",
        "name": name,
        "status": "active",
        "description": "Runners who go off-road: trail running shoes.",
        "keywords": ["trail running", "running shoes"],
        "languages": ["en"],
        "objective": "clicks",
        "pricing": "cpc",
        "bid": "0.50",
        "total_budget": "100",
        "assets": {
            "en": {
                "headlines": [f"{name}: trail running shoes"],
                "descriptions": ["Trail running shoes with grippy soles."],
            }
        },
    }


def test_copy_is_queued_for_the_first_campaigns_only(tmp_path):
    path = tmp_path / "campaigns.json"
    path.write_text(json.dumps([_campaign("Trail season"), _campaign("Road season")]))
    call_command(
        "adengine_load_campaigns", str(path), "--generate-copy", "--generate-limit", "1", "--n", "2", "--no-targets"
    )
    first, second = Campaign.objects.get(name="Trail season"), Campaign.objects.get(name="Road season")
    # both campaigns with their written (approved) headline
    assert Creative.objects.filter(campaign=second, status=Creative.Status.APPROVED).count() == 1
    # and generated copy asked for the first only
    assert list(GenerationRequest.objects.values_list("campaign_id", flat=True)) == [first.pk]


def test_loading_says_what_scoring_the_written_copy_computed(tmp_path):
    import io

    from adengine.models import ProductVector
    from tests.factories import ProductFactory

    # given a catalog not embedded yet (a first start) and a campaign with written copy promoting one product
    product = ProductFactory(title_en="Kestrel trail running shoes", description_en="Grippy soles for wet trails.")
    path = tmp_path / "campaigns.json"
    path.write_text(json.dumps([{**_campaign("Trail season"), "promoted_products": [product.sku]}]))
    out = io.StringIO()
    # when it is loaded
    call_command("adengine_load_campaigns", str(path), stdout=out)
    # then scoring its copy embedded the product and computed the target from it, and the command says so (it
    # printed "0 target vector(s) computed", which read like a failure)
    assert ProductVector.objects.filter(product_id=product.pk).exists()
    assert Campaign.objects.get(name="Trail season").target_vector is not None
    lines = out.getvalue().splitlines()
    assert "promoted products with a vector: 1 of 1" in lines
    assert (
        "target vectors: 1 of 1 campaigns have one (1 already current: scoring a campaign's written copy computes "
        "its target)"
    ) in lines


def test_scoring_copy_embeds_the_promoted_products_before_computing_the_target():
    from adengine.models import ProductVector
    from adengine.services.campaigns import refresh_targets
    from adengine.services.creatives import fit_targets
    from tests.factories import CampaignFactory, ProductFactory

    # given a campaign whose promoted product has no vector yet
    product = ProductFactory(title_en="Kestrel trail running shoes")
    campaign = CampaignFactory(products=[product], keywords=["trail running"])
    # when its copy is fitted to its targets
    centroid, products = fit_targets(campaign)
    # then the product was embedded first and the target computed from it: nothing is left to recompute (the
    # target used to be computed without the product, then again on the next scoring)
    assert products is not None and len(products) == 1
    assert ProductVector.objects.filter(product_id=product.pk).exists()
    assert refresh_targets(campaign_ids=[campaign.pk]) == 0


def test_check_copy_prints_every_reason_and_fails_on_a_rejected_text():
    import io

    from django.core.management import CommandError

    out = io.StringIO()
    call_command("adengine_check_copy", "--language", "en", "Grip on every trail", stdout=out)
    assert out.getvalue().startswith("PASS   headline")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 2 text") as raised:
        call_command("adengine_check_copy", "--language", "en", "Trail shoes for wet rocky paths",
                     "The Best Sleeves for a Couch", stdout=out)  # fmt: skip
    assert raised.value.returncode == 1
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("PASS") and lines[1].startswith("REJECT")
    assert "absolute_claims: absolute or superlative claim: best" in out.getvalue()
    with pytest.raises(CommandError, match="unknown language"):
        call_command("adengine_check_copy", "--language", "fr", "Bonjour")
    with pytest.raises(CommandError, match="no campaign 999999"):
        call_command("adengine_check_copy", "--language", "en", "--campaign", "999999", "Hello there")


def test_check_copy_grounds_claims_in_a_campaigns_facts(tmp_path):
    import io

    from django.core.management import CommandError

    path = tmp_path / "campaigns.json"
    path.write_text(json.dumps([_campaign("Trail season")]))
    call_command("adengine_load_campaigns", str(path), "--no-targets")
    campaign = Campaign.objects.get(name="Trail season")
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("adengine_check_copy", "--language", "en", "--campaign", str(campaign.pk),
                     "Waterproof trail running shoes with SPF 50", stdout=out)  # fmt: skip
    # the campaign (trail running shoes with grippy soles) states none of them
    assert "grounded: unsupported claim: 50, waterproof, spf" in out.getvalue()
    out = io.StringIO()
    call_command("adengine_check_copy", "--language", "en", "--campaign", str(campaign.pk),
                 "Trail running shoes with grippy soles", stdout=out)  # fmt: skip
    assert out.getvalue().startswith("PASS")
