"""Fine-tuning: pairs mined without leaking into the evaluation, a schedule on the batches run, a guarded switch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from adengine.adapters import get_adapter
from adengine.ml import protocol
from adengine.ml.encoder import Encoder
from adengine.ml.finetune import Pair, lr_factor, mine_pairs, plan_batches, train
from adengine.models import EncoderModel, ProductVector
from adengine.selectors.evaluation import load_log
from fixtures.demo_data import generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(tmp_path, encoder):
    paths = generate(tmp_path, customers=80, anonymous=5, days=30, seed=4, per_type=2)
    call_command("shop_import", "--no-progress", **{k: str(v) for k, v in paths.items()})
    call_command("adengine_embed", verbosity=0)


def test_pairs_come_only_from_training_shoppers_before_the_cut_off(imported):
    # given the protocol's split of the imported behaviour
    loaded = load_log()
    sp = protocol.split(loaded.log, test_share=0.25)
    last = protocol.last_orders(loaded.log)
    test = {u for u, (t, _) in last.items() if t >= sp.cutoff}
    # when pairs are mined
    mined = mine_pairs(test_share=0.25, seed=1)
    # then the split is the protocol's, and every pair is a training shopper's, from before the cut-off
    assert mined.cutoff == sp.cutoff and mined.test_shoppers == test
    assert {c.user for c in sp.cases} <= test and mined.pairs
    assert all(p.shopper not in test and p.at < sp.cutoff for p in mined.pairs)
    assert {p.kind for p in mined.pairs} == {"next-purchase", "co-purchase"}
    # and a hard negative is a product the shopper never bought, never the positive itself
    adapter = get_adapter()
    text = {p.pk: adapter.product_text(p) for p in adapter.products()}
    bought: dict[int, set[str]] = {}
    for j in range(len(loaded.log)):
        if loaded.kinds[j] == "purchase" and loaded.products[j] in text:
            bought.setdefault(int(loaded.log.user[j]), set()).add(text[loaded.products[j]])
    assert any(p.negative for p in mined.pairs)
    for p in mined.pairs:
        assert p.negative != p.passage and p.negative not in bought[p.shopper]


def test_batches_never_pair_a_positive_with_itself_and_defer_instead_of_dropping():
    # given pairs where many share a positive, and negatives that are other pairs' positives
    pairs = [Pair(f"q{i}", f"p{i % 3}", "next-purchase", i, 0.0, f"p{(i + 1) % 3}") for i in range(9)]
    pairs += [Pair(f"r{i}", f"x{i}", "next-purchase", i, 0.0, None) for i in range(9)]
    # when batches are planned
    batches = plan_batches(pairs, batch_size=4, epochs=2, seed=3)
    # then no batch holds a positive twice or a negative that is a positive there
    for batch in batches:
        positives = [p.passage for p in batch]
        assert len(set(positives)) == len(positives) and 1 < len(batch) <= 4
        assert not {p.negative for p in batch} & set(positives)
    # and the x-pairs, which clash with nothing, are all trained on in each epoch
    assert sum(1 for b in batches for p in b if p.passage.startswith("x")) == 18


def test_schedule_warms_up_and_ends_above_zero():
    total, warmup = 20, 2
    factors = [lr_factor(s, total=total, warmup=warmup, floor=0.1) for s in range(total)]
    assert factors[0] == 0.5 and factors[1] == 1.0
    assert all(a >= b for a, b in zip(factors[1:], factors[2:], strict=False))
    assert factors[-1] == pytest.approx(0.1)


def test_training_runs_every_planned_batch_and_the_last_rate_is_above_zero(imported, encoder):
    # given the batches planned from a few mined pairs, duplicates of positives among them
    pairs = mine_pairs(test_share=0.25, seed=1).pairs[:10]
    batches = plan_batches(pairs + pairs[:4], batch_size=4, epochs=1, seed=0)
    candidate = Encoder(
        model=encoder.location,
        version="candidate",
        query_prefix=encoder.query_prefix,
        passage_prefix=encoder.passage_prefix,
    )
    # when the candidate is trained
    stats = train(encoder=candidate, batches=batches, lr=1e-5, trainable_layers=1)
    # then the schedule was counted on the batches run, and it ends on a positive rate
    assert stats["steps"] == stats["planned_steps"] == len(batches) >= 2
    assert 0 < stats["lr_last"] < stats["lr_peak"] == pytest.approx(1e-5)


def _finetune(capsys, *extra: str) -> dict:
    call_command(
        "adengine_finetune_encoder",
        "--max-pairs",
        "8",
        "--batch-size",
        "4",
        "--trainable-layers",
        "1",
        "--json",
        *extra,
        verbosity=0,
    )
    return capsys.readouterr().out


def test_activation_is_refused_without_a_significant_gain_unless_forced(imported, capsys):
    # when a tiny fine-tuning run that cannot move anything asks to be activated
    out = _finetune(capsys, "--lr", "1e-12", "--activate")
    result = json.loads(out.strip().splitlines()[-1])
    # then it is saved with before/after figures and their paired comparison, but not switched
    assert {"version", "before", "after", "training", "activated", "significance"} <= set(result)
    assert result["activated"] is False and "not switched: the blend's gain is not significant" in out
    assert result["significance"]["significant"] is False
    assert {"p_bootstrap", "p_sign", "wins", "losses"} <= set(result["significance"]["blend"])
    assert {"hr10", "ndcg10"} <= set(result["before"]["content"])
    model = EncoderModel.objects.get(version=result["version"])
    assert (Path(model.path) / "model.safetensors").exists() and not model.is_active
    assert model.version not in set(ProductVector.objects.values_list("model_version", flat=True))
    # when forced, then it is switched and everything is re-embedded with it
    forced = json.loads(_finetune(capsys, "--lr", "1e-12", "--activate", "--force").strip().splitlines()[-1])
    assert forced["activated"] is True and EncoderModel.objects.get(version=forced["version"]).is_active
    assert set(ProductVector.objects.values_list("model_version", flat=True)) == {forced["version"]}
    call_command("adengine_encoder", "--base", verbosity=0)
