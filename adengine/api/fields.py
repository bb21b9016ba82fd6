"""Serializer fields that take exactly the JSON types the schema names.

DRF's own fields coerce: a CharField takes the number 5, an IntegerField the string "5" (and "1_0"), a BooleanField
"yes". The schema says string, integer, boolean; a client that sends another type gets a 400 that says so, so the
schema and the server agree on what is valid.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_EVEN, Decimal

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

_INT_TEXT = re.compile(r"^-?[0-9]{1,19}$")


class FullMatchValidator(RegexValidator):
    """A RegexValidator over the whole value: Python's ``$`` also matches before a final newline, JSON Schema's
    does not, so ``search`` would take "abc\\n" where the schema's pattern refuses it."""

    def __call__(self, value):
        if not isinstance(value, str) or not self.regex.fullmatch(value):
            raise ValidationError(self.message, code=self.code, params={"value": value})


class PatternField(serializers.CharField):
    """A JSON string that matches ``pattern`` as a whole (the schema shows the pattern)."""

    def __init__(self, pattern: str, **kwargs):
        self.pattern = pattern
        kwargs.setdefault("trim_whitespace", False)  # "id\n" is not "id": refused, as the schema's pattern refuses it
        super().__init__(**kwargs)
        self.validators.append(FullMatchValidator(pattern, "This value does not match the required pattern."))

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string (never a number or a boolean)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer; in a query string, plain digits (``query=True``)."""

    def __init__(self, *, query: bool = False, **kwargs):
        self.query = query
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if self.query:
            if not isinstance(data, str) or not _INT_TEXT.fullmatch(data):
                self.fail("invalid")
        elif isinstance(data, bool) or not (
            isinstance(data, int) or (isinstance(data, float) and math.isfinite(data) and data.is_integer())
        ):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false (never "yes", 1 or "on")."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictFloatField(serializers.FloatField):
    """A JSON number (never a numeric string)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class AmountField(serializers.DecimalField):
    """A non-negative amount: a decimal string ("12.50", at most ``decimal_places`` decimals) or a JSON number
    (rounded half-even to ``decimal_places``); answered as a string."""

    def __init__(self, *, max_digits: int, decimal_places: int, **kwargs):
        super().__init__(max_digits=max_digits, decimal_places=decimal_places, min_value=Decimal(0), **kwargs)
        whole = max_digits - decimal_places
        self.text_pattern = rf"^[0-9]{{1,{whole}}}(\.[0-9]{{1,{decimal_places}}})?$"
        self.largest = Decimal(10**whole) - Decimal(1).scaleb(-decimal_places)
        extend_schema_field(
            {
                "oneOf": [
                    {"type": "string", "pattern": self.text_pattern},
                    {"type": "number", "minimum": 0, "maximum": float(self.largest)},
                ]
            }
        )(self)

    def to_internal_value(self, data):
        if isinstance(data, str):
            if not re.fullmatch(self.text_pattern, data):
                self.fail("invalid")
            return super().to_internal_value(data)
        if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
            self.fail("invalid")
        if data < 0:
            self.fail("min_value", min_value=0)
        if data > self.largest:
            self.fail("max_value", max_value=self.largest)
        step = Decimal(1).scaleb(-self.decimal_places)
        return super().to_internal_value(str(Decimal(str(data)).quantize(step, rounding=ROUND_HALF_EVEN)))
