"""medrag: offline, cited, retrieval-augmented medical question answering."""
from __future__ import annotations

import os

# Offline by default: models load from local directories or packages, never from a hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from medrag.answer import Answer, Citation  # noqa: E402
from medrag.documents import Chunk, Deletion, Document  # noqa: E402
from medrag.errors import MedRAGError  # noqa: E402
from medrag.pipeline import IngestReport, MedRAG  # noqa: E402
from medrag.settings import PRESETS, Settings  # noqa: E402

__version__ = "0.1.0"
__all__ = ["PRESETS", "Answer", "Chunk", "Citation", "Deletion", "Document", "IngestReport", "MedRAG",
           "MedRAGError", "Settings", "__version__"]
