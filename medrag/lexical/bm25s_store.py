"""The ``bm25s`` lexical backend: BM25 over chunk texts (bm25s + PyStemmer); ids = the chunk store's row ids.

``BM25Store`` has the vector stores' shape (``add / search / delete / save / load / count``) over texts.
bm25s indexes are static, so the store keeps every document's stemmed tokens (as ids into its vocabulary)
and rebuilds the bm25s index lazily, at the first search or save after an ``add`` or ``delete``.

On disk a store is a directory: bm25s's own files (``params.index.json``, ``vocab.index.json``,
``data/indices/indptr.csc.index.npy`` and, for BM25L/BM25+, ``nonoccurrence_array.index.npy``), our
``ids.npy``, ``lengths.npy`` and ``tokens.npy``, and ``bm25.json`` (written last). JSON and ``.npy``
only; every array is read with ``allow_pickle=False``, so a pickled file is refused, never unpickled.
"""
from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from medrag.errors import MedRAGError
from medrag.lexical import NOT_NEW, lucene_idf, new_ids, read_meta
from medrag.lexical.analysis import QUESTION_WORDS, question_stems, tokenize  # noqa: F401 (QUESTION_WORDS: re-exported)
from medrag.lexical.analysis import stemmer as make_stemmer

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its own logger to DEBUG

META = "bm25.json"
ARRAYS = {"ids": np.int64, "lengths": np.int64, "tokens": np.int32}
SCORE_ARRAYS = ("data", "indices", "indptr")  # bm25s's sparse score matrix
FORMAT_VERSION = 1
METHODS = ("lucene", "robertson", "atire", "bm25l", "bm25+")


class BM25Options(BaseModel):
    """The bm25s backend's options (build-time: the index is built with them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str = Field("lucene", description="bm25s variant: " + ", ".join(METHODS))
    k1: float = 1.5
    b: float = 0.75


class BM25Store:
    """A BM25 index over chunk texts: English stop words removed, Snowball stemming, ranked by bm25s.

    ``method`` is bm25s's variant (``lucene`` default, ``robertson``, ``atire``, ``bm25l``, ``bm25+``;
    ``delta`` only matters for the last two). Searching runs in the calling thread, one query after another.
    """

    def __init__(self, *, k1: float = 1.5, b: float = 0.75, method: str = "lucene", delta: float = 0.5,
                 stopwords: str | Sequence[str] | None = "en", stemmer: str | None = "english") -> None:
        if method not in METHODS:
            raise MedRAGError(f"unknown BM25 method {method!r}; choose from {', '.join(METHODS)}")
        if k1 < 0 or not 0 <= b <= 1 or delta < 0:
            raise MedRAGError(f"BM25 needs k1 >= 0, 0 <= b <= 1 and delta >= 0, not k1={k1}, b={b}, delta={delta}")
        self._stemmer = make_stemmer(stemmer)
        self.k1, self.b, self.method, self.delta = float(k1), float(b), method, float(delta)
        self.stopwords = stopwords if stopwords is None or isinstance(stopwords, str) else tuple(stopwords)
        self.stemmer = stemmer
        self._stems: list[str] = []  # token id -> stem
        self._vocab: dict[str, int] = {}  # stem -> token id
        self._ids = np.empty(0, np.int64)  # per document, in bm25s's document order
        self._lengths = np.empty(0, np.int64)  # tokens per document
        self._tokens = np.empty(0, np.int32)  # all documents' token ids, concatenated
        self._bm25: bm25s.BM25 | None = None
        self._starts = np.zeros(1, np.int64)  # document row -> offset of its tokens (one more: the end)
        self._rows: dict[int, int] = {}  # chunk id -> document row
        self._question_stems = question_stems(self._stemmer)
        self._dirty = False
        self._mapped: Path | None = None  # the directory a memory-mapped store reads from
        self.rebuild_seconds = 0.0  # time the last rebuild took

    Options = BM25Options
    suffix = "bm25"  # the folder name's ending in an index directory

    @classmethod
    def create(cls, options: BM25Options) -> BM25Store:
        """An empty store."""
        return cls(k1=options.k1, b=options.b, method=options.method)

    @classmethod
    def open(cls, path: Path, options: BM25Options | None = None) -> BM25Store:
        """A saved store, memory-mapped (its pages, not process memory); it keeps the options it was built with."""
        return cls.load(path, mmap=True)

    @property
    def params(self) -> dict[str, Any]:
        """What the index was built with (saved in ``bm25.json``)."""
        return {"k1": self.k1, "b": self.b, "method": self.method, "delta": self.delta,
                "stopwords": list(self.stopwords) if isinstance(self.stopwords, tuple) else self.stopwords,
                "stemmer": self.stemmer}

    def _tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[str]]:
        """Per text its token ids into a local vocabulary, and that vocabulary (id -> stem)."""
        tok = tokenize(texts, self.stopwords, self._stemmer, ids=True)
        local = [""] * len(tok.vocab)
        for stem, i in tok.vocab.items():
            local[i] = stem
        return tok.ids, local

    def _query_stems(self, queries: Sequence[str]) -> list[list[str]]:
        """Each query's stems, analysed as the texts are."""
        return tokenize(queries, self.stopwords, self._stemmer)

    def _index_rows(self) -> None:
        """Document offsets and the id -> row map, for ``coverage`` in time proportional to its ``ids``."""
        self._starts = np.concatenate([[0], np.cumsum(self._lengths)]).astype(np.int64)
        self._rows = {int(i): r for r, i in enumerate(self._ids.tolist())}

    def add(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        """Index ``texts`` under ``ids`` (not yet in the store); the index is rebuilt at the next search."""
        ids = new_ids(ids, texts, "BM25")
        if len(ids) == 0:
            return
        if np.isin(ids, self._ids).any():
            raise MedRAGError(NOT_NEW.format(what="BM25"))
        docs, local = self._tokenize(texts)
        for stem in sorted(set(local) - self._vocab.keys()):  # sorted: the same ids on every run
            self._vocab[stem] = len(self._stems)
            self._stems.append(stem)
        remap = np.fromiter((self._vocab[s] for s in local), np.int32, len(local))
        flat = np.fromiter(chain.from_iterable(docs), np.int32, sum(map(len, docs)))
        self._ids = np.concatenate([self._ids, ids])
        self._lengths = np.concatenate([self._lengths, np.fromiter(map(len, docs), np.int64, len(docs))])
        self._tokens = np.concatenate([self._tokens, remap[flat]])
        self._dirty = True

    def delete(self, ids: np.ndarray) -> int:
        """Remove ``ids``; the number removed (ids not in the store are ignored)."""
        keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64).ravel())
        removed = int(len(keep) - keep.sum())
        if removed:
            self._tokens = self._tokens[np.repeat(keep, self._lengths)]
            self._ids, self._lengths = self._ids[keep], self._lengths[keep]
            self._dirty = True
        return removed

    def count(self) -> int:
        return len(self._ids)

    def _rebuild(self) -> None:
        """Compact the vocabulary to the stems still used and build a fresh bm25s index."""
        start = time.perf_counter()
        used, inverse = np.unique(self._tokens, return_inverse=True)
        self._stems = [self._stems[i] for i in used.tolist()]
        self._vocab = {s: i for i, s in enumerate(self._stems)}
        self._tokens = inverse.astype(np.int32).ravel()
        self._bm25 = None
        if len(self._ids) and len(self._stems):
            flat, ends = self._tokens.tolist(), np.cumsum(self._lengths).tolist()
            docs = [flat[s:e] for s, e in zip([0, *ends[:-1]], ends)]
            bm25 = bm25s.BM25(k1=self.k1, b=self.b, delta=self.delta, method=self.method,
                              backend="numpy", csc_backend="numpy")
            bm25.index((docs, dict(self._vocab)), create_empty_token=False, show_progress=False)
            self._bm25 = bm25
        self._index_rows()
        self._dirty = False
        self.rebuild_seconds = time.perf_counter() - start
        log.info("built BM25 index of %d texts, %d stems in %.2f s", len(self._ids), len(self._stems),
                 self.rebuild_seconds)

    def _ensure_index(self) -> None:
        if self._dirty:
            self._rebuild()

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each ``(len(queries), k)``, best first; only texts sharing a stem with the
        query are hits, the rest of a row is id -1 (score 0). Equal scores rank the smaller id first."""
        n, k = len(queries), max(int(k), 0)
        scores, out = np.zeros((n, k), np.float32), np.full((n, k), -1, np.int64)
        self._ensure_index()
        if self._bm25 is None or k == 0 or n == 0:
            return scores, out
        tokenized = self._query_stems(queries)
        indptr, indices = self._bm25.scores["indptr"], self._bm25.scores["indices"]
        for row, stems in enumerate(tokenized):
            query = np.array([self._vocab[s] for s in stems if s in self._vocab], dtype=np.int32)
            if not len(query):
                continue
            docs = np.unique(np.concatenate([indices[indptr[t]:indptr[t + 1]] for t in np.unique(query)]))
            found = self._bm25.get_scores_from_ids(query)[docs]
            if len(docs) > k:  # keep the top k plus anything tied with the k-th, then order exactly
                keep = found >= np.partition(found, len(found) - k)[len(found) - k]
                docs, found = docs[keep], found[keep]
            order = np.lexsort((self._ids[docs], -found))[:k]
            scores[row, :len(order)], out[row, :len(order)] = found[order], self._ids[docs[order]]
        return scores, out

    def coverage(self, query: str, ids: Sequence[int]) -> float | None:
        """IDF-weighted share of ``query``'s stems found in the texts stored under ``ids``; None when the
        query has no stem (only stop words). A stem the index has never seen weighs most and is never found:
        a question about a topic absent from the index (a rare disease's name) covers little of itself."""
        self._ensure_index()
        stems = set(self._query_stems([query])[0]) - self._question_stems
        if not stems:
            return None
        idf = {s: lucene_idf(len(self._ids), self._df(s)) for s in stems}
        rows = [self._rows[i] for i in map(int, ids) if i in self._rows]
        found = {self._stems[t] for r in rows for t in np.unique(self._tokens[self._starts[r]:self._starts[r + 1]])}
        return sum(idf[s] for s in stems & found) / sum(idf.values())

    def idf(self, word: str) -> float | None:
        """The IDF of ``word``'s stem in this index (None when no text holds it, or it is a stop word)."""
        self._ensure_index()
        stems = self._query_stems([word])[0]
        df = self._df(stems[0]) if stems else 0
        return lucene_idf(len(self._ids), df) if df else None

    def _df(self, stem: str) -> int:
        """How many stored texts hold ``stem`` (its posting list's length; 0 for a stem never seen)."""
        if self._bm25 is None or stem not in self._vocab:
            return 0
        indptr, t = self._bm25.scores["indptr"], self._vocab[stem]
        return int(indptr[t + 1] - indptr[t])

    def _meta(self) -> dict[str, Any]:
        """What ``bm25.json`` holds: the format, the counts and the parameters."""
        return {"format": FORMAT_VERSION, "count": self.count(), "stems": len(self._stems),
                "indexed": self._bm25 is not None, "bm25s": bm25s.__version__, **self.params}

    def save(self, path: Path) -> None:
        """Write the store into the directory ``path`` (created; the caller makes the save atomic)."""
        self._ensure_index()
        path = Path(path)
        if self._mapped is not None and path.resolve() == self._mapped:
            raise MedRAGError(f"cannot save a memory-mapped BM25 index over the files it maps ({path})")
        path.mkdir(parents=True, exist_ok=True)
        if self._bm25 is not None:
            self._bm25.save(path, corpus=None, allow_pickle=False, show_progress=False)
        for name in ARRAYS:
            np.save(path / f"{name}.npy", getattr(self, f"_{name}"), allow_pickle=False)
        (path / META).write_text(json.dumps(self._meta(), indent=2) + "\n")

    def to_bytes(self) -> memoryview:
        """The whole store as one uncompressed ``.npz`` built in memory (no file, no pickle): our arrays, bm25s's
        score matrix and, as JSON bytes, ``bm25.json``'s fields with bm25s's parameters and vocabulary."""
        self._ensure_index()
        arrays = {name: getattr(self, f"_{name}") for name in ARRAYS}
        meta = self._meta()
        if self._bm25 is not None:
            bm25 = self._bm25
            arrays.update({f"scores_{name}": bm25.scores[name] for name in SCORE_ARRAYS})
            if bm25.nonoccurrence_array is not None:
                arrays["nonoccurrence"] = bm25.nonoccurrence_array
            meta["bm25_params"] = {"k1": bm25.k1, "b": bm25.b, "delta": bm25.delta, "method": bm25.method,
                                   "idf_method": bm25.idf_method, "dtype": bm25.dtype, "int_dtype": bm25.int_dtype,
                                   "num_docs": int(bm25.scores["num_docs"]), "version": bm25s.__version__,
                                   "backend": bm25.backend}
            meta["vocab"] = bm25.vocab_dict
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), np.uint8),
                 **arrays)
        return buffer.getbuffer()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, what: str = "BM25 index") -> BM25Store:
        """A store in memory from ``to_bytes``'s output."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as packed:
                arrays = {name: packed[name] for name in packed.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise MedRAGError(f"cannot read {what}: {exc}") from exc
        bm25 = None
        if isinstance(meta, dict) and meta.get("indexed"):
            try:
                params = dict(meta["bm25_params"])
                version, num_docs = params.pop("version", None), params.pop("num_docs")
                bm25 = bm25s.BM25(**params)  # as bm25s.BM25.load builds it from its files
                bm25.vocab_dict = dict(meta["vocab"])
                bm25._original_version = version
                bm25.unique_token_ids_set = set(bm25.vocab_dict.values())
                bm25.scores = {**{name: arrays.pop(f"scores_{name}") for name in SCORE_ARRAYS}, "num_docs": num_docs}
                bm25.nonoccurrence_array = (arrays.pop("nonoccurrence")
                                            if bm25.method in bm25.methods_requiring_nonoccurrence else None)
            except (KeyError, TypeError, ValueError) as exc:
                raise MedRAGError(f"corrupt {what}: {exc}") from exc
        return cls._assemble(meta, arrays, bm25, what, mmap=False)

    @classmethod
    def open_bytes(cls, data: bytes | bytearray | memoryview, options: BM25Options | None = None,
                   what: str = "BM25 index") -> BM25Store:
        """``open`` from ``to_bytes``'s output (an encrypted index's decrypted lexical part); it keeps the
        options it was built with."""
        return cls.from_bytes(data, what)

    @classmethod
    def load(cls, path: Path, *, mmap: bool = False) -> BM25Store:
        """Open a saved store; ``mmap`` maps the arrays read-only instead of reading them into memory."""
        path = Path(path)
        meta = read_meta(path, META, "BM25 index", FORMAT_VERSION)
        try:
            arrays = {name: np.load(path / f"{name}.npy", allow_pickle=False, mmap_mode="r" if mmap else None)
                      for name in ARRAYS}
            bm25 = bm25s.BM25.load(path, mmap=mmap, allow_pickle=False, load_corpus=False, load_vocab=True,
                                   show_progress=False, backend="numpy") if meta.get("indexed") else None
        except (OSError, ValueError, TypeError) as exc:
            raise MedRAGError(f"cannot read BM25 index {path}: {exc}") from exc
        store = cls._assemble(meta, arrays, bm25, f"BM25 index {path}", mmap=mmap)
        store._mapped = path.resolve() if mmap else None
        return store

    @classmethod
    def _assemble(cls, meta: Any, arrays: dict[str, np.ndarray], bm25: bm25s.BM25 | None, what: str, *,
                  mmap: bool) -> BM25Store:
        """A store from its saved parts, checked to agree with each other."""
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            raise MedRAGError(f"{what} has format {meta.get('format') if isinstance(meta, dict) else None}, "
                              f"this medrag reads {FORMAT_VERSION}")
        params = {key: meta.get(key) for key in ("k1", "b", "method", "delta", "stopwords", "stemmer")}
        store = cls(**params)
        for name, dtype in ARRAYS.items():
            if name not in arrays or arrays[name].dtype != dtype or arrays[name].ndim != 1:
                found = f"{arrays[name].dtype} {arrays[name].shape}" if name in arrays else "nothing"
                raise MedRAGError(f"corrupt {what}: {name}.npy holds {found}, not a vector of {np.dtype(dtype)}")
        store._ids, store._lengths, store._tokens = arrays["ids"], arrays["lengths"], arrays["tokens"]
        store._index_rows()
        if bm25 is not None:
            vocab = bm25.vocab_dict
            store._stems = sorted(vocab, key=vocab.__getitem__)
            store._vocab = {s: i for i, s in enumerate(store._stems)}
            store._bm25 = bm25
        consistent = (len(store._ids) == len(store._lengths) == meta.get("count")
                      and int(store._lengths.sum()) == len(store._tokens)
                      and store._vocab == (bm25.vocab_dict if bm25 is not None else {})
                      and (bm25 is None or (bm25.scores["num_docs"] == len(store._ids)
                                            and len(bm25.scores["indptr"]) == len(store._stems) + 1))
                      # a mapped store is not scanned (it would read every page); its matrix was checked above
                      and (mmap or not len(store._tokens)
                           or 0 <= int(store._tokens.min()) <= int(store._tokens.max()) < len(store._stems)))
        if not consistent:
            raise MedRAGError(f"corrupt {what}: its files do not agree with each other")
        return store
