"""A LoRA fine-tune of the local copywriter on curated product -> ad copy pairs, on the CPU.

The small base model (Gemma 3 270M) continues patterns; with a few-shot prompt it copies the examples' shape
but invents, repeats and drifts. Fine-tuned on a few hundred good pairs, it learns the pattern itself, so its
prompt drops the worked examples (``prompts.build(shots=0)``): shorter prompts, and copy in the pairs' style.

- **Adapter**: LoRA (``peft``) on every attention and MLP projection; the base weights, embeddings and output
  layer stay frozen. The loss is the cross-entropy of the target tokens only (headline and description); the
  output layer -- 262k tokens wide -- is applied to those positions alone, which keeps a CPU step cheap.
- **Epochs are chosen by the data**: after each epoch the loss on held-out products' pairs is measured and the
  best epoch's adapter is kept; training stops when the held-out loss no longer falls (or at ``max_epochs``,
  or at the time budget).
- The result is an adapter folder (``adapter_config.json`` + weights) and ``training.json``; the command
  registers it as a ``CopywriterModel`` version, evaluates it against the base model on held-out products and
  activates it only when it is better there (``services.copywriters``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from adengine.ml import prompts
from adengine.ml.copy_pairs import Pair
from adengine.ml.encoder import models_dir

log = logging.getLogger(__name__)

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PROMPT_PREFIX = "lora"


def new_version_dir() -> tuple[str, Path]:
    version = "copy-" + dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    folder = models_dir() / version
    return version, folder


def prompt_version(version: str) -> str:
    return f"{PROMPT_PREFIX}:{version}"


@dataclass
class Example:
    ids: list[int]
    labels: list[int]  # -100 on the prompt's tokens


def encode(pair: Pair, tokenizer, template_set: dict) -> Example:
    """A pair as the model sees it: the zero-shot prompt's tokens, then the target's (the only ones scored)."""
    prompt = pair.prompt(template_set, shots=0)
    head = tokenizer(prompt.text)["input_ids"]
    tail = tokenizer(
        prompts.target(pair.headline, pair.description, language=pair.language, template_set=template_set),
        add_special_tokens=False,
    )["input_ids"]
    return Example(ids=head + tail, labels=[-100] * len(head) + tail)


def _batch(examples: Sequence[Example], pad_id: int):
    import torch

    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for row, e in enumerate(examples):  # right padding: positions of real tokens are unchanged
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        mask[row, : len(e.ids)] = 1
        labels[row, : len(e.labels)] = torch.tensor(e.labels)
    return ids, mask, labels


def target_loss(model, ids, mask, labels):
    """Mean cross-entropy of the target tokens, the output layer applied only at the positions that predict them."""
    import torch.nn.functional as F

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = inner.model(input_ids=ids, attention_mask=mask).last_hidden_state
    shifted = labels[:, 1:]
    keep = shifted != -100
    logits = inner.lm_head(hidden[:, :-1][keep])
    softcap = getattr(inner.config, "final_logit_softcapping", None)
    if softcap:
        logits = (logits / softcap).tanh() * softcap
    return F.cross_entropy(logits.float(), shifted[keep], reduction="sum"), int(keep.sum())


def mean_loss(model, examples: Sequence[Example], pad_id: int, batch_size: int = 8) -> float:
    """Per-token cross-entropy of the targets of ``examples`` (no gradient)."""
    import torch

    total, tokens = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            loss, n = target_loss(model, *_batch(examples[start : start + batch_size], pad_id))
            total, tokens = total + float(loss), tokens + n
    return total / max(tokens, 1)


def train(
    *,
    base_folder: Path | str,
    train_pairs: Sequence[Pair],
    val_pairs: Sequence[Pair],
    out: Path,
    template_set: dict,
    max_epochs: int = 4,
    lr: float = 3e-4,
    rank: int = 16,
    batch_size: int = 8,
    max_minutes: float | None = None,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict:
    """Train a LoRA adapter; write the best epoch's (by held-out loss) to ``out``; return the training record."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not train_pairs:
        raise ValueError("no training pairs")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_folder))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = AutoModelForCausalLM.from_pretrained(str(base_folder), dtype=torch.float32)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.05, target_modules=TARGET_MODULES, task_type="CAUSAL_LM"
    )
    model = get_peft_model(model, config)
    train_ex = [encode(p, tokenizer, template_set) for p in train_pairs]
    val_ex = [encode(p, tokenizer, template_set) for p in val_pairs]
    model.eval()
    base_val = mean_loss(model, val_ex, pad_id) if val_ex else None
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    steps_per_epoch = math.ceil(len(train_ex) / batch_size)
    total = steps_per_epoch * max_epochs
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.1, 1 - (s - warmup) / max(1, total - warmup)))
    )
    started = time.perf_counter()
    history: list[dict] = []
    best: tuple[float, int, dict] | None = None
    step = 0
    stopped = "max_epochs"
    for epoch in range(1, max_epochs + 1):
        model.train()
        order = list(range(len(train_ex)))
        rng.shuffle(order)
        running, counted = 0.0, 0
        for start in range(0, len(order), batch_size):
            chunk = [train_ex[i] for i in order[start : start + batch_size]]
            loss_sum, n = target_loss(model, *_batch(chunk, pad_id))
            loss = loss_sum / max(n, 1)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            schedule.step()
            step += 1
            running, counted = running + float(loss_sum.detach()), counted + n
            if progress:
                progress(step, total, float(loss))
            if max_minutes and (time.perf_counter() - started) / 60 > max_minutes:
                stopped = "time budget"
                break
        model.eval()
        val = mean_loss(model, val_ex, pad_id) if val_ex else running / max(counted, 1)
        history.append({"epoch": epoch, "train_loss": running / max(counted, 1), "heldout_loss": val})
        log.info("copywriter fine-tune epoch %d: train %.3f held-out %.3f", epoch, history[-1]["train_loss"], val)
        if best is None or val < best[0]:
            state = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}
            best = (val, epoch, state)
        elif val_ex:
            stopped = "held-out loss rose"
            break
        if stopped == "time budget":
            break
    assert best is not None
    model.load_state_dict(best[2], strict=False)
    out.mkdir(parents=True, exist_ok=False)
    model.save_pretrained(str(out))
    record = {
        "base_folder": str(base_folder),
        "pairs": len(train_ex),
        "heldout_pairs": len(val_ex),
        "rank": rank,
        "lr": lr,
        "batch_size": batch_size,
        "epochs_run": len(history),
        "best_epoch": best[1],
        "stopped": stopped,
        "heldout_loss_before": base_val,
        "heldout_loss_after": best[0],
        "history": history,
        "seconds": time.perf_counter() - started,
        "steps": step,
    }
    (out / "training.json").write_text(json.dumps(record, indent=2))
    return record
