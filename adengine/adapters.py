"""The shop adapter: the one place that knows the host shop's models.

adengine never reads a host model's fields directly; it asks the adapter named by
``ADENGINE["SHOP_ADAPTER"]``. The default :class:`ShopAdapter` follows common conventions
(``title_<lang>`` / ``title``, ``description_<lang>``, ``price``, ``stock``, ``category``,
``brand``, ``get_absolute_url()``, orders with ``customer``, ``created_at`` and ``lines``); a shop
with other names subclasses it and overrides the methods that differ (see ``tests/hostapp``).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.signals import setting_changed
from django.db import models, transaction

from adengine.conf import get_order_model, get_product_model
from adengine.conf import settings as ad_settings


class ImportNotSupported(NotImplementedError):
    """The adapter cannot write this kind of host data; load it the shop's own way."""


@dataclass(frozen=True)
class OrderLineInfo:
    """One line of a host order, as adengine sees it."""

    product: Any
    quantity: int
    unit_price: Decimal

    @property
    def revenue(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class OrderImport:
    """One order of an orders file, validated and resolved to host objects, for ``import_orders``."""

    order_id: str
    customer: Any
    placed_at: datetime
    lines: list[OrderLineInfo]


CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CNY": "¥", "JPY": "¥", "INR": "₹", "KRW": "₩", "HKD": "HK$",
                    "TWD": "NT$", "SGD": "S$", "AUD": "A$", "CAD": "C$"}  # fmt: skip


def _first_attr(obj: Any, names: list[str], default: Any = None) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value not in (None, ""):
            return value
    return default


class ShopAdapter:
    """Default adapter for shops whose models follow common field names."""

    # ---- products -----------------------------------------------------------------------------
    def product_model(self) -> type[models.Model]:
        """The product model class (ADENGINE_PRODUCT_MODEL)."""
        return get_product_model()

    def products(self) -> models.QuerySet:
        """Products that may be embedded and advertised."""
        qs = self.product_model()._default_manager.all()
        if any(f.name == "is_active" for f in self.product_model()._meta.fields):
            qs = qs.filter(is_active=True)
        return qs

    def card_products(self, pks: Collection[Any]) -> models.QuerySet:
        """The advertisable products among ``pks`` with what an ad's product card reads joined in (a ``category``
        or ``brand`` foreign key, a many-to-many ``categories``): the candidate index reads thousands at once, one
        query rather than one per product. Override when your adapter reads other relations."""
        model = self.product_model()
        names = {f.name: f for f in model._meta.get_fields()}
        joined = [n for n in ("category", "brand") if n in names and names[n].many_to_one]
        qs = self.products().filter(pk__in=pks).select_related(*joined)
        if "categories" in names and names["categories"].many_to_many:
            qs = qs.prefetch_related("categories")
        return qs

    def product_title(self, product: Any, language: str) -> str:
        """The product's title in ``language`` (falls back to any title)."""
        return str(_first_attr(product, [f"title_{language}", "title", "name_" + language, "name"], ""))

    def product_description(self, product: Any, language: str) -> str:
        """The product's description in ``language``."""
        return str(_first_attr(product, [f"description_{language}", "description"], ""))

    def product_brand(self, product: Any) -> str:
        """The product's brand name, or ''."""
        brand = getattr(product, "brand", "") or ""
        return str(getattr(brand, "name", brand))

    def product_category(self, product: Any) -> Any:
        """The product's category object (or key), or None."""
        return getattr(product, "category", None)

    def product_categories(self, product: Any) -> list[Any]:
        """Every category the product is in, its main one (``product_category``) first, then those of a
        many-to-many ``categories`` field when the model has one (shops that file a product in several)."""
        main = self.product_category(product)
        found = [main] if main is not None else []
        many = getattr(product, "categories", None)
        if many is not None and hasattr(many, "all"):
            found += [c for c in many.all() if c not in found]
        return found

    def category_keys(self, product: Any) -> tuple[str, ...]:
        """The keys of every category of the product, main one first."""
        return tuple(dict.fromkeys(self.category_key(c) for c in self.product_categories(product)))

    def category_key(self, category: Any) -> str:
        """A stable key for a category."""
        return str(_first_attr(category, ["slug", "pk"], category))

    def category_name(self, category: Any, language: str) -> str:
        """A category's name in ``language``."""
        if category is None:
            return ""
        return str(_first_attr(category, [f"name_{language}", "name", "title"], category))

    def categories(self) -> list[Any]:
        """Every category of the shop, for the campaign form's category picker. The default reads the model of
        the product model's ``category`` / ``categories`` field, else the model of a product's
        ``product_category``, else the distinct categories of the products; override for anything else."""
        model = self.product_model()
        for name in ("category", "categories"):
            try:
                related = model._meta.get_field(name).related_model
            except FieldDoesNotExist:
                continue
            if related is not None:
                return list(related._default_manager.all())
        product = self.products().first()
        category = self.product_category(product) if product is not None else None
        if isinstance(category, models.Model):
            return list(type(category)._default_manager.all())
        found: dict[str, Any] = {}
        for product in self.products().iterator(chunk_size=2000):
            for c in self.product_categories(product):
                found.setdefault(self.category_key(c), c)
        return list(found.values())

    def product_search_fields(self) -> list[str]:
        """The product model's fields the admin's product picker searches (case-insensitive, contains): every
        text field but URLs by default (titles, names, SKUs, brands)."""
        return [
            f.name
            for f in self.product_model()._meta.fields
            if isinstance(f, models.CharField) and not isinstance(f, models.URLField) and not f.choices
        ]

    def product_price(self, product: Any) -> Decimal | None:
        """The product's unit price."""
        price = getattr(product, "price", None)
        return Decimal(price) if price is not None else None

    def product_currency(self, product: Any) -> str:
        """The ISO 4217 code of the product's price: its ``currency`` field, else ``ADENGINE["CURRENCY"]``."""
        return str(getattr(product, "currency", "") or ad_settings.CURRENCY or "")

    def format_price(self, price: Decimal | None, currency: str, language: str) -> str:
        """A price as an ad shows it: the currency's symbol or code and the amount ("¥ 99.00", "€12.50", "12.50
        CHF"); the amount alone without a currency. Override for your shop's own style."""
        if price is None:
            return ""
        amount = f"{price:,.2f}"
        symbol = CURRENCY_SYMBOLS.get(currency.upper())
        if symbol:
            return f"{symbol}{amount}"
        return f"{amount} {currency.upper()}".strip()

    def product_stock(self, product: Any) -> int | None:
        """Units in stock, or None when the shop does not track stock."""
        stock = getattr(product, "stock", None)
        return int(stock) if stock is not None else None

    def product_url(self, product: Any) -> str:
        """The product page's path."""
        return product.get_absolute_url()

    def product_image_url(self, product: Any) -> str:
        """The product image's URL (an ``image_url`` field, or an ``image`` file's storage URL), or ''."""
        image = _first_attr(product, ["image_url", "image"], "")
        if hasattr(image, "url"):  # a FieldFile: its name is not a URL
            return image.url if image else ""
        return str(image)

    def product_text(self, product: Any, language: str | None = None) -> str:
        """The text that describes a product to the encoder: title, brand, category, description.

        With no language, the texts of every configured language are joined, which lets a
        multilingual encoder match queries in either language.
        """
        languages = [language] if language else list(ad_settings.LANGUAGES)
        category = self.product_category(product)
        parts = []
        for lang in languages:
            title = self.product_title(product, lang)
            cat = self.category_name(category, lang)
            desc = self.product_description(product, lang)
            brand = self.product_brand(product)
            piece = " · ".join(p for p in [title, brand, cat] if p)
            if desc:
                piece = f"{piece}. {desc}"
            if piece and piece not in parts:
                parts.append(piece)
        return "\n".join(parts)

    # ---- carts --------------------------------------------------------------------------------
    def cart_signals(self) -> list[tuple[Any, Any]]:
        """``(signal, sender)`` pairs the shop sends when something goes into a cart, for shops whose cart
        renders no template for ``{% adengine_track "cart" %}`` (an AJAX basket, a mobile app's API). Each is
        connected at start-up and handed to ``cart_event``. None by default."""
        return []

    def cart_event(self, sender: Any, **kwargs: Any) -> tuple[Any, Any, int] | None:
        """From one cart signal's arguments: ``(request or user, product, quantity)``, or None to ignore it."""
        return None

    # ---- orders -------------------------------------------------------------------------------
    def order_model(self) -> type[models.Model]:
        """The order model class (ADENGINE_ORDER_MODEL)."""
        return get_order_model()

    def order_key(self, order: Any) -> str:
        """A stable, unique key for an order."""
        return str(_first_attr(order, ["number", "pk"]))

    def order_customer(self, order: Any) -> Any:
        """The user who placed the order, or None for a guest."""
        return _first_attr(order, ["customer", "user"])

    def order_placed_at(self, order: Any) -> datetime:
        """When the order was placed."""
        return _first_attr(order, ["created_at", "created", "placed_at"])

    def order_is_countable(self, order: Any) -> bool:
        """False for orders that should not count as purchases (cancelled)."""
        return getattr(order, "status", "") not in {"cancelled", "canceled", "refunded"}

    def order_lines(self, order: Any) -> list[OrderLineInfo]:
        """The order's lines."""
        lines = getattr(order, "lines", None)
        if lines is None:
            raise NotImplementedError("Override ShopAdapter.order_lines() for your order model.")
        return [
            OrderLineInfo(
                product=line.product,
                quantity=int(getattr(line, "quantity", 1)),
                unit_price=Decimal(_first_attr(line, ["unit_price", "price"], 0)),
            )
            for line in lines.select_related("product")
        ]

    def order_revenue(self, order: Any) -> Decimal:
        """The order's revenue (sum of its lines)."""
        return sum((line.revenue for line in self.order_lines(order)), Decimal("0"))

    def orders_since(self, since: datetime | None) -> Iterator[Any]:
        """Orders placed at or after ``since`` (all when None), oldest first."""
        qs = self.order_model()._default_manager.all()
        if since is not None:
            qs = qs.filter(created_at__gte=since)
        return qs.order_by("created_at").iterator(chunk_size=500)

    # ---- import (``shop_import``) -------------------------------------------------------------
    # Each receives validated rows (see adengine.services.imports) and returns the objects. The bulk
    # methods (find_products, find_customers, import_orders) fall back to their one-at-a-time
    # counterpart when a subclass overrides only that one, so such a subclass keeps working.

    def import_product(self, row: dict[str, Any]) -> tuple[Any, bool]:
        """Create or update a product from a validated CSV row; returns (product, changed).

        Idempotent on ``product_id``: a row equal to what is stored writes nothing. A new category
        is named from ``category_name_en`` / ``category_name_zh`` (the importer fills a missing one
        from the other), or from its slug when the file names it in neither language.
        """
        model = self.product_model()
        fields = {f.name: f for f in model._meta.fields}
        if not {"sku", "category", "price"} <= set(fields):
            raise ImportNotSupported(
                "The default ShopAdapter imports products into models with sku, category and price "
                "fields; override import_product() in your adapter."
            )
        category_model = fields["category"].related_model
        category, _ = category_model._default_manager.get_or_create(
            slug=row["category"],
            defaults={
                "name_en": row.get("category_name_en") or row["category"],
                "name_zh": row.get("category_name_zh") or row["category"],
            },
        )
        values = {
            "category": category,
            "brand": row["brand"],
            "title_en": row["title_en"],
            "title_zh": row["title_zh"],
            "description_en": row["description_en"],
            "description_zh": row["description_zh"],
            "price": row["price"],
            "stock": row["stock"],
            "image_url": row["image_url"],
        }
        return _upsert(model, {"sku": row["product_id"]}, values)

    def find_product(self, external_id: str) -> Any:
        """The product with the import key ``external_id``, or None."""
        return self.find_products([external_id]).get(external_id)

    def find_products(self, external_ids: Collection[str]) -> dict[str, Any]:
        """Products by the shop's own key (``product_key_fields``: SKU, UPC, code) or by primary key, the key
        first (``match_products``); unknown keys are left out."""
        if _overrides(self, "find_product"):
            return {i: p for i in external_ids if (p := self.find_product(i)) is not None}
        return {key: found[0] for key, found in self.match_products(external_ids).items()}

    def match_products(self, keys: Collection[str]) -> dict[str, list[Any]]:
        """Every product each key names, as the shop's own key (``product_key_fields``) first, then as a primary
        key, in at most one query per field; two products under one key make it ambiguous (the API answers 400).
        Unknown keys are left out. An adapter that overrides ``find_products`` or ``find_product`` instead gets
        one product per key from it."""
        if _overrides(self, "find_products") or _overrides(self, "find_product"):
            return {key: [product] for key, product in self.find_products(keys).items()}
        model = self.product_model()
        names = {f.name: f for f in model._meta.fields}
        found: dict[str, list[Any]] = {}
        for field in [names[n] for n in self.product_key_fields() if n in names] + [model._meta.pk]:
            for key, product in _find_by(model, field, keys).items():
                matches = found.setdefault(key, [])
                if all(m.pk != product.pk for m in matches):
                    matches.append(product)
        return found

    def product_key_fields(self) -> tuple[str, ...]:
        """The product model's fields that hold the shop's own product key (tried before the primary key):
        ``ADENGINE["PRODUCT_KEY_FIELD"]`` when set, else the usual names (sku, upc, code, ean, gtin)."""
        configured = ad_settings.PRODUCT_KEY_FIELD
        if configured:
            return () if configured == "pk" else (configured,)
        return ("sku", "upc", "code", "ean", "gtin")

    def product_key_field(self) -> str | None:
        """The field whose value ``product_key`` shows: the first of ``product_key_fields`` the product model has,
        or None for the primary key."""
        names = {f.name for f in self.product_model()._meta.fields}
        return next((n for n in self.product_key_fields() if n in names), None)

    def product_key(self, product: Any) -> str:
        """The shop's own key of a product as API answers show it (``product_key``): its SKU or other key field,
        else its primary key."""
        field = self.product_key_field()
        value = getattr(product, field, None) if field else None
        return str(value) if value not in (None, "") else str(product.pk)

    def product_key_label(self) -> str:
        """What the shop calls its product key, for messages ("SKU"): the key field's verbose name, else "id"."""
        field = self.product_key_field()
        if field is None:
            return "id"
        name = str(self.product_model()._meta.get_field(field).verbose_name)
        return name if name.isupper() else name.lower()

    def import_customer(self, row: dict[str, Any]) -> tuple[Any, bool]:
        """Create or update a customer (Django's user) from a validated CSV row; returns (user, changed)."""
        user_model = get_user_model()
        values = {"email": row["email"], "first_name": row["first_name"], "last_name": row["last_name"]}
        user, changed = _upsert(user_model, {user_model.USERNAME_FIELD: row["customer_id"]}, values)
        if changed and not user.has_usable_password() and user.password == "":
            user.set_unusable_password()
            user.save(update_fields=["password"])
        return user, changed

    def find_customer(self, external_id: str) -> Any:
        """The user with the import key ``external_id``, or None."""
        return self.find_customers([external_id]).get(external_id)

    def find_customers(self, external_ids: Collection[str]) -> dict[str, Any]:
        """Users by import key (their username), in one query; unknown keys are left out."""
        if _overrides(self, "find_customer"):
            return {i: u for i in external_ids if (u := self.find_customer(i)) is not None}
        user_model = get_user_model()
        return _find_by(user_model, user_model._meta.get_field(user_model.USERNAME_FIELD), external_ids)

    def import_order(
        self, order_id: str, customer: Any, placed_at: datetime, lines: list[OrderLineInfo]
    ) -> tuple[Any, bool]:
        """Create an order with its lines once; returns (order, created). An existing order is left as is."""
        model, line_model = self._order_models()
        existing = model._default_manager.filter(number=order_id).first()
        if existing is not None:
            return existing, False
        with transaction.atomic():
            order = model(number=order_id, customer=customer, created_at=placed_at)
            order.save()
            line_model._default_manager.bulk_create(
                line_model(order=order, product=line.product, quantity=line.quantity, unit_price=line.unit_price)
                for line in lines
            )
        return order, True

    def import_orders(self, orders: list[OrderImport]) -> list[tuple[Any, bool]]:
        """Create many orders with their lines at once; returns (order, created) for each, in order.

        Orders whose ``number`` is stored already are left as is (one query finds them); the new
        ones and all their lines are written with two ``bulk_create`` calls, so the order model's
        ``save()`` and signals are not run (override this if your orders need them).
        """
        if _overrides(self, "import_order"):
            return [self.import_order(o.order_id, o.customer, o.placed_at, o.lines) for o in orders]
        model, line_model = self._order_models()
        ids = [o.order_id for o in orders]
        existing = {o.number: o for o in model._default_manager.filter(number__in=ids)}
        new = {
            o.order_id: model(number=o.order_id, customer=o.customer, created_at=o.placed_at)
            for o in orders
            if o.order_id not in existing
        }
        model._default_manager.bulk_create(new.values())
        line_model._default_manager.bulk_create(
            [
                line_model(
                    order=new[o.order_id], product=line.product, quantity=line.quantity, unit_price=line.unit_price
                )
                for o in orders
                if o.order_id in new
                for line in o.lines
            ],
            batch_size=5000,
        )
        return [(new[i], True) if i in new else (existing[i], False) for i in ids]

    def _order_models(self) -> tuple[type[models.Model], type[models.Model]]:
        """The order model and its lines' model, checked for the fields the default import writes."""
        model = self.order_model()
        names = {f.name for f in model._meta.get_fields()}
        if not {"number", "customer", "created_at", "lines"} <= names:
            raise ImportNotSupported(
                "The default ShopAdapter imports orders into models with number, customer, created_at and "
                "lines (product, quantity, unit_price); override import_order() or import_orders() in your adapter."
            )
        return model, model._meta.get_field("lines").related_model


def _overrides(adapter: ShopAdapter, name: str) -> bool:
    """True when the adapter's class replaces ShopAdapter's method ``name``."""
    return getattr(type(adapter), name) is not getattr(ShopAdapter, name)


def _find_by(model: type[models.Model], field: models.Field, keys: Collection[str]) -> dict[str, Any]:
    """Rows of ``model`` whose ``field`` is one of ``keys``, by key (keys the field cannot hold are left out)."""
    wanted: dict[Any, str] = {}
    for key in keys:
        try:
            value = field.to_python(key)
        except ValidationError:  # e.g. "P1" for a UUID primary key: no such row
            continue
        if value is not None and fits(field, value):  # a number beyond the column's range: no such row either
            wanted[value] = key
    found: dict[str, Any] = {}
    values = list(wanted)
    for i in range(0, len(values), 10_000):
        for obj in model._default_manager.filter(**{f"{field.attname}__in": values[i : i + 10_000]}):
            found[wanted[getattr(obj, field.attname)]] = obj
    return found


def fits(field: models.Field, value: Any) -> bool:
    """Whether an integer field's column can hold ``value`` (a larger one is unknown, not a database error)."""
    from django.db import connection

    internal = field.get_internal_type()
    if internal not in connection.ops.integer_field_ranges:
        return True
    low, high = connection.ops.integer_field_range(internal)
    return (low is None or value >= low) and (high is None or value <= high)


def _upsert(model: type[models.Model], key: dict[str, Any], values: dict[str, Any]) -> tuple[Any, bool]:
    """Create, or update only when a value differs; returns (object, changed)."""
    obj = model._default_manager.filter(**key).first()
    if obj is None:
        return model._default_manager.create(**key, **values), True
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    if changed:
        for name in changed:
            setattr(obj, name, values[name])
        obj.save()
    return obj, bool(changed)


@functools.cache
def get_adapter() -> ShopAdapter:
    """The configured shop adapter instance (ADENGINE["SHOP_ADAPTER"])."""
    cls = ad_settings.SHOP_ADAPTER
    return cls()


def _forget_adapter(*, setting: str, **kwargs: Any) -> None:
    if setting in {"ADENGINE", "ADENGINE_PRODUCT_MODEL", "ADENGINE_ORDER_MODEL"}:
        get_adapter.cache_clear()


setting_changed.connect(_forget_adapter)  # adapters reads conf; conf need not know adapters
