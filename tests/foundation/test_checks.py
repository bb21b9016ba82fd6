"""Misconfiguration fails with a system-check error that says what to set."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.test import override_settings


def _ids(errors):
    return {e.id for e in errors}


def test_unknown_adengine_key_is_an_error():
    with override_settings(ADENGINE={"SHOP_ADAPTOR": "x"}):
        errors = run_checks()
    assert "adengine.E001" in _ids(errors)
    msg = next(e for e in errors if e.id == "adengine.E001")
    assert "SHOP_ADAPTOR" in msg.msg and "SHOP_ADAPTER" in msg.hint


def test_missing_product_model_setting_says_what_to_set():
    with override_settings(ADENGINE_PRODUCT_MODEL=None):
        errors = run_checks()
    err = next(e for e in errors if e.id == "adengine.E002")
    assert "ADENGINE_PRODUCT_MODEL" in err.msg


def test_product_model_that_is_not_installed():
    with override_settings(ADENGINE_ORDER_MODEL="nowhere.Order"):
        errors = run_checks()
    err = next(e for e in errors if e.id == "adengine.E003")
    assert "not been installed" in err.msg


def test_adapter_that_cannot_be_imported():
    with override_settings(ADENGINE={"SHOP_ADAPTER": "no.such.Adapter"}):
        errors = run_checks()
    assert "adengine.E004" in _ids(errors)


@pytest.mark.django_db
def test_database_check_passes_on_postgresql_with_pgvector():
    errors = run_checks(databases=["default"], include_deployment_checks=False)
    assert not [e for e in errors if e.id.startswith("adengine.")]


def test_valid_configuration_has_no_adengine_errors():
    assert not [e for e in run_checks() if e.id.startswith("adengine.")]


@pytest.mark.parametrize(
    "key",
    ["demo-only-insecure-secret-key-change-me-in-production", "django-insecure-abc", "short", "a" * 60],
)
def test_a_public_or_weak_secret_key_is_refused_when_debug_is_off(key):
    with override_settings(DEBUG=False, SECRET_KEY=key):
        errors = run_checks(tags=["security"])
    err = next(e for e in errors if e.id == "adengine.E008")
    assert "forge" in err.msg and "secrets.token_urlsafe" in err.hint


def test_a_strong_secret_key_or_debug_passes():
    strong = "k8Jz-2vQ_pX9wL4mN7bR1tY6uI3oE5aS0dF8gH2jK4lZ6xC9vB1nM3"
    with override_settings(DEBUG=False, SECRET_KEY=strong):
        assert "adengine.E008" not in _ids(run_checks(tags=["security"]))
    with override_settings(DEBUG=True, SECRET_KEY="demo-only-insecure-secret-key-change-me-in-production"):
        assert "adengine.E008" not in _ids(run_checks(tags=["security"]))


def _mismatched():
    """An adapter for a shop whose fields the default guesses miss: no `price`, orders dated by `ordered`."""
    from adengine.adapters import ShopAdapter

    class Mismatched(ShopAdapter):
        def product_price(self, product):
            return getattr(product, "cost", None)

        def order_placed_at(self, order):
            return getattr(order, "ordered", None)

    return Mismatched


@pytest.mark.django_db
def test_the_adapter_check_names_each_field_that_maps_to_nothing(monkeypatch):
    from adengine import adapters
    from tests.factories import OrderLineFactory

    OrderLineFactory()
    # given the demo shop's own adapter: one real product and order map cleanly
    assert not {"adengine.W001", "adengine.W002"} & _ids(run_checks())
    # when the adapter misses a product field and an order field
    monkeypatch.setattr(adapters, "get_adapter", lambda: _mismatched()())
    warnings = [e for e in run_checks() if e.id in {"adengine.W001", "adengine.W002"}]
    # then each is named, with the method to override
    by_id = {w.id: w for w in warnings}
    assert len(warnings) == 2
    product = by_id["adengine.W001"]
    assert "product_price()" in product.msg and "Mismatched.product_price()" in product.hint
    assert "order_placed_at()" in by_id["adengine.W002"].msg and "is empty" in by_id["adengine.W002"].msg


def test_an_unknown_serving_policy_or_a_floor_outside_0_1_is_an_error():
    from tests.conftest import adengine_settings

    with adengine_settings(SERVING_POLICY="linucb", RELEVANCE_FLOORS={"category": 1.5, "product": 0.75}):
        errors = run_checks()
    policy = next(e for e in errors if e.id == "adengine.E011")
    assert "'linucb'" in policy.msg and "'contextual'" in policy.hint
    floors = next(e for e in errors if e.id == "adengine.E012")
    assert "category" in floors.msg and "product" not in floors.msg
