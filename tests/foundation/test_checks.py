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
