"""Pickers of the campaign form: products by name with their image, and the shop's categories by name.

Both use the select2 the admin ships for its ``autocomplete_fields``. The product picker asks an adengine view
rather than the admin's own autocomplete, because the product model is the host's: adengine cannot count on it
being registered in the admin with ``search_fields``, and the adapter knows its titles and images.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.admin.widgets import AutocompleteSelectMultiple, get_select2_language
from django.http import HttpRequest, JsonResponse
from django.urls import reverse

PAGE_SIZE = 20


def _select2_media(*, extra_js: tuple[str, ...] = ()) -> forms.Media:
    """The admin's jQuery and select2 (as its autocomplete widgets load them), then adengine's picker script."""
    suffix = "" if settings.DEBUG else ".min"
    language = get_select2_language()
    i18n = (f"admin/js/vendor/select2/i18n/{language}.js",) if language else ()
    return forms.Media(
        js=(
            f"admin/js/vendor/jquery/jquery{suffix}.js",
            f"admin/js/vendor/select2/select2.full{suffix}.js",
            *i18n,
            "admin/js/jquery.init.js",
            *extra_js,
            "adengine/admin/pickers.js",
        ),
        css={"screen": (f"admin/css/vendor/select2/select2{suffix}.css", "admin/css/autocomplete.css")},
    )


class ProductPicker(AutocompleteSelectMultiple):
    """Search-as-you-type products by title, SKU or brand, with a thumbnail; the chosen ones shown by title."""

    def get_url(self) -> str:
        return reverse(f"{self.admin_site.name}:adengine_product_autocomplete")

    def build_attrs(self, base_attrs, extra_attrs=None):
        attrs = super().build_attrs(base_attrs, extra_attrs=extra_attrs)
        # our own class, so the admin's autocomplete.js leaves it to pickers.js (which shows thumbnails)
        attrs["class"] = attrs["class"].replace("admin-autocomplete", "adengine-product-picker")
        attrs["data-placeholder"] = "Type a product's name, SKU or brand"
        attrs.setdefault("style", "width: 40em")
        return attrs

    @property
    def media(self) -> forms.Media:
        return _select2_media(extra_js=("admin/js/autocomplete.js",))


class CategoryPicker(forms.SelectMultiple):
    """The shop's categories by name, filtered as you type (no free text: a category is one of the shop's)."""

    def __init__(self, attrs=None, choices=()):
        super().__init__(
            {"class": "adengine-category-picker", "data-theme": "admin-autocomplete", "style": "width: 40em"}
            | (attrs or {}),
            choices,
        )

    @property
    def media(self) -> forms.Media:
        return _select2_media()


class ProductChoiceField(forms.ModelMultipleChoiceField):
    """Promoted products, labelled by title and brand as the shop's adapter names them."""

    def label_from_instance(self, obj) -> str:
        from adengine.selectors.catalog import product_label

        return product_label(obj)


def product_field(db_field, admin_site, **kwargs) -> ProductChoiceField:
    """The form field for ``Campaign.promoted_products``: every product may stay chosen, the picker offers the
    advertisable ones."""
    from adengine.adapters import get_adapter

    kwargs.pop("widget", None)
    return ProductChoiceField(
        queryset=get_adapter().product_model()._default_manager.all(),
        required=False,
        widget=ProductPicker(db_field, admin_site),
        label=db_field.verbose_name.capitalize(),
        help_text=db_field.help_text,
    )


def product_autocomplete(request: HttpRequest, *, model_admin) -> JsonResponse:
    """select2's JSON for ``?term=...&page=n``: products whose title, SKU or brand contains every word typed."""
    from adengine.selectors.catalog import search_products

    if not (model_admin.has_change_permission(request) or model_admin.has_add_permission(request)):
        return JsonResponse({"error": "You may not edit campaigns."}, status=403)
    raw_page = request.GET.get("page") or "1"
    if not raw_page.isdigit() or int(raw_page) < 1 or int(raw_page) > 10_000:
        return JsonResponse({"error": f"page must be a whole number from 1 to 10000, not {raw_page!r}."}, status=400)
    term = (request.GET.get("term") or "")[:200]
    page = int(raw_page)
    found, more = search_products(term, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return JsonResponse(
        {"results": [{"id": p.id, "text": p.text, "image": p.image} for p in found], "pagination": {"more": more}}
    )
