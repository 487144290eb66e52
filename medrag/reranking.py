"""Reranker: a cross-encoder that re-scores the retriever's best passages against the question."""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from medrag.embedding import resolve_model_path, torch_device
from medrag.errors import MedRAGError

log = logging.getLogger(__name__)


class Reranker:
    """A sentence-transformers ``CrossEncoder`` by name or directory (e.g. one ``medrag train-reranker`` made)."""

    def __init__(self, name: str, *, batch_size: int = 32, threads: int = 0, device: str = "") -> None:
        self.name = name
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1
        self.device = device  # "" = a GPU when torch sees one, else the CPU

    @cached_property
    def model(self):  # noqa: ANN201 - a CrossEncoder
        import torch
        from sentence_transformers.cross_encoder import CrossEncoder

        torch.set_num_threads(self.threads)
        try:
            model = CrossEncoder(resolve_model_path(self.name), device=torch_device(self.device),
                                 local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1")
        except Exception as exc:  # noqa: BLE001 - any load failure is the user's model choice
            raise MedRAGError(f"cannot load reranker {self.name!r} (offline: use a local directory): "
                              f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
        log.info("reranker %s loaded", self.name)
        return model

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Relevance scores (higher is better) of ``(question, passage)`` pairs, in one batched pass."""
        if not pairs:
            return np.zeros(0, np.float32)
        return np.asarray(self.model.predict(list(pairs), batch_size=self.batch_size, show_progress_bar=False,
                                             convert_to_numpy=True), dtype=np.float32).reshape(-1)
