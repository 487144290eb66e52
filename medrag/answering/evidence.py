"""Evidence: one search for a question, and its passages widened by their document neighbours.

One store call gives both the fused passages an answer is written from and the dense cosines abstention
weighs (``Retriever.find``). Each passage is then widened (small-to-big) with the chunks just before and
after it in its document, so a list is read with its lead-in and a "These ..." sentence with the one it refers
to; a widened passage's text is its parts' texts one per line (``Chunk.parts``), so its sentences are exactly
its parts' sentences and their stored vectors serve it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from medrag.documents import Chunk
from medrag.retrieval import Hit

if TYPE_CHECKING:
    from medrag.pipeline import MedRAG

log = logging.getLogger(__name__)

WIDEN = 1  # chunks read on each side of a retrieved one


@dataclass(frozen=True)
class Evidence:
    """What an answer is written from: ``hits`` (fused, best first), ``passages`` (the hits' chunks, widened),
    and ``dense`` (the best dense hits, by cosine, for abstention)."""

    hits: list[Hit]
    passages: list[Chunk]
    dense: list[Hit]


def widen(chunks: list[Chunk], neighbours: dict[int, list[Chunk]]) -> list[Chunk]:
    """Each chunk with its neighbours' texts around it (one per line); a chunk with none stays as it is."""
    out = []
    for chunk in chunks:
        around = neighbours.get(chunk.id) if chunk.id is not None else None
        if not around or len(around) < 2:
            out.append(chunk)
            continue
        out.append(replace(chunk, text="\n".join(c.text for c in around), parts=tuple(int(c.id) for c in around)))
    return out


def gather(rag: MedRAG, query: str, vector: np.ndarray, k: int | None = None, where: object = None,
           retriever: str | None = None, dense_k: int = 5, expand: bool = True) -> Evidence:
    """The evidence for ``query`` (embedded as ``vector``, shape ``(1, dim)``) from one search."""
    found = rag.find(query, k, where=where, retriever=retriever, query_vectors=vector, dense_k=dense_k)
    chunks = [h.chunk for h in found.hits]
    passages = widen(chunks, rag.chunks.neighbours(chunks, WIDEN, WIDEN)) if expand and chunks else chunks
    return Evidence(found.hits, passages, found.dense)


__all__ = ["WIDEN", "Evidence", "gather", "widen"]
