"""Retriever: questions in, ranked chunks out, many questions in one vector-store call."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from medrag.documents import Chunk
from medrag.embedding import Embedder
from medrag.errors import MedRAGError
from medrag.stores import VectorStore
from medrag.stores.chunks import ChunkStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its score (cosine similarity for dense retrieval)."""

    chunk: Chunk
    score: float


class Retriever:
    """Dense retrieval: the embedder's query vectors searched in the vector store."""

    def __init__(self, embedder: Embedder, vectors: VectorStore, chunks: ChunkStore) -> None:
        self.embedder = embedder
        self.vectors = vectors
        self.chunks = chunks

    def search(self, questions: Sequence[str], k: int) -> list[list[Hit]]:
        """The top ``k`` hits of each question, best first; one batched search for all of them."""
        for q in questions:
            if not q or not q.strip():
                raise MedRAGError("empty question: ask something, e.g. medrag ask \"What causes anemia?\"")
        if k <= 0:
            raise MedRAGError(f"k must be a positive number of passages, not {k}")
        scores, ids = self.vectors.search(self.embedder.embed_queries(list(questions)), k)
        found = self.chunks.get(sorted({int(i) for i in ids.ravel() if i >= 0}))
        return [[Hit(found[int(i)], float(s)) for s, i in zip(row_s, row_i) if int(i) in found]
                for row_s, row_i in zip(scores, ids)]
