"""Rank fusion: combine the ranked ids of several retrievers (dense, BM25 ...) into one ranking.

Pure functions over id/score lists or arrays. Id -1 (a store's "no hit" padding) is ignored everywhere.
Results are ``[(id, fused score), ...]``, best first; equal fused scores rank the smaller id first.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np

from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

Normalize = Literal["minmax", "zscore"]


def _weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    if len(weights) != n:
        raise MedRAGError(f"{len(weights)} fusion weights for {n} result lists")
    if any(not np.isfinite(w) or w < 0 for w in weights):
        raise MedRAGError(f"fusion weights must be finite and >= 0, not {list(weights)}")
    return [float(w) for w in weights]


def _ranked(fused: dict[int, float]) -> list[tuple[int, float]]:
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def rrf(rankings: Sequence[Sequence[int]], k: int = 60, weights: Sequence[float] | None = None
        ) -> list[tuple[int, float]]:
    """Reciprocal rank fusion (Cormack et al. 2009): ``score(d) = sum_i w_i / (k + rank_i(d))``.

    ``rank`` is 1-based position in each list (a -1 keeps its position but scores nothing; a repeated id
    counts at its first position only); a document missing from a list gets nothing from it.
    """
    if k < 0:
        raise MedRAGError(f"the RRF constant k must be >= 0, not {k}")
    fused: dict[int, float] = {}
    for w, ranking in zip(_weights(weights, len(rankings)), rankings):
        seen: set[int] = set()
        for position, doc in enumerate(np.asarray(ranking, dtype=np.int64).ravel().tolist()):
            if doc < 0 or doc in seen:
                continue
            seen.add(doc)
            fused[doc] = fused.get(doc, 0.0) + w / (k + position + 1)
    return _ranked(fused)


def normalize_scores(scores: np.ndarray, method: Normalize = "minmax") -> tuple[np.ndarray, float]:
    """``scores`` normalised, and the value a document missing from the list gets.

    ``minmax`` maps to [0, 1], missing = 0 (the list's minimum); ``zscore`` subtracts the mean and divides by
    the standard deviation, missing = the list's lowest z-score (a document below a list's cut-off scored no
    better than its last hit). A list whose scores are all equal (or a single hit) gives its documents 1 and
    the missing 0 under either method: being retrieved is all it says.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if method not in ("minmax", "zscore"):
        raise MedRAGError(f"unknown score normalisation {method!r}; choose minmax or zscore")
    if len(scores) == 0:
        return scores, 0.0
    low, high = float(scores.min()), float(scores.max())
    if high - low <= 1e-12 * max(1.0, abs(high)):
        return np.ones_like(scores), 0.0
    if method == "minmax":
        return (scores - low) / (high - low), 0.0
    z = (scores - scores.mean()) / scores.std()
    return z, float(z.min())


def score_fusion(results: Sequence[tuple[Sequence[int], Sequence[float]]], weights: Sequence[float] | None = None,
                 normalize: Normalize = "minmax") -> list[tuple[int, float]]:
    """Weighted sum of each list's normalised scores (see ``normalize_scores`` for a missing document).

    ``results`` holds one ``(ids, scores)`` pair per retriever; ids -1 are dropped before normalising and a
    repeated id keeps its first (best) score.
    """
    lists: list[tuple[list[int], np.ndarray, float]] = []
    for ids, scores in results:
        ids_a, scores_a = np.asarray(ids, dtype=np.int64).ravel(), np.asarray(scores, dtype=np.float64).ravel()
        if len(ids_a) != len(scores_a):
            raise MedRAGError(f"{len(ids_a)} ids with {len(scores_a)} scores")
        valid = ids_a >= 0
        ids_a, scores_a = ids_a[valid], scores_a[valid]
        _, first = np.unique(ids_a, return_index=True)
        first.sort()
        norm, missing = normalize_scores(scores_a[first], normalize)
        lists.append((ids_a[first].tolist(), norm, missing))
    w = _weights(weights, len(lists))
    fused = dict.fromkeys((doc for ids, _, _ in lists for doc in ids), 0.0)
    for wi, (ids, norm, missing) in zip(w, lists):
        given = dict(zip(ids, norm.tolist()))
        for doc in fused:
            fused[doc] += wi * given.get(doc, missing)
    return _ranked(fused)


def rrf_batch(ids: Sequence[np.ndarray], k: int = 60, weights: Sequence[float] | None = None,
              limit: int | None = None) -> list[list[tuple[int, float]]]:
    """``rrf`` per query over the ``(n_queries, k_i)`` id arrays of several stores' ``search``."""
    rows = _rows(ids)
    return [rrf([a[q] for a in ids], k, weights)[:limit] for q in range(rows)]


def score_fusion_batch(results: Sequence[tuple[np.ndarray, np.ndarray]], weights: Sequence[float] | None = None,
                       normalize: Normalize = "minmax", limit: int | None = None) -> list[list[tuple[int, float]]]:
    """``score_fusion`` per query over ``(ids, scores)`` arrays, each ``(n_queries, k_i)``, one pair per store
    (note: stores' ``search`` returns ``(scores, ids)``)."""
    rows = _rows([i for i, _ in results])
    return [score_fusion([(i[q], s[q]) for i, s in results], weights, normalize)[:limit] for q in range(rows)]


def _rows(arrays: Sequence[np.ndarray]) -> int:
    rows = {len(a) for a in arrays}
    if len(rows) > 1:
        raise MedRAGError(f"result arrays cover different numbers of queries: {sorted(rows)}")
    return rows.pop() if rows else 0
