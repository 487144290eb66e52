"""Retriever: questions in, ranked chunks out — dense, BM25 or both fused — many questions per store call."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medrag import fusion
from medrag.documents import Chunk
from medrag.embedding import Embedder
from medrag.errors import MedRAGError
from medrag.filters import Filter
from medrag.lexical import LexicalStore
from medrag.reranking import Reranker
from medrag.settings import Settings
from medrag.stores import VectorStore
from medrag.stores.chunks import ChunkStore

log = logging.getLogger(__name__)

FILTER_OVERFETCH = 10  # with a filter, each retriever fetches this many times more candidates


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its score: cosine (dense), BM25 (bm25) or the fused score (hybrid)."""

    chunk: Chunk
    score: float
    dense: float | None = None  # the chunk's cosine to the question, when the dense side found it


@dataclass(frozen=True)
class Found:
    """One question's search: the ranked ``hits`` and its ``dense`` side's best (cosines, for abstention)."""

    hits: list[Hit]
    dense: list[Hit]


class Retriever:
    """Searches the vector store, the BM25 index or both (fused by RRF or normalised scores)."""

    def __init__(self, embedder: Embedder, vectors: VectorStore, chunks: ChunkStore, lexical: LexicalStore | None,
                 settings: Settings, reranker: Reranker | None = None) -> None:
        self.embedder = embedder
        self.vectors = vectors
        self.chunks = chunks
        self.lexical = lexical
        self.settings = settings
        self.reranker = reranker

    def search(self, questions: Sequence[str], k: int, where: Filter | None = None, mode: str | None = None,
               query_vectors: np.ndarray | None = None, rerank: bool = True) -> list[list[Hit]]:
        """The top ``k`` hits of each question, best first, among chunks matching ``where``.

        ``query_vectors`` are the questions' embeddings when the caller already has them; with a reranker
        (and ``rerank``) the top ``rerank_depth`` are re-ordered by it and scored with its scores.
        """
        return [f.hits for f in self.find(questions, k, where, mode, query_vectors, rerank)]

    def find(self, questions: Sequence[str], k: int, where: Filter | None = None, mode: str | None = None,
             query_vectors: np.ndarray | None = None, rerank: bool = True, dense_k: int = 0) -> list[Found]:
        """``search``, with each question's ``dense_k`` best dense hits (scored by cosine) from the same store
        call: what abstention weighs (the dense side runs for them whatever ``mode``)."""
        for q in questions:
            if not q or not q.strip():
                raise MedRAGError('empty question: ask something, e.g. medrag ask "What causes anemia?"')
        if k <= 0:
            raise MedRAGError(f"k must be a positive number of passages, not {k}")
        mode = mode or self.settings.retrieval.retriever
        if mode != "dense" and self.lexical is None:
            raise MedRAGError(f"the {mode} retriever needs a BM25 index; this index was built without one")
        filtered = where is not None and not where.is_empty
        rerank_depth = self.settings.retrieval.rerank_depth if self.reranker is not None and rerank else 0
        depth = max(k, rerank_depth, self.settings.retrieval.fusion_candidates if mode == "hybrid" else k) * (
            FILTER_OVERFETCH if filtered else 1)
        dense = bm25 = None
        if mode != "bm25" or dense_k:
            if query_vectors is None:
                query_vectors = self.embedder.embed_queries(list(questions))
            dense = self.vectors.search(query_vectors, max(depth, dense_k * (FILTER_OVERFETCH if filtered else 1)))
        if mode != "dense":
            bm25 = self.lexical.search(list(questions), depth)
        ranked = [self._fuse(row, dense if mode != "bm25" else None, bm25) for row in range(len(questions))]
        # each question's own (id, cosine) pairs, best first (a chunk found for several questions has one each)
        cosines = [[(int(i), float(c)) for c, i in zip(dense[0][row], dense[1][row]) if i >= 0]
                   if dense is not None else [] for row in range(len(questions))]
        near = cosines if dense_k else [[] for _ in questions]
        found = self.chunks.get(sorted({i for r in (*ranked, *near) for i, _ in r}))
        results, closest = [], []
        for row, r in enumerate(ranked):
            cosine = dict(cosines[row])
            hits = [Hit(found[i], s, cosine.get(i)) for i, s in r if i in found]
            results.append([h for h in hits if not filtered or where.matches(h.chunk.metadata)])
            by_cosine = [Hit(found[i], c, c) for i, c in near[row] if i in found]
            closest.append([h for h in by_cosine if not filtered or where.matches(h.chunk.metadata)][:dense_k])
        if rerank_depth > 0:
            results = self._rerank(questions, results, rerank_depth)
        return [Found(hits[:k], near_hits) for hits, near_hits in zip(results, closest)]

    def _rerank(self, questions: Sequence[str], results: list[list[Hit]], depth: int) -> list[list[Hit]]:
        """Each question's top ``depth`` hits re-ordered by the cross-encoder (scored in one batch); the rest
        keep their order below them."""
        pairs = [(q, h.chunk.embed_text) for q, hits in zip(questions, results) for h in hits[:depth]]
        scores = iter(self.reranker.score(pairs).tolist())
        out = []
        for hits in results:
            top = [Hit(h.chunk, next(scores), h.dense) for h in hits[:depth]]
            out.append(sorted(top, key=lambda h: -h.score) + hits[depth:])
        return out

    def _fuse(self, row: int, dense: tuple[np.ndarray, np.ndarray] | None,
              bm25: tuple[np.ndarray, np.ndarray] | None) -> list[tuple[int, float]]:
        """One question's ranked (chunk id, score) from whichever retrievers ran."""
        sides = [(side[1][row], side[0][row]) for side in (dense, bm25) if side is not None]
        if len(sides) == 1:
            ids, scores = sides[0]
            return [(int(i), float(s)) for i, s in zip(ids, scores) if i >= 0]
        share = self.settings.retrieval.dense_weight  # the dense side comes first; 0.5 weighs both sides 1
        weights = (2 * share, 2 * (1 - share))
        if self.settings.retrieval.fusion == "rrf":
            return fusion.rrf([ids for ids, _ in sides], k=self.settings.retrieval.rrf_k, weights=weights)
        return fusion.score_fusion([(ids[ids >= 0], s[ids >= 0]) for ids, s in sides], weights,
                                   normalize=self.settings.retrieval.fusion)
