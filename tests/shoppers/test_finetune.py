"""Fine-tuning: pairs from behaviour, a contrastive step on the CPU, a versioned folder, a switch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from adengine.ml.finetune import is_held_out, mine_pairs
from adengine.models import EncoderModel, ProductVector, Shopper
from fixtures.demo_data import generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(tmp_path, encoder):
    paths = generate(tmp_path, customers=60, anonymous=0, days=30, seed=9, per_type=2)
    call_command("shop_import", "--no-progress", **{k: str(v) for k, v in paths.items()})
    call_command("adengine_embed", verbosity=0)


def test_pairs_come_only_from_training_shoppers(imported):
    pairs, held = mine_pairs(held_out_fraction=0.3, seed=1)
    assert held and pairs
    assert {p.kind for p in pairs} <= {"next-purchase", "co-purchase"}
    assert all(is_held_out(sid, fraction=0.3, seed=1) for sid in held)
    assert all(p.query and p.passage for p in pairs)


def test_finetune_saves_a_version_and_switches_only_when_told(imported, capsys):
    # when a tiny fine-tuning run is made without --activate
    call_command(
        "adengine_finetune_encoder",
        "--max-pairs",
        "24",
        "--batch-size",
        "8",
        "--held-out",
        "0.3",
        "--json",
        verbosity=0,
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    model = EncoderModel.objects.get()
    # then a loadable folder and before/after metrics exist, and nothing is switched
    assert (Path(model.path) / "model.safetensors").exists()
    assert {"before", "after", "training"} <= set(model.metrics) and result["training"]["steps"] >= 2
    assert not model.is_active
    old = set(ProductVector.objects.values_list("model_version", flat=True))
    assert model.version not in old
    # when told to switch, then everything is re-embedded with the new model
    call_command("adengine_encoder", "--activate", model.version, verbosity=0)
    assert set(ProductVector.objects.values_list("model_version", flat=True)) == {model.version}
    tags = set(Shopper.objects.exclude(interest_vector=None).values_list("interest_model", flat=True))
    assert tags and all(t.startswith(model.version + ":") for t in tags)
    # and back to the base model
    call_command("adengine_encoder", "--base", verbosity=0)
    assert model.version not in set(ProductVector.objects.values_list("model_version", flat=True))
