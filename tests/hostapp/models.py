"""A second host shop, unlike the demo: UUID keys, other field names, one language per field."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Section(models.Model):
    code = models.CharField(max_length=20, unique=True)
    label = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.label


class Item(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    # the shop's own key, under a name adengine does not guess (ADENGINE["PRODUCT_KEY_FIELD"] names it)
    article_number = models.CharField(max_length=30, unique=True, null=True, blank=True)
    blurb = models.TextField(blank=True)
    maker = models.CharField(max_length=80, blank=True)
    section = models.ForeignKey(Section, models.PROTECT, related_name="items")
    cost_cents = models.PositiveIntegerField()
    on_hand = models.IntegerField(default=0)
    listed = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class Purchase(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="purchases")
    made_on = models.DateTimeField()
    voided = models.BooleanField(default=False)


class PurchaseItem(models.Model):
    purchase = models.ForeignKey(Purchase, models.CASCADE, related_name="items")
    item = models.ForeignKey(Item, models.PROTECT)
    count = models.PositiveIntegerField(default=1)
    each_cents = models.PositiveIntegerField()
