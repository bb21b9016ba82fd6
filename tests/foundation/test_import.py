"""shop_import: validation with file:line:reason, good rows loaded, idempotent."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from adengine.adapters import get_adapter
from adengine.models import BehaviourEvent, Shopper
from adengine.services import imports
from fixtures.demo_data import CUSTOMER_FIELDS, EVENT_FIELDS, ORDER_FIELDS, PRODUCT_FIELDS, generate
from shop.models import Category, Order, OrderLine, Product

pytestmark = pytest.mark.django_db


def _write(path: Path, fields: list[str], rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("demo"), customers=40, anonymous=10, days=30, seed=3)


def _counts():
    return (Product.objects.count(), Order.objects.count(), BehaviourEvent.objects.count(), Shopper.objects.count())


def test_demo_files_load_and_a_second_run_changes_nothing(small_demo, capsys):
    # given the generated CSV files
    # when they are imported
    call_command("shop_import", "--no-progress", **{k: str(v) for k, v in small_demo.items()})
    first = _counts()
    snapshot = sorted(BehaviourEvent.objects.values_list("dedupe_key", "occurred_at", "kind"))
    # then everything is there: 360 products, orders with purchase events, anonymous sessions
    assert first[0] == 360 and first[1] > 0
    assert BehaviourEvent.objects.filter(kind="purchase").count() >= first[1]
    assert Shopper.objects.filter(user__isnull=True).exists()
    # when they are imported again, then nothing changes
    call_command("shop_import", "--no-progress", **{k: str(v) for k, v in small_demo.items()})
    assert _counts() == first
    assert sorted(BehaviourEvent.objects.values_list("dedupe_key", "occurred_at", "kind")) == snapshot
    out = capsys.readouterr().out
    assert "products: 0 loaded, 360 unchanged" in out and "orders: 0 loaded" in out


def test_bad_rows_are_reported_with_file_line_and_reason_and_good_rows_load(tmp_path, capsys):
    good = {f: "" for f in PRODUCT_FIELDS} | {
        "product_id": "P1",
        "category": "shoes",
        "title_en": "Shoe",
        "price": "10.00",
        "stock": "3",
        "brand": "B",
    }
    products = _write(
        tmp_path / "products.csv",
        PRODUCT_FIELDS,
        [
            good,
            good | {"product_id": "P2", "price": "ten"},
            good | {"product_id": "P3", "category": "Not A Slug"},
            good | {"product_id": "P4", "title_en": "", "title_zh": ""},
        ],
    )
    with pytest.raises(CommandError, match="3 bad row"):
        call_command("shop_import", "--no-progress", products=str(products))
    err = capsys.readouterr().err
    assert "products.csv:3: price 'ten' is not a number" in err
    assert "products.csv:4: category 'Not A Slug'" in err
    assert "products.csv:5: title_en and title_zh are both empty" in err
    assert list(Product.objects.values_list("sku", flat=True)) == ["P1"]


def test_an_order_with_one_bad_line_is_not_half_loaded(tmp_path, capsys):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    products = _write(
        tmp_path / "p.csv",
        PRODUCT_FIELDS,
        [{f: "" for f in PRODUCT_FIELDS} | {"product_id": "P1", "category": "c", "title_en": "A", "price": "1"}],
    )
    customers = _write(
        tmp_path / "c.csv",
        CUSTOMER_FIELDS,
        [{"customer_id": "u1", "email": "u1@example.com", "first_name": "", "last_name": "", "personalisation": "1"}],
    )
    line = {
        "order_id": "o1",
        "customer_id": "u1",
        "placed_at": now.isoformat(),
        "product_id": "P1",
        "quantity": "1",
        "unit_price": "1.00",
    }
    orders = _write(
        tmp_path / "o.csv",
        ORDER_FIELDS,
        [
            line,
            line | {"product_id": "NOPE"},
            line | {"order_id": "o2"},
            line | {"order_id": "o3", "quantity": "0"},
            line | {"order_id": "o3", "product_id": "P1", "unit_price": "x"},
        ],
    )
    with pytest.raises(CommandError):
        call_command(
            "shop_import", "--no-progress", products=str(products), customers=str(customers), orders=str(orders)
        )
    err = capsys.readouterr().err
    assert "o.csv:3: product_id 'NOPE' is not in products.csv or the shop; order 'o1' skipped whole" in err
    assert "o.csv:5: quantity '0' must be between 1 and 1000000; order 'o3' skipped whole" in err
    assert "o.csv:6: unit_price 'x' is not a number; order 'o3' skipped whole" in err
    assert list(Order.objects.values_list("number", flat=True)) == ["o2"]


def test_events_validation(tmp_path, capsys):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    base = {
        "event_id": "e1",
        "customer_id": "",
        "session_id": "s1",
        "kind": "search",
        "product_id": "",
        "query": "tea",
        "occurred_at": now,
    }
    events = _write(
        tmp_path / "events.csv",
        EVENT_FIELDS,
        [
            base,
            base | {"event_id": "e2", "customer_id": "u9"},
            base | {"event_id": "e3", "kind": "purchase"},
            base | {"event_id": "e4", "occurred_at": "2026-11-01T10:00:00"},
            base | {"event_id": "e5", "kind": "view", "product_id": "MISSING"},
        ],
    )
    with pytest.raises(CommandError):
        call_command("shop_import", "--no-progress", events=str(events))
    err = capsys.readouterr().err
    assert "events.csv:3: give exactly one of customer_id and session_id" in err
    assert "events.csv:4: purchases come from orders.csv" in err
    assert "events.csv:5: occurred_at '2026-11-01T10:00:00' has no time zone" in err
    assert "events.csv:6: product_id 'MISSING' is not in products.csv or the shop" in err
    assert BehaviourEvent.objects.get().query == "tea"


def test_missing_file_or_columns_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("shop_import", products=str(tmp_path / "nope.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,name\n1,x\n", encoding="utf-8")
    with pytest.raises(CommandError, match="missing column"):
        call_command("shop_import", products=str(bad))
    with pytest.raises(CommandError, match="at least one"):
        call_command("shop_import")


def _now() -> str:
    return (dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)).isoformat()


def _text(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("column", "title"), [("title_en", "Runner"), ("title_zh", "跑鞋")])
def test_a_products_file_with_one_title_column_loads(tmp_path, column, title):
    # given a products file with only one of the two title columns
    products = _text(tmp_path / "products.csv", f"product_id,category,{column},price\nP1,shoes,{title},10\n")
    # when it is imported
    call_command("shop_import", "--no-progress", products=products)
    # then the product has that title in both languages
    assert Product.objects.values_list("title_en", "title_zh").get() == (title, title)


def test_a_products_file_with_neither_title_column_is_refused(tmp_path):
    products = _text(tmp_path / "products.csv", "product_id,category,price\nP1,shoes,10\n")
    with pytest.raises(CommandError, match="missing column.s. title_en or title_zh"):
        call_command("shop_import", "--no-progress", products=products)


def test_a_missing_category_name_falls_back_to_the_other_language_then_the_slug(tmp_path):
    # given categories named in English only, in Chinese only, on later rows only, and not at all
    products = _write(
        tmp_path / "products.csv",
        ["product_id", "category", "category_name_en", "category_name_zh", "title_en", "price"],
        [
            {"product_id": "P1", "category": "shoes", "category_name_en": "Shoes", "title_en": "A", "price": "1"},
            {"product_id": "P2", "category": "tea", "category_name_zh": "茶", "title_en": "B", "price": "1"},
            {"product_id": "P3", "category": "bags", "title_en": "C", "price": "1"},
            {"product_id": "P4", "category": "bags", "category_name_zh": "包", "title_en": "D", "price": "1"},
            {"product_id": "P5", "category": "bags", "category_name_en": "Bags", "title_en": "E", "price": "1"},
            {"product_id": "P6", "category": "misc", "title_en": "F", "price": "1"},
        ],
    )
    # when they are imported
    call_command("shop_import", "--no-progress", products=str(products))
    # then a missing name is the other language's, and the slug only when the file names it nowhere
    names = {c.slug: (c.name_en, c.name_zh) for c in Category.objects.all()}
    assert names == {"shoes": ("Shoes", "Shoes"), "tea": ("茶", "茶"), "bags": ("Bags", "包"), "misc": ("misc", "misc")}


@pytest.fixture
def shop_files(tmp_path):
    """Three products and two consenting customers, imported."""
    products = _text(tmp_path / "p.csv", "product_id,category,title_en,price\nP1,c,A,1\nP2,c,B,2\nP3,c,C,3\n")
    customers = _text(tmp_path / "c.csv", "customer_id,personalisation\nu1,1\nu2,1\n")
    call_command("shop_import", "--no-progress", products=products, customers=customers)


def test_an_events_file_without_session_id_or_query_columns_loads(tmp_path, shop_files, capsys):
    # given an events file of customers' events with no session_id and no query column, one row a search
    now = _now()
    events = _text(
        tmp_path / "events.csv",
        f"event_id,customer_id,kind,product_id,occurred_at\ne1,u1,view,P1,{now}\ne2,u2,search,,{now}\n",
    )
    # when it is imported
    with pytest.raises(CommandError, match="1 bad row"):
        call_command("shop_import", "--no-progress", events=events)
    # then the view is loaded and the search, which cannot have a query, is reported by its line
    assert BehaviourEvent.objects.get().kind == "view"
    assert "events.csv:3: a search needs a query" in capsys.readouterr().err


def test_an_events_file_of_anonymous_searches_needs_no_customer_or_product_column(tmp_path):
    # given anonymous sessions' searches only
    events = _text(tmp_path / "events.csv", f"event_id,session_id,kind,query,occurred_at\ne1,s1,search,tea,{_now()}\n")
    # when imported, then the search is the session's
    call_command("shop_import", "--no-progress", events=events)
    event = BehaviourEvent.objects.get()
    assert event.query == "tea" and event.shopper.anonymous_key == imports.anonymous_key_for("s1")


def test_an_events_file_without_customer_id_and_session_id_is_refused(tmp_path):
    events = _text(tmp_path / "events.csv", f"event_id,kind,query,occurred_at\ne1,search,tea,{_now()}\n")
    with pytest.raises(CommandError, match="missing column.s. customer_id or session_id"):
        call_command("shop_import", "--no-progress", events=events)


def _orders_file(path: Path, n: int, bad: str | None = None) -> str:
    """n orders of three lines each (u1 and u2 in turn); order ``bad``'s second line has quantity 0."""
    now, rows = _now(), ["order_id,customer_id,placed_at,product_id,quantity,unit_price"]
    for i in range(n):
        order = f"o{i:03d}"
        for j, sku in enumerate(("P1", "P2", "P3")):
            quantity = 0 if order == bad and j == 1 else j + 1
            rows.append(f"{order},u{i % 2 + 1},{now},{sku},{quantity},{j + 1}.50")
    return _text(path, "\n".join(rows) + "\n")


def test_orders_load_in_batches_idempotently_and_a_bad_line_skips_its_order(
    tmp_path, shop_files, capsys, monkeypatch, django_assert_max_num_queries
):
    # given 60 orders of three lines, the second line of o007 (file line 2 + 7 * 3 + 1) with quantity 0
    monkeypatch.setattr(imports, "ORDER_BATCH", 25)
    orders = _orders_file(tmp_path / "o.csv", 60, bad="o007")
    capsys.readouterr()
    # when they are imported: a fixed number of queries per batch of 25 orders, none per order
    with django_assert_max_num_queries(36), pytest.raises(CommandError, match="1 bad row"):
        call_command("shop_import", "--no-progress", orders=orders)
    # then 59 orders are there with their lines and purchases; o007 is skipped whole, named by its bad line
    assert Order.objects.count() == 59 and not Order.objects.filter(number="o007").exists()
    assert OrderLine.objects.count() == 177 and BehaviourEvent.objects.filter(kind="purchase").count() == 177
    assert OrderLine.objects.get(order__number="o001", product__sku="P3").unit_price == 3.5
    out = capsys.readouterr()
    assert "o.csv:24: quantity '0' must be between 1 and 1000000; order 'o007' skipped whole" in out.err
    assert "orders: 59 loaded, 0 unchanged" in out.out
    # when they are imported again, then nothing changes and every order is reported unchanged
    with pytest.raises(CommandError, match="1 bad row"):
        call_command("shop_import", "--no-progress", orders=orders)
    assert "orders: 0 loaded, 59 unchanged" in capsys.readouterr().out
    assert (Order.objects.count(), OrderLine.objects.count(), BehaviourEvent.objects.count()) == (59, 177, 177)
    # when the file is fixed and imported again, then only o007 is new
    call_command("shop_import", "--no-progress", orders=_orders_file(tmp_path / "o.csv", 60))
    assert "orders: 1 loaded, 59 unchanged" in capsys.readouterr().out
    assert OrderLine.objects.filter(order__number="o007").count() == 3


def test_orders_fall_back_to_one_at_a_time_when_a_batch_fails(tmp_path, shop_files, capsys, monkeypatch):
    # given an adapter whose bulk import fails (as a host constraint would) for a batch
    def failing(orders):
        raise ValueError("a host constraint")

    monkeypatch.setattr(get_adapter(), "import_orders", failing)
    # when orders are imported, then each is saved with import_order and nothing is lost
    call_command("shop_import", "--no-progress", orders=_orders_file(tmp_path / "o.csv", 4))
    assert "orders: 4 loaded, 0 unchanged" in capsys.readouterr().out
    assert OrderLine.objects.count() == 12 and BehaviourEvent.objects.filter(kind="purchase").count() == 12
