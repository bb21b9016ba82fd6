"""The production profile (shop.settings_production) passes ``check --deploy`` with no warning, and refuses to start
without its environment or with the demo's public key."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_KEY = "demo-only-insecure-secret-key-change-me-in-production"


def _env(**overrides: str | None) -> dict[str, str]:
    """The production environment: the test's own database and broker, a strong key, the shop's host."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ADENGINE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="shop.settings_production",
        DATABASE_URL=os.environ["DATABASE_URL"],  # set by shop.embedded (make test) or by whoever runs the tests
        CELERY_BROKER_URL=os.environ["CELERY_BROKER_URL"],
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="shop.example.com,www.shop.example.com",
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_production_profile_passes_check_deploy_with_no_warning():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_it_reads_the_client_behind_the_documented_proxy_and_is_strict_about_https():
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_PROXY_SSL_HEADER, s.ADENGINE['TRUSTED_PROXIES'], s.ALLOWED_HOSTS)"
    )
    result = _manage("shell", "-c", code, env=_env(DJANGO_DEBUG="1"))  # DEBUG stays off whatever the environment says
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "False True True True 31536000 ('HTTP_X_FORWARDED_PROTO', 'https') 1 "
        "['shop.example.com', 'www.shop.example.com']"
    )
    direct = _manage("shell", "-c", code, env=_env(DJANGO_TRUSTED_PROXIES="0"))
    assert " None 0 " in direct.stdout.strip().splitlines()[-1]  # no proxy: no forwarded scheme or address believed


@pytest.mark.parametrize("missing", ["DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"])
def test_a_missing_variable_stops_it_with_a_message_naming_it(missing, tmp_path):
    # a fresh data folder: had it started the embedded servers for a missing URL, they would show up there
    result = _manage("check", env=_env(**{missing: None, "ADENGINE_DATA_DIR": str(tmp_path)}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and f"  {missing}: " in result.stderr
    assert not any(tmp_path.iterdir())


def test_the_demo_key_is_refused_with_debug_off():
    result = _manage("check", "--deploy", env=_env(DJANGO_SECRET_KEY=DEMO_KEY))
    assert result.returncode != 0
    assert "adengine.E008" in result.stderr
