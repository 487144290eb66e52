"""The ``tantivy`` lexical backend: BM25 in tantivy (Rust; block-max WAND, segments on disk, memory-mapped).

The texts are analysed exactly as the ``bm25s`` backend analyses them (``medrag.lexical.analysis``: lower case,
``\\w\\w+`` tokens, English stop words, Snowball stems) and handed to tantivy as space-separated stems under
its ``whitespace`` tokenizer, so both backends search the same terms. Each document is its stems (term
frequencies and field norms, no positions) and its chunk id, an indexed u64 fast field: deletes are by id
term, hits map to ids through the fast field. tantivy scores BM25 with its fixed k1 = 1.2, b = 0.75 (the
bm25s store's default k1 is 1.5: the same terms, ranks that differ a little); its IDF is Lucene's.

A store works in a private directory (``tempfile``, so ``$TMPDIR``): writes are buffered by tantivy's
writer and committed at the next search, ``coverage``, ``idf`` or ``save``. ``save(path)`` commits, waits
for merges, then hard-links the immutable segment files into ``path`` (copying when links fail, e.g. across
file systems) and copies ``meta.json``; our ``tantivy.json`` is written last. ``open(path)`` maps a saved
directory read-only; the first write after it links that directory's files into a working directory, so
a saved generation is never changed. tantivy's files cannot live in an encrypted index (no in-memory
form): ``supports_bytes`` is False and the store has no ``to_bytes``/``open_bytes``.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import weakref
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import tantivy
from pydantic import BaseModel, ConfigDict, Field, model_validator

from medrag.errors import MedRAGError
from medrag.fileio import link_or_copy
from medrag.lexical import NOT_NEW, lucene_idf, new_ids, read_meta
from medrag.lexical.analysis import question_stems, tokenize
from medrag.lexical.analysis import stemmer as make_stemmer

log = logging.getLogger(__name__)

META = "tantivy.json"  # ours, written last
TANTIVY_META = "meta.json"  # tantivy's list of segments
MANAGED = ".managed.json"  # tantivy's list of the files it may garbage-collect
FORMAT_VERSION = 1
TEXT, ID = "text", "id"
K1, B = 1.2, 0.75  # tantivy's BM25 constants
COMMIT_EVERY = 200_000  # pending adds and deletes kept before a commit (their ids are held in sets)
#: the bm25s backend's defaults, carried over when only ``lexical.backend`` changes: ignored here
_BM25S_DEFAULTS = {"method": "lucene", "k1": 1.5, "b": 0.75}


class TantivyOptions(BaseModel):
    """The tantivy backend's options: how the writer and searches use memory and threads (not what is indexed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    heap_mb: int = Field(128, ge=15, description="the index writer's memory budget in MB (at least 15 per thread); "
                                                 "a segment is flushed when it fills")
    writer_threads: int = Field(1, ge=1, le=64, description="threads indexing documents")
    search_threads: int = Field(1, ge=1, le=64, description="queries of one batch searched at once")

    @model_validator(mode="before")
    @classmethod
    def _bm25s_defaults(cls, data: Any) -> Any:
        """Drop the bm25s backend's default options (settings switched to tantivy keep them); refuse others."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, default in _BM25S_DEFAULTS.items():
            if name in data:
                if data[name] != default:
                    raise ValueError(f"{name}={data[name]!r}: method, k1 and b are the bm25s backend's options; tantivy scores BM25 "
                                     f"with fixed k1={K1}, b={B}")
                del data[name]
        return data

    @model_validator(mode="after")
    def _heap(self) -> TantivyOptions:
        if self.heap_mb < 15 * self.writer_threads:
            raise ValueError(f"heap_mb={self.heap_mb} is under 15 MB per writer thread ({self.writer_threads})")
        return self


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field(TEXT, stored=False, tokenizer_name="whitespace", index_option="freq")
    builder.add_unsigned_field(ID, stored=False, indexed=True, fast=True)
    return builder.build()


def _segment_files(directory: Path) -> list[Path]:
    """The files of the segments ``directory``'s ``meta.json`` names (its committed index, nothing else)."""
    try:
        meta = json.loads((directory / TANTIVY_META).read_text())
        segments = {str(s["segment_id"]).replace("-", "") for s in meta["segments"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MedRAGError(f"cannot read the tantivy index in {directory}: {exc}") from exc
    return sorted(p for p in directory.iterdir() if p.name.split(".")[0] in segments)


def _copy_index(source: Path, target: Path) -> int:
    """Put ``source``'s committed index into the directory ``target``: segment files linked, metadata copied;
    the bytes placed."""
    target.mkdir(parents=True, exist_ok=True)
    size = 0
    for path in _segment_files(source):
        link_or_copy(path, target / path.name)
        size += path.stat().st_size
    for name in (MANAGED, TANTIVY_META):  # meta.json last: it makes the segments an index
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    return size


class TantivyStore:
    """A BM25 index over chunk texts in tantivy: analysis as the bm25s store's, ids in a u64 fast field."""

    Options = TantivyOptions
    suffix = "tantivy"  # the folder name's ending in an index directory
    supports_bytes = False  # no in-memory form: an encrypted index cannot hold it

    def __init__(self, options: TantivyOptions | None = None, *, stopwords: str | Sequence[str] | None = "en",
                 stemmer: str | None = "english") -> None:
        self.options = options or TantivyOptions()
        self.stopwords = stopwords if stopwords is None or isinstance(stopwords, str) else tuple(stopwords)
        self.stemmer = stemmer
        self._stem = make_stemmer(stemmer)
        self._question_stems = question_stems(self._stem)
        self._schema = _schema()
        self._lock = threading.RLock()  # writes, commits and reloads; searches run on a searcher snapshot
        self._index: tantivy.Index | None = None
        self._writer: Any = None  # tantivy.IndexWriter, made at the first write
        self._source: Path | None = None  # the saved directory an opened store maps (never written)
        self._workdir: Path | None = None  # this store's own directory, made at its first write
        self._cleanup: weakref.finalize | None = None
        self._added: set[int] = set()  # ids added since the last commit
        self._deleted: set[int] = set()  # committed ids deleted since the last commit
        self._count = 0
        self._dirty = False

    # -- life -----------------------------------------------------------------------------------------
    @classmethod
    def create(cls, options: TantivyOptions | None = None) -> TantivyStore:
        """An empty store (in a new working directory)."""
        store = cls(options)
        store._make_workdir()
        return store

    @classmethod
    def open(cls, path: Path, options: TantivyOptions | None = None) -> TantivyStore:
        """A saved store, memory-mapped where it lies; it keeps the analysis it was built with."""
        path = Path(path)
        meta = read_meta(path, META, "tantivy index", FORMAT_VERSION)
        store = cls(options, stopwords=meta.get("stopwords"), stemmer=meta.get("stemmer"))
        try:
            index = tantivy.Index.open(str(path))
        except (OSError, ValueError, RuntimeError) as exc:
            raise MedRAGError(f"cannot open tantivy index {path}: {exc}") from exc
        store._use(index)
        store._source = path
        store._count = index.searcher().num_docs
        if store._count != meta.get("count"):
            raise MedRAGError(f"corrupt tantivy index {path}: {store._count} documents, {META} says {meta.get('count')}")
        return store

    def _use(self, index: tantivy.Index) -> None:
        index.config_reader("manual", 0)  # reloaded after our own commits only
        self._index = index

    def _make_workdir(self) -> None:
        """This store's own directory: a new index, or a link of the opened one's files."""
        workdir = Path(tempfile.mkdtemp(prefix="medrag-tantivy-"))
        cleanup = weakref.finalize(self, shutil.rmtree, workdir, True)
        try:
            if self._source is not None:
                _copy_index(self._source, workdir)
                index = tantivy.Index.open(str(workdir))
            else:
                index = tantivy.Index(self._schema, path=str(workdir))
        except (OSError, ValueError, RuntimeError) as exc:
            cleanup()
            raise MedRAGError(f"cannot make a tantivy working directory in {workdir.parent}: {exc}") from exc
        self._use(index)
        self._workdir, self._cleanup = workdir, cleanup

    def _writable(self) -> Any:
        """The index writer (an opened store first moves to a working directory of its own)."""
        if self._workdir is None:
            self._make_workdir()
        if self._writer is None:
            assert self._index is not None
            self._writer = self._index.writer(heap_size=self.options.heap_mb * 1_000_000,
                                              num_threads=self.options.writer_threads)
        return self._writer

    def close(self) -> None:
        """Drop the writer and remove the working directory (a saved copy stays where it was saved)."""
        with self._lock:
            self._writer = self._index = None
            if self._cleanup is not None:
                self._cleanup()

    # -- writes ---------------------------------------------------------------------------------------
    def _present(self, ids: np.ndarray) -> set[int]:
        """Which of ``ids`` the store holds now (committed and not deleted since, or added since)."""
        wanted = set(ids.tolist())
        held = self._added & wanted
        if self._index is not None and len(ids):
            searcher = self._index.searcher()
            if searcher.num_docs:
                found = searcher.search(tantivy.Query.term_set_query(self._schema, ID, sorted(wanted)),
                                        len(wanted), count=False).hits
                committed = searcher.fast_field_values(ID, [address for _, address in found])
                held |= {int(i) for i in committed} - self._deleted
        return held

    def add(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        """Index ``texts`` under ``ids`` (not yet in the store); searchable from the next search on."""
        ids = new_ids(ids, texts, "lexical")
        if len(ids) == 0:
            return
        stems = tokenize(texts, self.stopwords, self._stem)
        with self._lock:
            if self._present(ids):
                raise MedRAGError(NOT_NEW.format(what="lexical"))
            writer = self._writable()
            for chunk_id, words in zip(ids.tolist(), stems):
                doc = tantivy.Document()
                doc.add_unsigned(ID, chunk_id)
                doc.add_text(TEXT, " ".join(words))
                writer.add_document(doc)
            self._added.update(ids.tolist())
            self._count += len(ids)
            self._dirty = True
            if len(self._added) + len(self._deleted) >= COMMIT_EVERY:
                self._commit()

    def delete(self, ids: np.ndarray) -> int:
        """Remove ``ids``; the number removed (ids not in the store are ignored)."""
        ids = np.unique(np.asarray(ids, dtype=np.int64).ravel())
        ids = ids[ids >= 0]
        with self._lock:
            present = self._present(ids)
            if not present:
                return 0
            self._writable().delete_documents_by_query(
                tantivy.Query.term_set_query(self._schema, ID, sorted(present)))
            self._deleted |= present - self._added
            self._added -= present
            self._count -= len(present)
            self._dirty = True
            return len(present)

    def count(self) -> int:
        return self._count

    def _commit(self) -> None:
        """Make pending adds and deletes searchable."""
        if self._dirty:
            self._writer.commit()
            self._index.reload()
            self._added.clear()
            self._deleted.clear()
            self._dirty = False

    def _searcher(self) -> tantivy.Searcher | None:
        """A searcher over every add and delete so far (None: no index)."""
        with self._lock:
            self._commit()
            return self._index.searcher() if self._index is not None else None

    # -- reads ----------------------------------------------------------------------------------------
    def _query(self, stems: list[str]) -> tantivy.Query | None:
        """A disjunction of the stems' term queries, a repeated stem weighted by its count (as bm25s sums it)."""
        if not stems:
            return None
        clauses = []
        for stem, times in Counter(stems).items():
            term = tantivy.Query.term_query(self._schema, TEXT, stem)
            clauses.append((tantivy.Occur.Should, term if times == 1 else tantivy.Query.boost_query(term, times)))
        return tantivy.Query.boolean_query(clauses)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each ``(len(queries), k)``, best first; only texts sharing a stem with the
        query are hits, the rest of a row is id -1 (score 0). Equal scores list the smaller id first."""
        n, k = len(queries), max(int(k), 0)
        scores, out = np.zeros((n, k), np.float32), np.full((n, k), -1, np.int64)
        searcher = self._searcher()
        if searcher is None or k == 0 or n == 0 or not searcher.num_docs:
            return scores, out
        built = [self._query(stems) for stems in tokenize(queries, self.stopwords, self._stem)]

        def one(row: int) -> None:
            if built[row] is None:
                return
            hits = searcher.search(built[row], k, count=False).hits
            if not hits:
                return
            found = np.array([s for s, _ in hits], np.float32)
            ids = np.array(searcher.fast_field_values(ID, [a for _, a in hits]), np.int64)
            order = np.lexsort((ids, -found))
            scores[row, :len(order)], out[row, :len(order)] = found[order], ids[order]

        threads = min(self.options.search_threads, n)
        if threads > 1:
            with ThreadPoolExecutor(threads, thread_name_prefix="medrag-tantivy") as pool:
                list(pool.map(one, range(n)))
        else:
            for row in range(n):
                one(row)
        return scores, out

    def _df(self, searcher: tantivy.Searcher, stem: str) -> int:
        """How many texts hold ``stem`` (tantivy's document frequency: like Lucene's, it counts deleted
        texts until their segment is merged; capped at the store's count)."""
        return min(searcher.doc_freq(TEXT, stem), searcher.num_docs)

    def coverage(self, query: str, ids: Sequence[int]) -> float | None:
        """IDF-weighted share of ``query``'s stems found in the texts stored under ``ids``; None when the
        query has no stem (only stop words). A stem the index has never seen weighs most and is never found."""
        stems = set(tokenize([query], self.stopwords, self._stem)[0]) - self._question_stems
        if not stems:
            return None
        searcher = self._searcher()
        if searcher is None:
            return 0.0
        n = searcher.num_docs
        idf = {s: lucene_idf(n, self._df(searcher, s)) for s in stems}
        wanted = sorted({int(i) for i in ids if int(i) >= 0})
        found = set()
        if wanted and n:
            among = tantivy.Query.term_set_query(self._schema, ID, wanted)
            for stem in stems:
                both = tantivy.Query.boolean_query([(tantivy.Occur.Must, among), (tantivy.Occur.Must,
                                                    tantivy.Query.term_query(self._schema, TEXT, stem))])
                if searcher.search(both, 1, count=False).hits:
                    found.add(stem)
        return sum(idf[s] for s in found) / sum(idf.values())

    def idf(self, word: str) -> float | None:
        """The IDF of ``word``'s stem in this index (None when no text holds it, or it is a stop word)."""
        stems = tokenize([word], self.stopwords, self._stem)[0]
        searcher = self._searcher()
        df = self._df(searcher, stems[0]) if stems and searcher is not None else 0
        return lucene_idf(searcher.num_docs, df) if df else None

    # -- persistence ----------------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        """What the index was built with (saved in ``tantivy.json``)."""
        return {"stopwords": list(self.stopwords) if isinstance(self.stopwords, tuple) else self.stopwords,
                "stemmer": self.stemmer, "k1": K1, "b": B}

    def save(self, path: Path) -> None:
        """Write the store into the directory ``path`` (created; the caller makes the save atomic): the
        committed segments hard-linked (copied where links fail), ``meta.json`` copied, ``tantivy.json`` last."""
        path = Path(path)
        with self._lock:
            if self._workdir is None:  # the opened directory may be removed after this save: own the files
                self._make_workdir()
            self._commit()
            if self._writer is not None:  # no merge may change the segments while they are linked
                self._writer.garbage_collect_files()
                self._writer.wait_merging_threads()  # consumes the writer; the next write makes one
                self._writer = None
                self._index.reload()
            assert self._workdir is not None
            if path.resolve() == self._workdir.resolve():
                raise MedRAGError(f"cannot save a tantivy index over its own working directory ({path})")
            size = _copy_index(self._workdir, path)
            meta = {"format": FORMAT_VERSION, "count": self._count, "tantivy": tantivy.__version__, **self.params}
            (path / META).write_text(json.dumps(meta, indent=2) + "\n")
        log.info("saved tantivy index of %d texts (%d bytes of segments) to %s", self._count, size, path)


__all__ = ["TantivyOptions", "TantivyStore"]
