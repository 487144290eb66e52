"""Vector stores: a narrow protocol, backends chosen by name from a small registry."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from medrag.errors import MedRAGError
from medrag.stores.faiss import FaissStore


class VectorStore(Protocol):
    """What the pipeline needs of a vector index; ids are the chunk store's row ids.

    A backend is constructed as ``cls(dim, factory, **params)`` with the settings' query-time knobs.
    """

    factory: str
    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each ``(len(queries), k)``; missing hits have id -1."""
        ...

    def delete(self, ids: np.ndarray) -> int: ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path, factory: str | None = None, **params: int) -> VectorStore:
        """Read a saved index built as ``factory``; ``params`` are the query-time knobs (threads, nprobe...)."""
        ...

    def count(self) -> int: ...


STORES: dict[str, type] = {"faiss": FaissStore}


def store_class(name: str) -> type:
    """The vector-store backend registered under ``name``."""
    try:
        return STORES[name]
    except KeyError:
        raise MedRAGError(f"unknown vector store {name!r}; choose from {', '.join(STORES)}") from None


__all__ = ["STORES", "FaissStore", "VectorStore", "store_class"]
