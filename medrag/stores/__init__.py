"""Vector stores: a narrow protocol, backends chosen by name (``STORES``) or by ``package.module:Class``.

A backend is one module with a class that has ``Options`` (a pydantic model of its own settings, kept in
``settings.index.options``), ``suffix`` (its file ending in an index directory), ``create(dim, options,
threads)``, ``open(path, options, threads)`` and the methods of ``VectorStore``; adding one is that file
plus one line in ``STORES``. An index holds a backend's stores as segments (``medrag.stores.segments``); a
backend may add what makes them cheaper: ``mmaps`` (``open(..., mmap=True)``), ``merge`` (compaction),
``vectors()``, ``template()``/``from_template`` (types that train), ``to_bytes``/``open_bytes`` (encryption).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from medrag.registry import Registry

if TYPE_CHECKING:
    from medrag.stores.faiss_store import FaissStore


class VectorStore(Protocol):
    """What the pipeline needs of a vector index; ids are the chunk store's row ids. Searches may run
    from several threads at once; adds and deletes come from one thread while nothing searches."""

    dim: int
    suffix: str

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each ``(len(queries), k)``, best first; missing hits have id -1."""
        ...

    def delete(self, ids: np.ndarray) -> int: ...

    def save(self, path: Path) -> None:
        """Write to ``path`` (a file or a folder; the caller makes the write atomic)."""
        ...

    def count(self) -> int: ...


#: vector-store backends: name -> "module:Class"
STORES = Registry("store", {
    "faiss": "medrag.stores.faiss_store:FaissStore",
})


def __getattr__(name: str) -> Any:
    if name == "FaissStore":  # imported on use: FAISS is not loaded by `import medrag.stores`
        from medrag.stores.faiss_store import FaissStore

        return FaissStore
    raise AttributeError(f"module 'medrag.stores' has no attribute {name!r}")


__all__ = ["STORES", "FaissStore", "VectorStore"]
