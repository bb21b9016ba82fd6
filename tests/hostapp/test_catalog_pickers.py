"""The campaign form's pickers in a shop adengine was not written for: UUID products named ``name`` by ``maker``,
filed in ``Section``s with a ``code`` and a ``label``, and no admin of its own."""

from __future__ import annotations

import pytest

from adengine.admin.forms import CampaignForm
from adengine.selectors.catalog import search_products, shop_categories

from .models import Item, Section

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    tea = Section.objects.create(code="tea", label="Tea")
    Section.objects.create(code="coffee", label="Coffee")
    oolong = Item.objects.create(name="Oolong tea", maker="Hill Co", section=tea, cost_cents=4500)
    Item.objects.create(name="Hidden tea", maker="Hill Co", section=tea, cost_cents=100, listed=False)
    return oolong


def test_products_are_found_by_name_maker_or_uuid(catalog):
    for term in ("oolong", "hill", str(catalog.pk)):
        found, more = search_products(term)
        assert [p.id for p in found] == [str(catalog.pk)] and not more, term
        assert found[0].text == "Oolong tea · Hill Co"
    assert search_products("not-a-uuid-nor-a-name")[0] == []


def test_the_shops_sections_are_its_categories_and_a_misspelt_one_is_refused(catalog):
    assert [(c.key, c.label) for c in shop_categories()] == [("coffee", "Coffee (coffee)"), ("tea", "Tea (tea)")]
    form = CampaignForm(data={"categories": ["cofee"]})
    assert not form.is_valid()
    assert "“cofee” is not a category of the shop; did you mean “coffee” (Coffee)?" in form.errors["categories"]
