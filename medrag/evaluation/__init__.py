"""Evaluation: medical QA sets, metrics, and the ``medrag eval`` harness."""
from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use, so the pure metric functions import without the pipeline behind the harness.
_EXPORTS = {"DATASETS": "medrag.evaluation.datasets", "Question": "medrag.evaluation.datasets",
            "load": "medrag.evaluation.datasets", "evaluate": "medrag.evaluation.harness",
            "evaluate_retrieval": "medrag.evaluation.harness"}
__all__ = ["DATASETS", "Question", "evaluate", "evaluate_retrieval", "load"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'medrag.evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
