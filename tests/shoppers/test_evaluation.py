"""adengine_eval_interests on imported data: beats popularity, JSON contract, clear errors."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from fixtures.demo_data import generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(tmp_path, encoder):
    paths = generate(tmp_path, customers=80, anonymous=5, days=30, seed=4, per_type=2)
    call_command("shop_import", "--no-progress", **{k: str(v) for k, v in paths.items()})
    call_command("adengine_embed", "--products", verbosity=0)


def test_eval_reports_hit_rate_against_both_baselines(imported, capsys):
    call_command("adengine_eval_interests", "--json")
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert {"hr10", "ndcg10", "hr10_popularity", "hr10_random", "users"} <= set(result)
    assert result["users"] >= 30
    assert result["hr10"] >= 2 * result["hr10_popularity"]
    assert 0 < result["ndcg10"] <= result["hr10"] <= 1


def test_eval_compares_methods(imported, capsys):
    call_command("adengine_eval_interests", "--json", "--compare")
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"text", "mean", "blend:0.2", "blend:0.5"} <= set(result["methods"])


def test_eval_without_data_is_a_clear_error(encoder):
    with pytest.raises(CommandError, match="nothing to evaluate"):
        call_command("adengine_eval_interests")
