"""medrag: offline, cited, retrieval-augmented medical question answering."""
from __future__ import annotations

import importlib
import os
from typing import Any

# Offline by default: models load from local directories or packages, never from a hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"

# Names load on first use, so ``import medrag.training`` or ``medrag --help`` do not pull in FAISS and torch.
_EXPORTS = {
    "Answer": "medrag.answer", "Citation": "medrag.answer", "Chunk": "medrag.documents",
    "Deletion": "medrag.documents", "Document": "medrag.documents", "MedRAGError": "medrag.errors",
    "IngestReport": "medrag.ingest", "MedRAG": "medrag.pipeline", "PRESETS": "medrag.settings",
    "Settings": "medrag.settings",
}
__all__ = ["PRESETS", "Answer", "Chunk", "Citation", "Deletion", "Document", "IngestReport", "MedRAG",
           "MedRAGError", "Settings", "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'medrag' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
