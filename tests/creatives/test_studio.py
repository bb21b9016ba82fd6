"""The creative studio end to end: the real local model, the rules, ranking, review, the task, the API."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from adengine.models import Advertiser, Campaign, Creative, GenerationRequest
from adengine.services.creatives import CreativeRequestError, add_human_asset, request_copy, review, run_request
from tests.conftest import adengine_settings
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

SHORT = {"COPYWRITER": {"MAX_NEW_TOKENS": 28, "BATCH_SIZE": 2}}


@adengine_settings(**SHORT)
@pytest.mark.parametrize("language", ["en", "zh"])
def test_real_model_writes_checked_ranked_drafts(campaign, language):
    # when copy is requested and run (the local Gemma model, short generations)
    request = request_copy(campaign=campaign, language=language, n=2, seed=3, enqueue=False)
    request = run_request(str(request.pk))
    # then the request is done and every variant is stored with its rule results
    assert request.status == GenerationRequest.Status.DONE, request.error
    assets = list(Creative.objects.filter(request=request))
    assert assets and request.stats["tokens"] > 0
    for a in assets:
        assert a.language == language and a.source == "generated" and a.model_name and a.prompt_version
        assert a.rule_results and a.passes_rules == all(r["passed"] for r in a.rule_results)
        assert a.status == ("draft" if a.passes_rules else "rejected")
        assert a.label == "PENDING"
    assert all(a.score is not None for a in assets if a.passes_rules)
    # and the rejected ones are counted by the rules they failed
    rejected = [a for a in assets if not a.passes_rules]
    # (an empty completion's parts are counted too, though there is no text to store)
    assert bool(request.stats["rejections"]) >= bool(rejected)
    assert sum(request.stats["rejections"].values()) >= len(rejected) and request.stats["notes"] == []
    # and running the same request again writes nothing new (idempotent per request id)
    run_request(str(request.pk))
    assert Creative.objects.filter(request=request).count() == len(assets)


@adengine_settings(**SHORT)
def test_same_seed_same_copy(campaign):
    from adengine.services.creatives import generate

    a = generate(campaign=campaign, language="en", n=2, seed=11)
    b = generate(campaign=campaign, language="en", n=2, seed=11)
    assert [v.text for v in a.variants] == [v.text for v in b.variants]


def test_human_assets_pass_the_same_rules_and_review(campaign):
    good = add_human_asset(campaign=campaign, asset_type="headline", language="en", text="Music All Day Long")
    bad = add_human_asset(campaign=campaign, asset_type="headline", language="en", text="The #1 Earbuds")
    dup = add_human_asset(campaign=campaign, asset_type="headline", language="en", text="Music all day long!")
    assert good.passes_rules and good.status == "draft" and good.score is not None
    assert not bad.passes_rules and "absolute_claims" in bad.rejection_reasons[0]
    assert not dup.passes_rules and any("near_duplicate" in r for r in dup.rejection_reasons)
    # an asset failing the rules cannot be approved
    assert review(creatives=Creative.objects.all(), approve=True) == 1
    assert set(Creative.objects.filter(status="approved").values_list("pk", flat=True)) == {good.pk}


def test_bad_requests_are_clear_errors(campaign):
    with pytest.raises(CreativeRequestError, match="unknown language 'fr'"):
        request_copy(campaign=campaign, language="fr", n=2)
    empty = Campaign.objects.create(advertiser=campaign.advertiser, name="Empty")
    with pytest.raises(CreativeRequestError, match="no keywords and no promoted products"):
        request_copy(campaign=empty, language="en", n=2)
    with pytest.raises(CommandError, match="no campaign with id"):
        call_command("adengine_generate_copy", "--campaign", "999999", "--language", "en")


def test_a_model_that_fails_to_load_fails_the_request_not_the_worker(campaign, tmp_path):
    request = request_copy(campaign=campaign, language="en", n=2, enqueue=False)
    with adengine_settings(COPYWRITER={"MODEL": str(tmp_path / "missing")}):
        done = run_request(str(request.pk))
    assert done.status == "failed" and "does not exist" in done.error
    assert not Creative.objects.exists()


def test_generated_text_is_escaped_in_the_admin_and_api(campaign, client):
    Creative.objects.create(
        campaign=campaign, asset_type="headline", language="en", text="<script>alert(1)</script>", source="generated"
    )
    admin = get_user_model().objects.create_superuser("boss", "b@example.com", "pw")
    client.force_login(admin)
    page = client.get("/admin/adengine/creative/").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    data = client.get("/api/adengine/v1/creatives/").json()
    assert data[0]["text"] == "<script>alert(1)</script>"  # JSON carries it as data; clients escape


def test_api_scopes_advertisers_to_their_own(campaign, client):
    user_model = get_user_model()
    owner = user_model.objects.create_user("owner", password="pw")
    stranger = user_model.objects.create_user("stranger", password="pw")
    campaign.advertiser.managers.add(owner)
    Advertiser.objects.create(name="Other").managers.add(stranger)
    asset = add_human_asset(campaign=campaign, asset_type="headline", language="en", text="Music All Day Long")
    client.force_login(stranger)
    assert client.get("/api/adengine/v1/creatives/").json() == []
    assert client.post(f"/api/adengine/v1/creatives/{asset.pk}/approve/").status_code == 404
    assert (
        client.post(
            f"/api/adengine/v1/campaigns/{campaign.pk}/generate/", {"language": "en"}, content_type="application/json"
        ).status_code
        == 404
    )
    client.force_login(owner)
    assert [a["id"] for a in client.get("/api/adengine/v1/creatives/").json()] == [asset.pk]
    resp = client.post(f"/api/adengine/v1/creatives/{asset.pk}/approve/")
    assert resp.status_code == 200 and resp.json()["status"] == "approved"
    bad = client.post(
        f"/api/adengine/v1/campaigns/{campaign.pk}/generate/", {"language": "xx"}, content_type="application/json"
    )
    assert bad.status_code == 400 and "unknown language" in bad.json()["language"][0]
    ok = client.post(
        f"/api/adengine/v1/campaigns/{campaign.pk}/generate/",
        {"language": "en", "n": 2},
        content_type="application/json",
    )
    assert ok.status_code == 202 and ok.json()["status"] == "queued"
    assert client.get(f"/api/adengine/v1/generation-requests/{ok.json()['id']}/").status_code == 200
    client.logout()
    assert client.get("/api/adengine/v1/creatives/").status_code in (401, 403)


def test_editing_an_approved_assets_text_runs_the_rules_and_returns_it_to_review(campaign, client):
    # given an approved headline
    asset = add_human_asset(campaign=campaign, asset_type="headline", language="en", text="Music All Day Long")
    review(creatives=Creative.objects.filter(pk=asset.pk), approve=True)
    admin = get_user_model().objects.create_superuser("editor", "e@example.com", "pw")
    client.force_login(admin)
    url = f"/admin/adengine/creative/{asset.pk}/change/"
    form = {"campaign": campaign.pk, "asset_type": "headline", "language": "en", "status": "approved"}
    # when its text is edited in the admin to a claim the rules forbid (status left on "approved")
    client.post(url, {**form, "text": "The #1 Earbuds"})
    asset.refresh_from_db()
    # then the rules ran again: it is rejected with the reason, and never served as approved
    assert asset.text == "The #1 Earbuds" and asset.status == "rejected" and not asset.passes_rules
    assert "absolute_claims" in asset.rejection_reasons[0]
    # and an acceptable new text goes back to review, not straight to approved
    client.post(url, {**form, "text": "Sound That Lasts All Day"})
    asset.refresh_from_db()
    assert asset.passes_rules and asset.status == "draft" and asset.reviewed_by is None


def test_the_admin_shows_each_rule_in_words_with_the_evidence_of_claims(campaign, client):
    # a person's copy with a claim the product states, and one with a claim nobody stated
    grounded = add_human_asset(
        campaign=campaign, asset_type="description", language="en", text="Wireless earbuds with 30 hours of music."
    )
    invented = add_human_asset(
        campaign=campaign, asset_type="description", language="en", text="Waterproof wireless earbuds, SPF 50."
    )
    assert grounded.passes_rules and not invented.passes_rules
    admin = get_user_model().objects.create_superuser("boss", "b@example.com", "pw")
    client.force_login(admin)
    page = client.get(f"/admin/adengine/creative/{grounded.pk}/change/").content.decode()
    assert "every claim stated by the campaign&#x27;s facts" in page
    assert "30 hours (product description: Wireless earbuds with 30 hours of battery life.)" in page
    page = client.get(f"/admin/adengine/creative/{invented.pk}/change/").content.decode()
    assert "failed" in page and "unsupported claim: 50, waterproof, spf" in page
    # and the list rounds the quality score
    listing = client.get("/admin/adengine/creative/").content.decode()
    assert f"{grounded.score:.2f}" in listing and str(grounded.score) not in listing


def test_copy_about_another_product_fails_product_fit(campaign):
    from adengine.services.products import embed_products

    # a catalog of other things the shop sells
    kinds = ["dry dog food", "cat litter", "trail running shoes", "coffee beans", "yoga mat", "frying pan",
             "silk blouse", "duvet cover", "plush toy", "lipstick"]  # fmt: skip
    for i in range(30):
        kind = kinds[i % len(kinds)]
        ProductFactory(title_en=f"{kind.title()} {i}", description_en=f"A {kind} for everyday use.")
    embed_products()
    about_dogs = add_human_asset(
        campaign=campaign, asset_type="description", language="en", text="Crunchy dog food for pets, with chicken."
    )
    about_music = add_human_asset(
        campaign=campaign, asset_type="description", language="en", text="Wireless earbuds for music on the go."
    )
    # (a headline may be evocative: it is not held to its product)
    evocative = add_human_asset(campaign=campaign, asset_type="headline", language="en", text="Quiet the commute")
    assert "product_fit" in " ".join(about_dogs.rejection_reasons)
    assert about_music.passes_rules, about_music.rejection_reasons
    assert not any("product_fit" in r for r in evocative.rejection_reasons)


def test_a_product_without_a_description_is_written_about_from_title_category_and_keywords(campaign):
    from adengine.services.creatives import campaign_inputs

    product = campaign.promoted_products.get()
    text, keywords, names, notes = campaign_inputs(campaign, "en")
    assert text == "Wireless earbuds. Wireless earbuds with 30 hours of battery life." and notes == []
    product.description_en = ""
    product.save()
    text, keywords, names, notes = campaign_inputs(campaign, "en")
    assert text == "Wireless earbuds. Audio. wireless earbuds"
    assert notes == [
        "Wireless earbuds has no en description: the copy was written from its title, category and the campaign's "
        "keywords"
    ]


def test_the_admin_says_why_a_headline_is_served(campaign, client):
    generated = Creative.objects.create(
        campaign=campaign, asset_type="headline", language="en", text="Music all day", source="generated",
        status="approved", passes_rules=True, ctr_alpha=3.0, ctr_beta=97.0, served=120, clicked=2, label="LEARNING",
    )  # fmt: skip
    draft = Creative.objects.create(campaign=campaign, asset_type="headline", language="en", text="Hear it all")
    admin = get_user_model().objects.create_superuser("boss", "b@example.com", "pw")
    client.force_login(admin)
    page = client.get(f"/admin/adengine/creative/{generated.pk}/change/").content.decode()
    assert "estimated CTR 3.00% from its prior, capped at the campaign&#x27;s best human-written headline" in page
    assert "120 impressions with 2 clicks; label learning" in page
    page = client.get(f"/admin/adengine/creative/{draft.pk}/change/").content.decode()
    assert "not served: only approved headlines compete" in page


def test_near_duplicates_share_wording_not_only_meaning(campaign):
    from adengine.ml.compliance import overlap

    first = "无线耳机续航30小时，通勤运动都能听。"
    other = "通勤路上戴上无线耳机，一次充电陪你30小时。"  # the same product and facts, in other words
    again = "无线耳机续航30小时，通勤运动都能听！"
    assert overlap(first, again) > 0.8 and overlap(first, other) < 0.5
    a = add_human_asset(campaign=campaign, asset_type="description", language="zh", text=first)
    b = add_human_asset(campaign=campaign, asset_type="description", language="zh", text=other)
    c = add_human_asset(campaign=campaign, asset_type="description", language="zh", text=again)
    assert a.passes_rules, a.rejection_reasons
    assert not any("near_duplicate" in r for r in b.rejection_reasons), b.rejection_reasons
    assert any("near_duplicate" in r for r in c.rejection_reasons)
