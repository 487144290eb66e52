"""Training on dev data only: the embedder and reranker (``embedder``), the answer writer (``generator``)."""
from __future__ import annotations

from medrag.training.embedder import (LOSSES, PROVENANCE, Pair, TrainConfig, mine_negatives, negative_pools,
                                      train_embedder, train_reranker, training_pairs)

__all__ = ["LOSSES", "PROVENANCE", "Pair", "TrainConfig", "mine_negatives", "negative_pools", "train_embedder",
           "train_reranker", "training_pairs"]
