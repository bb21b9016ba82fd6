"""The README documents every setting and both commands."""

from __future__ import annotations

from pathlib import Path

from adengine.conf import DEFAULTS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_reference():
    missing = [key for key in DEFAULTS if f"`{key}`" not in README]
    assert not missing


def test_both_commands_are_documented():
    assert "make demo" in README and "make test" in README
