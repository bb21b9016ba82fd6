"""The campaign form prevents mistakes: keywords split as people type them, categories only of the shop's (with a
suggestion for a misspelt one), products picked by name, and a message on every field that can be wrong."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from adengine.admin.forms import CampaignForm
from adengine.models import Campaign
from adengine.text import split_keywords
from tests.factories import AdvertiserFactory, CampaignFactory, CategoryFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "typed",
    [
        "running, trail",
        "running，trail",
        "running、trail",
        "running; trail",
        "running；trail",
        "running\ntrail",
        "running\r\ntrail",
        " running ,,\n\n trail ; ",
    ],
)
def test_keywords_split_on_each_separator(typed):
    assert split_keywords(typed) == ["running", "trail"]


def test_keywords_are_trimmed_deduplicated_and_keep_their_order():
    assert split_keywords("跑步鞋，Trail  shoes、 trail shoes；跑步鞋\n越野") == ["跑步鞋", "Trail shoes", "越野"]
    assert split_keywords("") == [] and split_keywords(" ,，、;；\n") == []


def form_data(**overrides) -> dict:
    """What the admin's add form posts for a valid campaign."""
    data = {
        "advertiser": AdvertiserFactory(name="Trailhead").pk,
        "name": "Spring trail",
        "status": "draft",
        "tier": "sponsored",
        "description": "Trail runners",
        "keywords": "",
        "audience_min_similarity": "",
        "languages": ["en"],
        "brand_voice": "",
        "objective": "clicks",
        "pricing": "cpc",
        "bid": "0.50",
        "total_budget": "100",
        "daily_budget": "",
        "starts_at": "",
        "ends_at": "",
        "frequency_cap": "0",
        "landing_url": "",
    }
    return data | overrides


def test_the_form_stores_keywords_split_on_chinese_and_ascii_separators():
    # given keywords typed with a Chinese comma, an enumeration comma, a semicolon and a new line
    form = CampaignForm(data=form_data(keywords="跑步鞋，trail shoes、越野;Trail Shoes\nmarathon"))
    # then they are stored one by one, the repeat once
    assert form.is_valid(), form.errors
    assert form.save().keywords == ["跑步鞋", "trail shoes", "越野", "marathon"]
    # and shown again as one comma-separated line
    assert "跑步鞋, trail shoes, 越野, marathon" in str(CampaignForm(instance=Campaign.objects.get())["keywords"])


def test_a_keyword_too_long_is_an_error_naming_it():
    form = CampaignForm(data=form_data(keywords="ok, " + "x" * 61))
    assert not form.is_valid()
    assert "“" + "x" * 61 + "” has 61 characters; at most 60" in " ".join(form.errors["keywords"])


def test_a_misspelt_category_is_an_error_that_suggests_the_closest():
    # given the shop's categories
    CategoryFactory(slug="running-shoes", name_en="Running Shoes", name_zh="跑鞋")
    CategoryFactory(slug="coffee-tea", name_en="Coffee & Tea", name_zh="咖啡茶")
    # when a campaign names one misspelt and one that is nothing like any
    form = CampaignForm(data=form_data(categories=["runing-shoes", "zzqx"]))
    # then both are errors, the first with the closest category
    assert not form.is_valid()
    messages = form.errors["categories"]
    assert "“runing-shoes” is not a category of the shop; did you mean “running-shoes” (Running Shoes / 跑鞋)?" in (
        messages
    )
    assert "“zzqx” is not a category of the shop; pick one from the list." in messages
    # and nothing is saved
    assert not Campaign.objects.exists()


def test_categories_are_offered_by_name_and_stored_by_key():
    CategoryFactory(slug="running-shoes", name_en="Running Shoes", name_zh="跑鞋")
    form = CampaignForm(data=form_data(categories=["running-shoes", "跑鞋", "Running Shoes"]))
    assert ("running-shoes", "Running Shoes / 跑鞋 (running-shoes)") in form.fields["categories"].choices
    assert form.is_valid(), form.errors
    assert form.save().categories == ["running-shoes"]  # a name in either language is the same category


def test_a_stored_category_the_shop_no_longer_has_is_shown_and_must_be_fixed():
    CategoryFactory(slug="pets", name_en="Pets")
    campaign = CampaignFactory(categories=["pest"])
    form = CampaignForm(instance=campaign)
    assert ("pest", "pest — not a category of the shop") in form.fields["categories"].choices
    bound = CampaignForm(instance=campaign, data=form_data(categories=["pest"]))
    assert "did you mean “pets” (Pets / 类别)?" in " ".join(bound.errors["categories"])


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"starts_at": "2030-05-02 10:00", "ends_at": "2030-05-01 10:00"},
            "ends_at",
            "The end (2030-05-01 10:00) must be after the start (2030-05-02 10:00).",
        ),
        (
            {"total_budget": "50", "daily_budget": "80"},
            "daily_budget",
            "The daily budget (80.00) is more than the total budget (50.00); lower it or raise the total budget.",
        ),
        ({"bid": "0"}, "bid", "A sponsored campaign's bid must be more than 0 (only house ads run unbilled)."),
        ({"bid": "-1"}, "bid", "Ensure this value is greater than or equal to 0."),
        ({"bid": "abc"}, "bid", "Enter a number."),
        ({"languages": ["en", "fr"]}, "languages", "“fr” is not one of this shop's languages (ADENGINE['LANGUAGES'])."),
        ({"audience_min_similarity": "3"}, "audience_min_similarity", "a cosine similarity between -1 and 1"),
        ({"landing_url": "javascript:alert(1)"}, "landing_url", "must be a path on the shop"),
        ({"frequency_cap": "-2"}, "frequency_cap", "greater than or equal to 0"),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_every_field_that_can_be_wrong_has_a_message(overrides, field, message):
    form = CampaignForm(data=form_data(**overrides))
    assert not form.is_valid()
    assert message in " ".join(form.errors.get(field, [])), form.errors


def test_a_house_ad_may_bid_nothing():
    form = CampaignForm(data=form_data(tier="house", bid="0"))
    assert form.is_valid(), form.errors


def test_a_language_the_shop_no_longer_writes_in_is_shown_and_named():
    campaign = CampaignFactory(languages=["en", "fr"])
    form = CampaignForm(instance=campaign, data=form_data(languages=["en", "fr"]))
    assert ("fr", "fr — French") in form.fields["languages"].choices
    assert not form.is_valid()
    assert "Unknown language(s) fr: this shop's ad copy is written in en, zh" in " ".join(form.errors["languages"])


def test_budget_below_what_was_spent_is_refused():
    campaign = CampaignFactory(total_budget=Decimal("100"))
    Campaign.objects.filter(pk=campaign.pk).update(spent=Decimal("40"))
    campaign.refresh_from_db()
    form = CampaignForm(instance=campaign, data=form_data(total_budget="30"))
    assert "below what the campaign has spent already (40.00)" in " ".join(form.errors["total_budget"])


def test_load_campaigns_keeps_the_same_rules():
    from adengine.services.campaigns import SpecError, apply_campaign

    with pytest.raises(SpecError, match="daily budget .* is more than the total budget"):
        apply_campaign(
            {"advertiser": "A", "name": "B", "total_budget": "10", "daily_budget": "20"}, where="campaigns.json #1"
        )


# ---- the product picker ----------------------------------------------------------------------------------------


@pytest.fixture
def editor(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_product_picker_finds_products_by_name_with_their_image(editor):
    # given products with names in two languages
    shoe = ProductFactory(
        title_en="Trail Runner 3", title_zh="越野跑鞋", brand="Peak", image_url="https://img.example/t.jpg"
    )
    ProductFactory(title_en="Pour-over Coffee", title_zh="手冲咖啡", brand="Bean")
    url = reverse("admin:adengine_product_autocomplete")
    # when the editor types part of a name, in English or Chinese, or the brand
    for term in ("trail run", "越野", "PEAK", shoe.sku):
        found = editor.get(url, {"term": term}).json()
        # then the product is offered by its name, with its image
        assert found["results"] == [
            {"id": str(shoe.pk), "text": "Trail Runner 3 / 越野跑鞋 · Peak", "image": "https://img.example/t.jpg"}
        ], term
    # and its own id finds it too
    assert str(shoe.pk) in [r["id"] for r in editor.get(url, {"term": str(shoe.pk)}).json()["results"]]


def test_the_product_picker_pages_and_skips_unlisted_products(editor):
    for n in range(25):
        ProductFactory(title_en=f"Socks {n}")
    ProductFactory(title_en="Socks retired", is_active=False)
    url = reverse("admin:adengine_product_autocomplete")
    first = editor.get(url, {"term": "socks"}).json()
    second = editor.get(url, {"term": "socks", "page": "2"}).json()
    assert len(first["results"]) == 20 and first["pagination"]["more"] is True
    assert len(second["results"]) == 5 and second["pagination"]["more"] is False
    assert "retired" not in str(first) + str(second)
    bad = editor.get(url, {"term": "socks", "page": "x"})
    assert bad.status_code == 400 and "page must be a whole number" in bad.json()["error"]
    assert editor.get(url, {"term": str(2**70)}).status_code == 200  # too big for an id: nothing, not a 500


def test_the_product_picker_is_for_campaign_editors_only(client):
    url = reverse("admin:adengine_product_autocomplete")
    assert client.get(url, {"term": "x"}).status_code == 302  # to the admin's login
    client.force_login(UserFactory(is_staff=True))
    assert client.get(url, {"term": "x"}).status_code == 403


def test_creating_a_campaign_in_the_admin_with_the_pickers(editor):
    # given a product and a category of the shop
    shoe = ProductFactory(title_en="Trail Runner 3", image_url="https://img.example/t.jpg")
    CategoryFactory(slug="running-shoes", name_en="Running Shoes")
    add = reverse("admin:adengine_campaign_add")
    page = editor.get(add).content.decode()
    assert "adengine-product-picker" in page and "adengine-category-picker" in page
    assert "adengine/admin/pickers.js" in page
    # when the form is posted with the picked product, the category and keywords typed with Chinese commas
    data = form_data(keywords="跑步，trail", categories=["running-shoes"], promoted_products=[shoe.pk])
    response = editor.post(add, data)
    # then the campaign is saved with them
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get(name="Spring trail")
    assert list(campaign.promoted_products.all()) == [shoe]
    assert campaign.keywords == ["跑步", "trail"] and campaign.categories == ["running-shoes"]
    # and its change page names the product instead of showing its id
    change = editor.get(reverse("admin:adengine_campaign_change", args=[campaign.pk])).content.decode()
    assert "Trail Runner 3" in change


def test_the_admin_form_shows_each_message_on_its_field(editor):
    now = timezone.localtime()
    data = form_data(
        bid="0",
        total_budget="10",
        daily_budget="20",
        categories=["nope"],
        **{"starts_at_0": (now + dt.timedelta(days=2)).date().isoformat(), "starts_at_1": "10:00:00"},
        **{"ends_at_0": now.date().isoformat(), "ends_at_1": "10:00:00"},
    )
    page = editor.post(reverse("admin:adengine_campaign_add"), data)
    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert set(errors) >= {"bid", "daily_budget", "categories", "ends_at"}, errors
    assert not Campaign.objects.exists()
