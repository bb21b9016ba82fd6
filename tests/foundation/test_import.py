"""shop_import: validation with file:line:reason, good rows loaded, idempotent."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from adengine.models import BehaviourEvent, Shopper
from fixtures.demo_data import CUSTOMER_FIELDS, EVENT_FIELDS, ORDER_FIELDS, PRODUCT_FIELDS, generate
from shop.models import Order, Product

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
        [line, line | {"product_id": "NOPE"}, line | {"order_id": "o2"}, line | {"order_id": "o3", "quantity": "0"}],
    )
    with pytest.raises(CommandError):
        call_command(
            "shop_import", "--no-progress", products=str(products), customers=str(customers), orders=str(orders)
        )
    err = capsys.readouterr().err
    assert "o.csv:2: order 'o1' skipped whole: line 3: product_id 'NOPE'" in err
    assert "o.csv:5: quantity '0' must be between 1" in err
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
