"""``shop_import``: load a shop's products, customers, behaviour and orders from CSV files.

Every row is validated first; a bad row is reported with its file, line and reason and skipped,
the good ones are loaded. An order is loaded whole or not at all. Loading is idempotent:
products and customers are upserted (unchanged rows are not written), events are keyed by their
``event_id`` and orders by their ``order_id``, so a second run changes nothing.

Events and orders are the big files, so they go in bulk: the products and customers a file names
are looked up once (``find_products`` / ``find_customers``), events are inserted thousands at a
time, and orders go to the adapter's ``import_orders`` a batch at a time (one by one through
``import_order`` only when a batch fails, to name the order that broke it).

The formats are documented in the README ("Importing your shop's data").
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction

from adengine.adapters import ImportNotSupported, OrderImport, OrderLineInfo, get_adapter
from adengine.models import BehaviourEvent, Shopper
from adengine.services.behaviour import purchase_key, scrub_query
from adengine.services.bulk import bulk_writes
from adengine.services.shoppers import get_or_create_for_user, set_personalisation, shoppers_for_users

log = logging.getLogger(__name__)

COLUMNS = {  # the columns a file must have; the README's import table lists the optional ones too
    "products": ["product_id", "category", "price"],
    "customers": ["customer_id"],
    "events": ["event_id", "kind", "occurred_at"],
    "orders": ["order_id", "customer_id", "placed_at", "product_id", "quantity", "unit_price"],
}
ONE_OF = {  # ... and at least one column of each of these groups
    "products": [("title_en", "title_zh")],
    "events": [("customer_id", "session_id")],
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,39}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
EVENT_KINDS = {"search", "view", "cart"}
CHUNK = 200  # product and customer rows per transaction: fewer commits, a failure loses one chunk's work
ORDER_BATCH = 1000  # orders per import_orders() call and transaction
EVENT_BATCH = 5000  # events per bulk insert and transaction


class ImportFileError(ValueError):
    """A whole file cannot be read (missing, wrong columns, not UTF-8)."""


class RowError(ValueError):
    """One row is invalid; the message says why."""


@dataclass
class Report:
    """What an import did, and every bad row."""

    loaded: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unchanged: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: list[str] = field(default_factory=list)

    def error(self, path: Path, line: int, reason: str) -> None:
        self.errors.append(f"{path.name}:{line}: {reason}")


def read_rows(path: Path, kind: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs of a CSV file, after checking its header."""
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in COLUMNS[kind] if c not in header]
            missing += [" or ".join(group) for group in ONE_OF.get(kind, []) if not set(group) & set(header)]
            if missing:
                needs = ", ".join(COLUMNS[kind])
                needs += "".join(f" and one of {', '.join(group)}" for group in ONE_OF.get(kind, []))
                raise ImportFileError(f"{path}: missing column(s) {', '.join(missing)}; a {kind} file needs {needs}")
            return [(reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}) for row in reader]
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path}: not UTF-8 text ({exc})") from exc
    except csv.Error as exc:
        raise ImportFileError(f"{path}: not a CSV file ({exc})") from exc


def count_rows(path: Path, kind: str) -> int | None:
    """How many rows an import of ``path`` works through (orders: distinct order ids), for a progress bar;
    None when the file cannot be read (the import itself then says why)."""
    try:
        with Path(path).open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if kind == "orders":
                return len({row.get("order_id") for row in reader})
            return sum(1 for _ in reader)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def _id(value: str, name: str) -> str:
    if not _ID.match(value):
        raise RowError(f"{name} {value!r} must be 1-40 letters, digits or . _ : -")
    return value


def _decimal(value: str, name: str) -> Decimal:
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise RowError(f"{name} {value!r} is not a number") from None
    if not d.is_finite() or d < 0 or d >= Decimal("1e8"):
        raise RowError(f"{name} {value!r} must be between 0 and 99999999")
    return d.quantize(Decimal("0.01"))


def _int(value: str, name: str, minimum: int) -> int:
    try:
        i = int(value)
    except ValueError:
        raise RowError(f"{name} {value!r} is not a whole number") from None
    if i < minimum or i > 1_000_000:
        raise RowError(f"{name} {value!r} must be between {minimum} and 1000000")
    return i


def _time(value: str, name: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RowError(f"{name} {value!r} is not an ISO 8601 time like 2026-11-01T10:00:00+00:00") from None
    if t.tzinfo is None:
        raise RowError(f"{name} {value!r} has no time zone; add one, e.g. +00:00")
    if t > dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        raise RowError(f"{name} {value!r} is in the future")
    return t


def _bool(value: str, name: str) -> bool | None:
    v = value.lower()
    if v == "":
        return None
    if v in {"1", "true", "yes", "y"}:
        return True
    if v in {"0", "false", "no", "n"}:
        return False
    raise RowError(f"{name} {value!r} must be 1/0, true/false or yes/no")


def validate_product(row: dict[str, str]) -> dict[str, Any]:
    """A product row, checked and typed."""
    out = {"product_id": _id(row["product_id"], "product_id")}
    if not _SLUG.match(row["category"]):
        raise RowError(f"category {row['category']!r} must be a lowercase slug (a-z, 0-9, - and _)")
    out["category"] = row["category"]
    if not row.get("title_en") and not row.get("title_zh"):
        raise RowError("title_en and title_zh are both empty")
    for name, limit in (
        ("title_en", 200),
        ("title_zh", 200),
        ("brand", 80),
        ("category_name_en", 100),
        ("category_name_zh", 100),
        ("description_en", 5000),
        ("description_zh", 5000),
    ):
        value = row.get(name, "")
        if len(value) > limit:
            raise RowError(f"{name} is longer than {limit} characters")
        out[name] = value
    # one language stands in for the other (category names: see _name_categories)
    out["title_en"] = out["title_en"] or out["title_zh"]
    out["title_zh"] = out["title_zh"] or out["title_en"]
    out["price"] = _decimal(row["price"], "price")
    out["stock"] = _int(row.get("stock") or "0", "stock", 0)
    image = row.get("image_url", "")
    if image and not (image.startswith(("https://", "http://", "/")) and " " not in image and len(image) <= 200):
        raise RowError(f"image_url {image!r} must be an http(s) URL or a path starting with /")
    out["image_url"] = image
    return out


def validate_customer(row: dict[str, str]) -> dict[str, Any]:
    """A customer row, checked and typed."""
    out = {"customer_id": _id(row["customer_id"], "customer_id")}
    email = row.get("email", "")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise RowError(f"email {email!r} is not an e-mail address") from None
    out["email"] = email
    for name in ("first_name", "last_name"):
        out[name] = row.get(name, "")
        if len(out[name]) > 150:
            raise RowError(f"{name} is longer than 150 characters")
    out["personalisation"] = _bool(row.get("personalisation", ""), "personalisation")
    return out


def validate_event(row: dict[str, str]) -> dict[str, Any]:
    """An event row, checked and typed (products are resolved later)."""
    out = {"event_id": _id(row["event_id"], "event_id")}
    customer, session = row.get("customer_id", ""), row.get("session_id", "")
    if bool(customer) == bool(session):
        raise RowError("give exactly one of customer_id and session_id")
    out["customer_id"] = _id(customer, "customer_id") if customer else ""
    out["session_id"] = _id(session, "session_id") if session else ""
    kind = row["kind"]
    if kind == "purchase":
        raise RowError("purchases come from orders.csv, not events.csv")
    if kind not in EVENT_KINDS:
        raise RowError(f"kind {kind!r} must be one of {', '.join(sorted(EVENT_KINDS))}")
    out["kind"] = kind
    if kind == "search":
        query = scrub_query(row.get("query", ""))
        if not query:
            raise RowError("a search needs a query")
        out["query"], out["product_id"] = query, ""
    else:
        if not row.get("product_id"):
            raise RowError(f"a {kind} needs a product_id")
        out["product_id"], out["query"] = _id(row["product_id"], "product_id"), ""
    out["occurred_at"] = _time(row["occurred_at"], "occurred_at")
    return out


def validate_order_line(row: dict[str, str]) -> dict[str, Any]:
    """An order line row, checked and typed."""
    return {
        "order_id": _id(row["order_id"], "order_id"),
        "customer_id": _id(row["customer_id"], "customer_id"),
        "placed_at": _time(row["placed_at"], "placed_at"),
        "product_id": _id(row["product_id"], "product_id"),
        "quantity": _int(row["quantity"], "quantity", 1),
        "unit_price": _decimal(row["unit_price"], "unit_price"),
    }


def anonymous_key_for(session_id: str) -> str:
    """The Shopper.anonymous_key of an imported session id (stable across runs)."""
    return hashlib.sha256(f"import:{session_id}".encode()).hexdigest()[:32]


def _chunks(rows: list, size: int):
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


class Importer:
    """Runs one import; ``progress(kind, n)`` is called as rows are handled."""

    def __init__(self, progress: Callable[[str, int], None] | None = None) -> None:
        self.adapter = get_adapter()
        self.report = Report()
        self.progress = progress or (lambda kind, n: None)
        self._products: dict[str, Any] = {}  # import key -> host product, or None when unknown
        self._customers: dict[str, Any] = {}  # import key -> host user, or None when unknown
        self._user_shoppers: dict[Any, Shopper] = {}  # user pk -> shopper

    def _validated(self, path: Path, kind: str, validate) -> list[tuple[int, dict[str, Any]]]:
        good = []
        for line, row in read_rows(path, kind):
            try:
                good.append((line, validate(row)))
            except RowError as exc:
                self.report.error(path, line, str(exc))
        return good

    # ---- lookups, in bulk: one query per kind per file, not one per row ----------------------
    def _resolve(self, products: set[str] = frozenset(), customers: set[str] = frozenset()) -> None:
        """Look up the host products and customers named by a file (once each, in bulk)."""
        wanted = {i for i in products if i not in self._products}
        if wanted:
            found = self.adapter.find_products(wanted)
            self._products |= {i: found.get(i) for i in wanted}
        wanted = {i for i in customers if i not in self._customers}
        if wanted:
            found = self.adapter.find_customers(wanted)
            self._customers |= {i: found.get(i) for i in wanted}

    def _shoppers_of(self, users: list[Any]) -> dict[Any, Shopper]:
        """The shoppers of these users, by user pk (created when missing)."""
        missing = {u.pk for u in users} - set(self._user_shoppers)
        if missing:
            self._user_shoppers |= shoppers_for_users(user_ids=missing)
        return self._user_shoppers

    # ---- products and customers: few rows, upserted one by one through the adapter --------------
    def products(self, path: Path) -> None:
        rows = self._validated(path, "products", validate_product)
        _name_categories(rows)
        changed_ids: list[str] = []
        for chunk in _chunks(rows, CHUNK):
            with transaction.atomic(), bulk_writes():
                for line, row in chunk:
                    try:
                        with transaction.atomic():
                            obj, changed = self.adapter.import_product(row)
                    except ImportNotSupported:
                        raise
                    except Exception as exc:  # a host model constraint the CSV did not know about
                        self.report.error(path, line, f"not saved: {exc}")
                        continue
                    self._products[row["product_id"]] = obj
                    if changed:
                        changed_ids.append(str(obj.pk))
                    (self.report.loaded if changed else self.report.unchanged)["products"] += 1
            self.progress("products", len(chunk))
        if changed_ids:
            _enqueue_embedding(changed_ids)

    def customers(self, path: Path) -> None:
        for chunk in _chunks(self._validated(path, "customers", validate_customer), CHUNK):
            with transaction.atomic():
                for line, row in chunk:
                    try:
                        with transaction.atomic():
                            user, changed = self.adapter.import_customer(row)
                            if row["personalisation"] is not None:
                                shopper = get_or_create_for_user(user=user)
                                if shopper.personalisation != row["personalisation"]:
                                    set_personalisation(shopper=shopper, allowed=row["personalisation"])
                                    changed = True
                    except Exception as exc:
                        self.report.error(path, line, f"not saved: {exc}")
                        continue
                    self._customers[row["customer_id"]] = user
                    self._user_shoppers.pop(user.pk, None)  # its consent may have changed
                    (self.report.loaded if changed else self.report.unchanged)["customers"] += 1
            self.progress("customers", len(chunk))

    # ---- events: validated, resolved in bulk, inserted in large batches ---------------------------
    def _shopper_ids(self, rows: list[tuple[int, dict]], path: Path) -> dict[int, Shopper]:
        """Shopper of each row (by line), creating users' shoppers and imported sessions."""
        customer_ids = {r["customer_id"] for _, r in rows if r["customer_id"]}
        self._resolve(customers=customer_ids)
        users = self._shoppers_of([u for i in customer_ids if (u := self._customers[i]) is not None])
        session_keys = {anonymous_key_for(r["session_id"]) for _, r in rows if r["session_id"]}
        existing = set(Shopper.objects.filter(anonymous_key__in=session_keys).values_list("anonymous_key", flat=True))
        Shopper.objects.bulk_create([Shopper(anonymous_key=k) for k in session_keys - existing], ignore_conflicts=True)
        sessions = {s.anonymous_key: s for s in Shopper.objects.filter(anonymous_key__in=session_keys)}
        by_line: dict[int, Shopper] = {}
        for line, r in rows:
            if r["session_id"]:
                by_line[line] = sessions[anonymous_key_for(r["session_id"])]
                continue
            user = self._customers[r["customer_id"]]
            if user is None:
                self.report.error(path, line, f"customer_id {r['customer_id']!r} is not in customers.csv or the shop")
                continue
            by_line[line] = users[user.pk]
        return by_line

    def events(self, path: Path) -> None:
        rows = self._validated(path, "events", validate_event)
        self._resolve(products={r["product_id"] for _, r in rows if r["product_id"]})
        shoppers = self._shopper_ids(rows, path)
        batch: list[BehaviourEvent] = []
        for line, r in rows:
            shopper = shoppers.get(line)
            if shopper is None:
                continue
            if not shopper.personalisation:
                self.report.skipped["events (no personalisation consent)"] += 1
                continue
            product = None
            if r["product_id"]:
                product = self._products[r["product_id"]]
                if product is None:
                    self.report.error(path, line, f"product_id {r['product_id']!r} is not in products.csv or the shop")
                    continue
            batch.append(
                BehaviourEvent(
                    shopper=shopper,
                    kind=r["kind"],
                    product=product,
                    query=r["query"],
                    occurred_at=r["occurred_at"],
                    source=BehaviourEvent.Source.IMPORT,
                    dedupe_key=f"import:{r['event_id']}",
                )
            )
        for chunk in _chunks(batch, EVENT_BATCH):
            with transaction.atomic():
                self._insert_events(chunk, "events")
            self.progress("events", len(chunk))

    # ---- orders: whole orders in batches through the adapter's import_orders -------------------
    def orders(self, path: Path) -> None:
        grouped: dict[str, list[tuple[int, dict | str]]] = defaultdict(list)  # a bad row: its reason
        for line, row in read_rows(path, "orders"):
            try:
                grouped[row["order_id"]].append((line, validate_order_line(row)))
            except RowError as exc:
                grouped[row["order_id"]].append((line, str(exc)))
        good = [r for lines in grouped.values() for _, r in lines if isinstance(r, dict)]
        self._resolve(products={r["product_id"] for r in good}, customers={r["customer_id"] for r in good})
        for chunk in _chunks(list(grouped.items()), ORDER_BATCH):
            batch: list[OrderImport] = []
            first_line: dict[str, int] = {}
            for order_id, lines in chunk:
                try:
                    batch.append(self._order(order_id, lines))
                    first_line[order_id] = lines[0][0]
                except _BadLines as exc:
                    for line, reason in exc.lines:
                        self.report.error(path, line, f"{reason}; order {order_id!r} skipped whole")
            with transaction.atomic(), bulk_writes():
                saved = self._save_orders(path, batch, first_line)
                for _, _, created in saved:
                    (self.report.loaded if created else self.report.unchanged)["orders"] += 1
                self._insert_events(
                    self._purchases([(o, order) for o, order, created in saved if created]), "purchases"
                )
            self.progress("orders", len(chunk))

    def _save_orders(
        self, path: Path, batch: list[OrderImport], first_line: dict[str, int]
    ) -> list[tuple[OrderImport, Any, bool]]:
        """Save a batch with the adapter's import_orders; if that fails, order by order to name the bad ones."""
        if batch:
            try:
                with transaction.atomic():
                    saved = self.adapter.import_orders(batch)
                return [(o, *result) for o, result in zip(batch, saved, strict=True)]
            except ImportNotSupported:
                raise
            except Exception:  # e.g. a host constraint: one by one below finds and reports the order(s)
                log.info("import_orders failed for a batch of %d; saving them one by one", len(batch), exc_info=True)
        out = []
        for o in batch:
            try:
                with transaction.atomic():
                    order, created = self.adapter.import_order(o.order_id, o.customer, o.placed_at, o.lines)
            except ImportNotSupported:
                raise
            except Exception as exc:
                self.report.error(path, first_line[o.order_id], f"order {o.order_id!r} not saved: {exc}")
                continue
            out.append((o, order, created))
        return out

    def _purchases(self, orders: list[tuple[OrderImport, Any]]) -> list[BehaviourEvent]:
        """Purchase events of newly imported orders, keyed like the order signal's so neither duplicates."""
        countable = [(o, order) for o, order in orders if self.adapter.order_is_countable(order)]
        shoppers = self._shoppers_of([o.customer for o, _ in countable])
        events = []
        for o, order in countable:
            key, at = self.adapter.order_key(order), self.adapter.order_placed_at(order)
            events += [
                BehaviourEvent(
                    shopper=shoppers[o.customer.pk],
                    kind=BehaviourEvent.Kind.PURCHASE,
                    product=line.product,
                    quantity=line.quantity,
                    revenue=line.revenue,
                    occurred_at=at,
                    source=BehaviourEvent.Source.IMPORT,
                    dedupe_key=purchase_key(key, line.product.pk),
                )
                for line in o.lines  # the lines just written: no need to read them back
            ]
        return events

    def _insert_events(self, events: list[BehaviourEvent], label: str) -> int:
        """Insert events idempotently (dedupe keys) and move their shoppers' last_event_at; returns new."""
        if not events:
            return 0
        keys = [e.dedupe_key for e in events]
        before = set(BehaviourEvent.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))
        BehaviourEvent.objects.bulk_create([e for e in events if e.dedupe_key not in before], ignore_conflicts=True)
        touched: dict[int, dt.datetime] = {}
        new = 0
        for e in events:
            if e.dedupe_key in before:
                self.report.unchanged[label] += 1
                continue
            new += 1
            self.report.loaded[label] += 1
            prev = touched.get(e.shopper_id)
            touched[e.shopper_id] = max(prev, e.occurred_at) if prev else e.occurred_at
        self._touch(touched)
        return new

    def _touch(self, touched: dict[int, dt.datetime]) -> None:
        if not touched:
            return
        ids, times = zip(*touched.items(), strict=True)
        with connection.cursor() as cur:
            cur.execute(
                f"""UPDATE {Shopper._meta.db_table} s SET last_event_at = GREATEST(s.last_event_at, t.at)
                    FROM unnest(%s::bigint[], %s::timestamptz[]) AS t(id, at) WHERE s.id = t.id""",
                [list(ids), list(times)],
            )

    def _order(self, order_id: str, lines: list[tuple[int, dict | str]]) -> OrderImport:
        """One order's lines as an OrderImport; raises _BadLines naming every bad line (the first check that fails)."""
        bad = [(line, r) for line, r in lines if isinstance(r, str)]
        if bad:
            raise _BadLines(bad)
        head_line, head = lines[0]
        bad = [
            (line, f"customer_id or placed_at differ from line {head_line} of the same order")
            for line, r in lines
            if (r["customer_id"], r["placed_at"]) != (head["customer_id"], head["placed_at"])
        ]
        if bad:
            raise _BadLines(bad)
        customer = self._customers.get(head["customer_id"])
        if customer is None:
            raise _BadLines([(head_line, f"customer_id {head['customer_id']!r} is not in customers.csv or the shop")])
        infos, seen = [], set()
        for line, r in lines:
            product = self._products.get(r["product_id"])
            if product is None:
                bad.append((line, f"product_id {r['product_id']!r} is not in products.csv or the shop"))
            elif r["product_id"] in seen:
                bad.append((line, f"product_id {r['product_id']!r} appears twice in the order"))
            else:
                infos.append(OrderLineInfo(product=product, quantity=r["quantity"], unit_price=r["unit_price"]))
            seen.add(r["product_id"])
        if bad:
            raise _BadLines(bad)
        return OrderImport(order_id=order_id, customer=customer, placed_at=head["placed_at"], lines=infos)


class _BadLines(RowError):
    """The bad lines of an order, as (line, reason): the whole order is skipped."""

    def __init__(self, lines: list[tuple[int, str]]) -> None:
        super().__init__("; ".join(reason for _, reason in lines))
        self.lines = lines


def _name_categories(rows: list[tuple[int, dict[str, Any]]]) -> None:
    """Give every row the names of its category: each language's first in the file, else the other's.

    Only the row that creates a category counts, and exports often name it on some rows only; a
    name missing in both languages stays empty, and the adapter falls back to the slug.
    """
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for _, row in rows:
        for name in ("category_name_en", "category_name_zh"):
            if row[name]:
                found[row["category"]].setdefault(name, row[name])
    for _, row in rows:
        names = found[row["category"]]
        en, zh = names.get("category_name_en", ""), names.get("category_name_zh", "")
        row["category_name_en"], row["category_name_zh"] = en or zh, zh or en


def _enqueue_embedding(product_ids: list[str]) -> None:
    """Re-embed imported products in the worker, after commit; the hourly beat run catches up otherwise."""
    from adengine.queues import enqueue_after_commit

    enqueue_after_commit("adengine.embed_products", kwargs={"product_ids": product_ids}, merge="product_ids")


def run_import(
    *,
    products: Path | None = None,
    customers: Path | None = None,
    events: Path | None = None,
    orders: Path | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> Report:
    """Import the given files in dependency order; returns the report."""
    importer = Importer(progress)
    for path in (products, customers, events, orders):
        if path is not None and not Path(path).is_file():
            raise ImportFileError(f"{path}: no such file")
    if products:
        importer.products(Path(products))
    if customers:
        importer.customers(Path(customers))
    if events:
        importer.events(Path(events))
    if orders:
        importer.orders(Path(orders))
    return importer.report
