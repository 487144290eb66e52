"""The torch path: the sentence-transformers model as it is (fp32; bf16 by autocast on a CPU with bf16
instructions; fp16/bf16 weights on a GPU)."""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from medrag.embedding import cpu
from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

#: torch dtypes by precision name
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class TorchPath:
    """A SentenceTransformer; ``encode`` gives unit-length float32 vectors."""

    Options = None
    precisions = ("fp32", "bf16", "fp16")

    def __init__(self, model_path: str, precision: str, *, threads: int, device: str = "",
                 options: Any = None, name: str = "") -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        from medrag.embedding import torch_device

        if precision not in self.precisions:
            raise MedRAGError(f"the torch embedder runs {', '.join(self.precisions)}, not {precision!r}")
        hf_logging.disable_progress_bar()  # our own progress bars only
        torch.set_num_threads(threads)
        self.device = torch_device(device)
        self.precision = precision
        try:
            self.model = SentenceTransformer(model_path, device=self.device,
                                             local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1")
        except Exception as exc:
            raise MedRAGError(f"cannot load embedding model {name or model_path!r} (offline: use a local directory "
                              f"or a packaged model): {type(exc).__name__}: {exc}".splitlines()[0]) from exc
        self.autocast = False
        if precision != "fp32" and self.device == "cpu":
            if precision == "fp16":
                raise MedRAGError("fp16 embedding needs a GPU; on the CPU use bf16 or fp32")
            if cpu.has_bf16(cpu.cpu_class()):
                self.autocast = True  # fp32 weights, bf16 matmuls: layer norms and softmax stay fp32
            else:
                log.warning("this CPU (class %s) has no bf16 instructions: the bf16 torch embedder runs in fp32 "
                            "(bf16 would be slower here; vectors within bf16 rounding of the index's)",
                            cpu.cpu_class())
        elif precision != "fp32":
            self.model = self.model.to(getattr(torch, DTYPES[precision]))
        self.tokenizer = self.model.tokenizer

    @property
    def dim(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], batch_size: int, progress: bool = False, documents: bool = True) -> np.ndarray:
        """Unit-length vectors for ``texts``, in order (sentence-transformers sorts each call by length)."""
        import torch

        context = torch.autocast("cpu", dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()
        with context, torch.inference_mode():
            vectors = self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                        convert_to_numpy=False, convert_to_tensor=True, show_progress_bar=progress)
        vectors = vectors.float()
        vectors = torch.nn.functional.normalize(vectors, dim=1)  # in fp32, whatever the compute precision
        return np.ascontiguousarray(vectors.cpu().numpy(), dtype=np.float32)

    def encode_tokens(self, texts: Sequence[str], batch_size: int, progress: bool = False, documents: bool = True,
                      tokens: bool = True) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Unit-length vectors for ``texts`` and (``tokens``) each text's token embeddings, in order."""
        import torch

        if not tokens:
            return self.encode(texts, batch_size, progress, documents), None
        context = torch.autocast("cpu", dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()
        with context, torch.inference_mode():
            out = self.model.encode(list(texts), batch_size=batch_size, output_value=None, convert_to_numpy=False,
                                    show_progress_bar=progress)
        pooled = torch.nn.functional.normalize(torch.stack([o["sentence_embedding"].float() for o in out]), dim=1)
        return (np.ascontiguousarray(pooled.cpu().numpy(), dtype=np.float32),
                [o["token_embeddings"][:int(o["attention_mask"].sum())].float().cpu().numpy() for o in out])

    def describe(self) -> str:
        how = "bf16 autocast" if self.autocast else self.precision
        return f"torch {how} on {self.device}"


__all__ = ["DTYPES", "TorchPath"]
