"""Sentence vectors of passages, made at ingest from the chunk's own forward pass ("late chunking").

The extractive answerer ranks a passage's sentences against the question. Embedding those sentences at
question time cost 98 % of an answer's time; instead each chunk's token embeddings, which the ingest computes
anyway, are mean-pooled over each sentence's character span and stored (float16) beside the chunk. On BioASQ
dev this kept summary ROUGE-2 (eval/reports/latency.md). An index built without them, or a sentence the
model's window cut off, is embedded on the spot, as before.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from medrag.generation.citations import clean_citations, sentence_spans

if TYPE_CHECKING:
    from medrag.documents import Chunk
    from medrag.embedding import Embedder
    from medrag.stores.chunks import ChunkStore

log = logging.getLogger(__name__)


class PassageSentences(NamedTuple):
    """A passage's sentences (source citation markers removed) and their unit vectors, one row each."""

    texts: list[str]
    vectors: np.ndarray


def sentences_of(chunk: Chunk) -> list[str]:
    """The sentences a passage is answered and checked with (``passage_sentences`` order)."""
    return [clean_citations(chunk.text[a:b], set())[0] for a, b in sentence_spans(chunk.text)]


def pool_spans(tokens: np.ndarray, offsets: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Unit mean vectors of the token rows whose characters lie inside each span; a zero row for a span with
    no token (the model's window ended before it). ``offsets``: ``(tokens, 2)`` character offsets, ``(0, 0)``
    for special tokens."""
    out = np.zeros((len(spans), tokens.shape[1]), dtype=np.float32)
    real = offsets[:, 1] > offsets[:, 0]
    for i, (a, b) in enumerate(spans):
        inside = real & (offsets[:, 0] >= a) & (offsets[:, 1] <= b)
        if inside.any():
            v = tokens[inside].mean(axis=0)
            out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
    return out


def late_vectors(embedder: Embedder, chunks: Sequence[Chunk], tokens: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each chunk's sentence vectors pooled from its token embeddings (rows of ``embedder``'s tokenisation of
    ``chunk.embed_text``); sentences past the model's window are embedded on their own, in one call."""
    out: list[np.ndarray] = []
    missing: list[tuple[int, int, str]] = []
    for c, (chunk, rows) in enumerate(zip(chunks, tokens)):
        embedded = embedder.document_prompt + chunk.embed_text  # the text the token rows came from
        shift = len(embedded) - len(chunk.text)  # the prompt, the title and its newline in front
        spans = [(a + shift, b + shift) for a, b in sentence_spans(chunk.text)]
        enc = embedder.tokenizer(embedded, return_offsets_mapping=True, truncation=True,
                                 max_length=embedder.max_seq_length)
        offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
        texts = sentences_of(chunk)
        if len(offsets) != len(rows):  # tokenised differently from the model's pass: embed the sentences alone
            log.debug("chunk %s: %d token rows, %d offsets", chunk.id, len(rows), len(offsets))
            spans = [(0, 0)] * len(spans)
            offsets = np.zeros((len(rows), 2), dtype=np.int64)
        vectors = pool_spans(np.asarray(rows, dtype=np.float32), offsets, spans)
        missing.extend((c, i, texts[i]) for i in np.flatnonzero(~vectors.any(axis=1)))
        out.append(vectors)
    if missing:
        for (c, i, _), v in zip(missing, embedder.embed_documents([t for _, _, t in missing])):
            out[c][i] = v
    return out


def embed_passages(embedder: Embedder, chunks: Sequence[Chunk], progress: bool = False,
                   group: int = 512) -> tuple[np.ndarray, list[np.ndarray]]:
    """The chunks' vectors (as ``embed_documents`` makes them) and their sentence vectors, from one forward
    pass: ``embedder.embed_tokens`` gives both, ``group`` texts at a time so token rows never pile up."""
    texts = [c.embed_text for c in chunks]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # length-homogeneous groups
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    sentences: list[np.ndarray] = [np.zeros((0, embedder.dim), dtype=np.float32)] * len(texts)
    for start in range(0, len(order), group):
        part = order[start:start + group]
        pooled, tokens = embedder.embed_tokens([texts[i] for i in part], progress)
        vectors[part] = pooled
        for i, v in zip(part, late_vectors(embedder, [chunks[i] for i in part], tokens)):
            sentences[i] = v
    return vectors, sentences


class SentenceVectors:
    """Passages' sentence vectors: stored ones from the index's chunk store, the rest embedded in one call."""

    def __init__(self, embedder: Embedder, store: ChunkStore | None = None) -> None:
        self.embedder = embedder
        self.store = store

    def of(self, passages: Sequence[Chunk]) -> list[PassageSentences]:
        """One ``PassageSentences`` per passage, in order (a widened passage's from its parts' stored rows)."""
        texts = [sentences_of(p) for p in passages]
        keys = [list(p.parts) or ([p.id] if p.id is not None else []) for p in passages]
        stored = self.store.sentence_vectors([i for k in keys for i in k], self.embedder.dim) \
            if self.store is not None else {}
        found: list[np.ndarray | None] = []
        for k, t in zip(keys, texts):
            rows = [stored.get(i) for i in k]
            v = np.concatenate(rows) if k and all(r is not None for r in rows) else None
            found.append(v if v is not None and len(v) == len(t) else None)
        todo = [i for i, v in enumerate(found) if v is None]
        if todo:  # an index built before sentence vectors were stored, or a passage not from the index
            log.debug("embedding the sentences of %d of %d passages", len(todo), len(passages))
            flat = self.embedder.embed_documents([s for i in todo for s in texts[i]])
            start = 0
            for i in todo:
                found[i], start = flat[start:start + len(texts[i])], start + len(texts[i])
        return [PassageSentences(t, v) for t, v in zip(texts, found)]


__all__ = ["PassageSentences", "SentenceVectors", "embed_passages", "late_vectors", "pool_spans", "sentences_of"]
