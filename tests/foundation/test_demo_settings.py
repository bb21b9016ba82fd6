"""The demo's settings only read the environment: importing them starts no server (the entry points do)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_demo_settings_without_urls_starts_nothing_and_says_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env["ADENGINE_DATA_DIR"] = str(tmp_path / "data")  # where embedded servers would put their files
    done = subprocess.run(
        [sys.executable, "-c", "import shop.settings"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "DATABASE_URL and CELERY_BROKER_URL not set" in done.stderr and "make demo" in done.stderr
    assert not (tmp_path / "data").exists()


def test_the_demo_settings_have_no_fallback_key(tmp_path):
    # given the services' URLs but no DJANGO_SECRET_KEY (a published fallback would let anyone sign billed clicks)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env.update(DATABASE_URL="postgresql://unused/db", CELERY_BROKER_URL="redis://unused:6379/0")
    env["ADENGINE_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-c", "import shop.settings"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    # then importing them stops with a message that says where the demo keeps its own, and makes none
    assert done.returncode != 0
    assert "DJANGO_SECRET_KEY not set" in done.stderr and ".data/secret_key" in done.stderr
    assert not (tmp_path / "data").exists()
