"""Evaluation: medical QA sets, metrics, and the ``medrag eval`` harness."""
from __future__ import annotations

from medrag.evaluation.datasets import DATASETS, Question, load
from medrag.evaluation.harness import evaluate, evaluate_retrieval

__all__ = ["DATASETS", "Question", "evaluate", "evaluate_retrieval", "load"]
