"""The demo's secret key: random, one per data directory, made once and handed to every process of the demo (the
settings have no published fallback: anyone could sign billed click links with one)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shop import embedded

ROOT = Path(__file__).resolve().parents[2]


def test_the_key_is_made_once_per_data_directory_and_readable_by_its_owner_only(tmp_path):
    # given a fresh data directory, when the key is asked for, then a random one is made, readable by its owner only
    key = embedded.secret_key(tmp_path / "a")
    path = tmp_path / "a" / "secret_key"
    assert len(key) >= 50 and path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary file left behind
    # and it is the same on the next start, another data directory's is another
    assert embedded.secret_key(tmp_path / "a") == key
    assert embedded.secret_key(tmp_path / "b") != key


def test_a_damaged_key_file_is_refused_not_used(tmp_path):
    (tmp_path / "secret_key").write_text("short\n")
    with pytest.raises(RuntimeError, match="delete it"):
        embedded.secret_key(tmp_path)


def test_a_key_set_in_the_environment_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("DJANGO_SECRET_KEY", "k" * 60)
    embedded.ensure_secret_key(tmp_path)
    assert os.environ["DJANGO_SECRET_KEY"] == "k" * 60
    assert not (tmp_path / "secret_key").exists()


def test_the_launcher_hands_the_data_directorys_key_to_every_child(monkeypatch, tmp_path):
    from shop import launcher

    # given no key in the environment
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    monkeypatch.setattr(embedded, "DATA_DIR", tmp_path)
    # when the demo builds its children's environment
    env = launcher.child_environment()
    # then the web server, workers and beat (env) and its manage.py steps (which inherit os.environ) get the
    # data directory's key
    key = (tmp_path / "secret_key").read_text().strip()
    assert env["DJANGO_SECRET_KEY"] == os.environ["DJANGO_SECRET_KEY"] == key


def test_every_demo_entry_point_uses_the_one_key_of_its_data_directory(tmp_path):
    # given no key in the environment (the database and broker: the tests' own, so no server starts)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env.update(DJANGO_SETTINGS_MODULE="shop.settings", ADENGINE_DATA_DIR=str(tmp_path))

    def output(*cmd: str) -> str:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    # when manage.py and `shop.embedded run` start, twice (a restart)
    shown = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = output(sys.executable, "manage.py", "shell", "-c", shown)
    run = output(sys.executable, "-m", "shop.embedded", "run", "--", sys.executable, "-c",
                 "import os; print(os.environ['DJANGO_SECRET_KEY'])")  # fmt: skip
    again = output(sys.executable, "manage.py", "shell", "-c", shown)
    # then all of them use the key kept in the data directory
    assert first == run == again == (tmp_path / "secret_key").read_text().strip()
