"""Abstention: answer nothing when the best passages are only loosely related to the question.

The threshold and weights are settings (``safety.abstain_*``), calibrated by ``eval/calibrate_abstention.py``.
"""
from __future__ import annotations

from collections.abc import Sequence

MARGIN_DEPTH = 5  # the margin is the best score minus the 5th best (or the last, with fewer hits)


def confidence(scores: Sequence[float], margin_weight: float = 0.0, coverage: float | None = None,
               coverage_weight: float = 0.0) -> float:
    """``top1 + margin_weight * (top1 - top5) - coverage_weight * (1 - coverage)`` of dense cosine scores;
    -1 when there are none.

    A question the index covers has one clearly best passage, and its rare words are in the best passages
    (``coverage``: ``BM25Store.coverage``, IDF-weighted); an off-topic one has a flat top-5 and words the
    passages lack. Without a coverage (no lexical index, or a question of stop words) nothing is taken off.
    """
    if not scores:
        return -1.0
    ranked = sorted(scores, reverse=True)
    margin = ranked[0] - ranked[min(MARGIN_DEPTH, len(ranked)) - 1]
    return ranked[0] + margin_weight * margin - coverage_weight * (1.0 - (1.0 if coverage is None else coverage))


def abstain(scores: Sequence[float], threshold: float, margin_weight: float = 0.0, coverage: float | None = None,
            coverage_weight: float = 0.0) -> bool:
    """Whether to answer nothing: no passage, or ``confidence`` (the top cosine by default) is below ``threshold``.

    Calibrated (``eval/calibrate_abstention.py``, the ``safety`` settings): ``abstain(cosines, threshold, margin_weight,
    coverage, coverage_weight)`` (``scores`` must be dense cosines, not fused hybrid scores).
    """
    return confidence(scores, margin_weight, coverage, coverage_weight) < threshold


__all__ = ["MARGIN_DEPTH", "abstain", "confidence"]
