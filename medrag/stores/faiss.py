"""FAISS vector store built from a factory string, inner product over unit vectors, ids = chunk rows."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import faiss
import numpy as np

from medrag.errors import MedRAGError

log = logging.getLogger(__name__)


class FaissStore:
    """A FAISS index (``"Flat"``, ``"HNSW32"``, ``"IVF4096,PQ48"`` ...) wrapped in an id map."""

    def __init__(self, dim: int, factory: str = "Flat", *, threads: int = 0) -> None:
        faiss.omp_set_num_threads(threads or os.cpu_count() or 1)
        try:
            inner = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise MedRAGError(f"invalid FAISS index type {factory!r}: {str(exc).splitlines()[0]}") from exc
        self.factory = factory
        self.index = faiss.IndexIDMap2(inner)
        self._doomed: set[int] = set()  # ids to drop from an index type that cannot remove (HNSW)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[1] != self.dim:
            raise MedRAGError(f"vectors of dimension {vectors.shape[1]} do not fit an index of dimension {self.dim}")
        if not self.index.is_trained:
            log.info("training %s on %d vectors", self.factory, len(vectors))
            self.index.train(vectors)
        self.index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self._purge()
        if self.count() == 0 or k <= 0:
            n = len(queries)
            return np.zeros((n, max(k, 0)), np.float32), np.full((n, max(k, 0)), -1, np.int64)
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids

    def delete(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        try:
            return int(self.index.remove_ids(ids))
        except RuntimeError:  # e.g. HNSW: rebuilt without them once, at the next search, count or save
            present = set(faiss.vector_to_array(self.index.id_map).tolist())
            before = len(self._doomed)
            self._doomed.update(int(i) for i in ids if int(i) in present)
            return len(self._doomed) - before

    def _purge(self) -> None:
        """Rebuild an index that cannot remove vectors without the ids deleted from it."""
        if not self._doomed:
            return
        all_ids = faiss.vector_to_array(self.index.id_map)
        keep = np.array([i for i in all_ids if int(i) not in self._doomed], dtype=np.int64)
        vectors = np.vstack([self.index.reconstruct(int(i)) for i in keep]) if len(keep) else None
        log.info("rebuilding the %s index without %d deleted vectors", self.factory, len(self._doomed))
        fresh = FaissStore(self.dim, self.factory)
        if vectors is not None:
            fresh.add(keep, vectors)
        self.index, self._doomed = fresh.index, set()

    def count(self) -> int:
        self._purge()
        return int(self.index.ntotal)

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (the caller makes the write atomic)."""
        self._purge()
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path) -> FaissStore:
        store = cls.__new__(cls)
        store._doomed = set()
        try:
            store.index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise MedRAGError(f"cannot read FAISS index {path}: {str(exc).splitlines()[0]}") from exc
        if not isinstance(store.index, faiss.IndexIDMap2):
            store.index = faiss.downcast_index(store.index)
        inner = faiss.downcast_index(store.index.index)
        store.factory = type(inner).__name__.removeprefix("Index")
        return store
