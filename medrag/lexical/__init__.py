"""Lexical stores: BM25-style indexes over chunk texts, beside the vectors; backends by name (``LEXICAL``) or
``package.module:Class``.

A backend is one module with a class that has ``Options`` (kept in ``settings.lexical.options``), ``suffix``,
``create(options)``, ``open(path, options)`` and the methods of ``LexicalStore``.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from medrag.errors import MedRAGError
from medrag.registry import Registry

if TYPE_CHECKING:
    from medrag.lexical.bm25s_store import BM25Store


class LexicalStore(Protocol):
    """What retrieval and abstention need of a lexical index; ids are the chunk store's row ids."""

    suffix: str

    def add(self, ids: np.ndarray, texts: Sequence[str]) -> None: ...

    def delete(self, ids: np.ndarray) -> int: ...

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each ``(len(queries), k)``, best first; missing hits have id -1."""
        ...

    def coverage(self, query: str, ids: Sequence[int]) -> float | None:
        """IDF-weighted share of the query's terms found in the texts under ``ids`` (abstention)."""
        ...

    def idf(self, word: str) -> float | None:
        """The IDF of a word in this index, None when no text holds it (query translation's sense choice)."""
        ...

    def count(self) -> int: ...

    def save(self, path: Path) -> None: ...


def read_meta(path: Path, name: str, what: str, version: int) -> dict[str, Any]:
    """A saved lexical store's JSON metadata file ``path/name``, checked for ``version``; a clear error if not."""
    try:
        meta = json.loads((path / name).read_text())
    except (OSError, ValueError) as exc:
        raise MedRAGError(f"{path} holds no readable {what} ({name}): {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != version:
        raise MedRAGError(f"{what} {path} has format {meta.get('format') if isinstance(meta, dict) else None}, "
                          f"this medrag reads {version}")
    return meta


#: the error of an ``add`` whose ids are negative, repeated, or already stored
NOT_NEW = "{what} ids must be new and >= 0: delete a chunk before adding it again"


def new_ids(ids: np.ndarray, texts: Sequence[str], what: str) -> np.ndarray:
    """``ids`` as a flat int64 array, checked for an ``add`` of ``texts``: one per text, >= 0, distinct (whether
    the store already holds them is the store's to check, with ``NOT_NEW``)."""
    ids = np.asarray(ids, dtype=np.int64).ravel()
    if len(ids) != len(texts):
        raise MedRAGError(f"{len(ids)} ids for {len(texts)} texts")
    if (ids < 0).any() or len(np.unique(ids)) != len(ids):
        raise MedRAGError(NOT_NEW.format(what=what))
    return ids


def lucene_idf(n: int, df: int) -> float:
    """Lucene's BM25 IDF of a term found in ``df`` of ``n`` texts: ``log(1 + (n - df + 0.5) / (df + 0.5))``."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


#: lexical backends: name -> "module:Class"
LEXICAL = Registry("lexical", {
    "bm25s": "medrag.lexical.bm25s_store:BM25Store",
    "tantivy": "medrag.lexical.tantivy_store:TantivyStore",
})


def __getattr__(name: str) -> Any:
    if name in ("BM25Store", "QUESTION_WORDS", "METHODS"):  # bm25s loads on use
        from medrag.lexical import bm25s_store

        return getattr(bm25s_store, name)
    raise AttributeError(f"module 'medrag.lexical' has no attribute {name!r}")


__all__ = ["LEXICAL", "BM25Store", "LexicalStore", "lucene_idf"]
