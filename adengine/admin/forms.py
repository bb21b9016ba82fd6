"""The campaign form: keywords split as people type them, categories only of the shop's, languages it knows.

Rules across fields (dates, budgets, bids, languages, the audience threshold) live in ``Campaign.clean()`` so that
``load_campaigns`` keeps them too; the form shows each message on its field.
"""

from __future__ import annotations

from django import forms
from django.conf.locale import LANG_INFO
from django.core.exceptions import ValidationError

from adengine.conf import settings as ad_settings
from adengine.models import Campaign
from adengine.selectors.catalog import CategoryOption, closest_category, find_category, shop_categories
from adengine.text import split_keywords

from .pickers import CategoryPicker

KEYWORD_MAX_LENGTH = Campaign._meta.get_field("keywords").base_field.max_length


class KeywordsField(forms.CharField):
    """Keywords in one box, separated by commas (, ， 、), semicolons (; ；) or new lines."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list | tuple):
            value = "\n".join(value)
        return split_keywords(super().to_python(value) or "")

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")
        long = [k for k in value if len(k) > KEYWORD_MAX_LENGTH]
        if long:
            raise ValidationError(
                [
                    ValidationError(
                        "The keyword “%(keyword)s” has %(n)d characters; at most %(most)d.",
                        code="keyword_too_long",
                        params={"keyword": k, "n": len(k), "most": KEYWORD_MAX_LENGTH},
                    )
                    for k in long
                ]
            )

    def run_validators(self, value) -> None:  # the CharField's length validators would measure the list
        return None

    def has_changed(self, initial, data) -> bool:
        return list(initial or []) != self.to_python(data)


class CategoriesField(forms.MultipleChoiceField):
    """Categories of the shop, stored by key; a key or name (any language) is accepted, anything else is an error
    that names it and suggests the closest category."""

    widget = CategoryPicker

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.options: list[CategoryOption] = []

    def set_options(self, options: list[CategoryOption], *, stored: list[str]) -> None:
        """Offer the shop's categories, and keep a stored key that is not one of them (shown so, to be fixed)."""
        self.options = options
        keys = {o.key for o in options}
        gone = [(k, f"{k} — not a category of the shop") for k in stored if k not in keys]
        self.choices = [(o.key, o.label) for o in options] + gone

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")

    def clean(self, value) -> list[str]:
        values = self.to_python(value)
        self.validate(values)
        keys, errors = [], []
        for raw in values:
            option = find_category(raw, self.options)
            if option is not None:
                keys.append(option.key)
                continue
            close = closest_category(raw, self.options)
            if close is not None:
                errors.append(
                    ValidationError(
                        "“%(value)s” is not a category of the shop; did you mean “%(key)s” (%(name)s)?",
                        code="unknown_category",
                        params={"value": raw, "key": close.key, "name": close.name},
                    )
                )
            else:
                errors.append(
                    ValidationError(
                        "“%(value)s” is not a category of the shop; pick one from the list.",
                        code="unknown_category",
                        params={"value": raw},
                    )
                )
        if errors:
            raise ValidationError(errors)
        return list(dict.fromkeys(keys))


def language_name(code: str) -> str:
    """``"zh — Chinese"`` for a language code Django knows, the code alone otherwise."""
    info = LANG_INFO.get(code) or LANG_INFO.get(f"{code}-hans") or {}  # Django names "zh" only as zh-hans/-hant
    name = "Chinese" if code == "zh" else info.get("name")
    return f"{code} — {name}" if name else code


class CampaignForm(forms.ModelForm):
    """The admin's campaign form."""

    keywords = KeywordsField(
        required=False,
        help_text="Search terms and themes of the campaign, in any language; separate them with commas (, ， 、), "
        "semicolons (; ；) or new lines. Repeats are dropped.",
    )
    categories = CategoriesField(
        required=False,
        help_text="The shop's categories whose pages and products this campaign targets; type to filter.",
    )
    languages = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Languages of the campaign's ad copy (ADENGINE['LANGUAGES']).",
        error_messages={"invalid_choice": "“%(value)s” is not one of this shop's languages (ADENGINE['LANGUAGES'])."},
    )

    class Meta:
        model = Campaign
        fields = ["advertiser", "name", "status", "tier", "description", "keywords", "categories", "promoted_products",
                  "audience_min_similarity", "placements", "languages", "brand_voice", "objective", "pricing", "bid",
                  "total_budget", "daily_budget", "starts_at", "ends_at", "frequency_cap", "landing_url"]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "categories" in self.fields:
            self.fields["categories"].set_options(shop_categories(), stored=list(self.instance.categories or []))
        if "languages" in self.fields:
            known = list(ad_settings.LANGUAGES)
            # a stored language the shop no longer has stays visible, and Campaign.clean() says what is wrong
            stored = [lang for lang in self.instance.languages or [] if lang not in known]
            self.fields["languages"].choices = [(c, language_name(c)) for c in known + stored]
