"""Citation support: is each answer sentence close to a sentence of the passage it cites?"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from medrag.generation.citations import BULLET, passage_sentences

if TYPE_CHECKING:
    from medrag.embedding import Embedder

#: calibrated for all-MiniLM-L6-v2 (eval/reports/answering.md): F1-optimal on BioASQ 7B against on-topic
#: negatives; the settings default (``safety.support_threshold``)
SUPPORT_THRESHOLD = 0.65


@dataclass
class SentenceSupport:
    """How well an answer sentence is supported by its cited passages (``citations`` includes ``added``)."""

    text: str
    citations: list[int]
    support: float  # max cosine between the sentence and a sentence of a cited passage (any passage if none cited)
    supported: bool
    added: list[int] = field(default_factory=list)


class SupportChecker:
    """Scores each answer sentence against the sentences of the passages it cites, in one embedding call (none
    when every sentence is quoted from a passage it cites, as the extractive answerer's are)."""

    def __init__(self, embedder: Embedder, threshold: float = SUPPORT_THRESHOLD) -> None:
        self.embedder = embedder
        self.threshold = threshold

    def check(self, sentences: Sequence[tuple[str, Sequence[int]]], passages: Sequence[str]) -> list[SentenceSupport]:
        """One ``SentenceSupport`` per sentence (passages numbered from 1); uncited supported ones get a citation."""
        if not sentences:
            return []
        parts = [[BULLET.sub("", s) for s in passage_sentences(p)] for p in passages]  # "- item" quoted as "item"
        quoted = [[n for n in cited if 1 <= n <= len(passages) and text in parts[n - 1]] for text, cited in sentences]
        best = np.full((len(sentences), len(passages) + 1), -1.0, dtype=np.float32)  # per passage number
        if not all(quoted):  # a sentence quoted from the passage it cites has support 1 without embedding it
            owner = np.array([n for n, ps in enumerate(parts, 1) for _ in ps], dtype=np.int64)
            vectors = self.embedder.embed_documents([s for s, _ in sentences] + [s for ps in parts for s in ps])
            sims = vectors[:len(sentences)] @ vectors[len(sentences):].T
            for n in range(1, len(passages) + 1):
                if (owner == n).any():
                    best[:, n] = sims[:, owner == n].max(axis=1)
        results = []
        for i, (text, cited) in enumerate(sentences):
            valid = [n for n in cited if 1 <= n <= len(passages)]
            if quoted[i]:
                results.append(SentenceSupport(text, valid, 1.0, True))
                continue
            if valid:
                score = float(best[i, valid].max())
                results.append(SentenceSupport(text, valid, score, score >= self.threshold))
                continue
            n = int(best[i].argmax()) if passages else 0
            score = float(best[i, n]) if passages else 0.0
            added = [n] if passages and score >= self.threshold else []
            results.append(SentenceSupport(text, added, score, bool(added), added))
        return results




__all__ = ["SUPPORT_THRESHOLD", "SentenceSupport", "SupportChecker"]
