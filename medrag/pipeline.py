"""MedRAG: the one pipeline class composing reader → chunker → embedder → store → retriever → generator."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from medrag.answer import Answer
from medrag.case import CaseAnalysis, analyse_similar
from medrag.chunking import Chunker
from medrag.deid import index_keyed
from medrag.embedding import Embedder
from medrag.errors import MedRAGError
from medrag.filters import Filter, parse_filter
from medrag.generation import Generator, make_generator
from medrag.i18n import IDF, index_idf
from medrag.ingest import IngestReport, ingest
from medrag.lexical import LEXICAL
from medrag.reranking import Reranker
from medrag.retrieval import Found, Hit, Retriever
from medrag.sentences import SentenceVectors
from medrag.settings import RETRIEVERS, Settings
from medrag.sources import PubMedQuery
from medrag.stores import STORES, layout, sealed
from medrag.stores.chunks import ChunkStore
from medrag.stores.sealed import IndexKey
from medrag.stores.segments import Segment, Segments

log = logging.getLogger(__name__)



class MedRAG:
    """Ingest sources into an index, retrieve passages, answer questions with citations.

    A loaded index may be queried (``retrieve``, ``ask``) from many threads at once; ingest from one.
    """

    def __init__(self, settings: Settings | None = None, *, key: str | bytes | IndexKey | None = None) -> None:
        """``key``: encrypt the index at rest (a passphrase, stretched with a new salt; or an ``IndexKey``);
        every ``save`` then seals every file (``medrag.stores.sealed``)."""
        self.settings = settings or Settings()
        self.key = key if key is None or isinstance(key, IndexKey) else IndexKey.new(key)
        if self.settings.lexical.backend == "auto":  # a new index: tantivy, or bm25s where files must be sealed
            self.settings = self.settings.replace(**{"lexical.backend": "bm25s" if self.key is not None else "tantivy",
                                                     "lexical.options": self.settings.lexical.options})
        self.chunks = ChunkStore()
        if self.key is not None:
            self.chunks.db.execute("PRAGMA temp_store = MEMORY")  # SQLite's sorts never spill plaintext to disk
        self._vectors: Segments | None = None
        self.lexical = self._new_lexical()
        self._generators: dict[str, Generator] = {}
        self._lock = threading.Lock()  # builds the lazily made parts once, whichever thread asks first

    def _new_lexical(self) -> Any:
        lexical = self.settings.lexical
        if not lexical.enabled:
            return None
        backend = LEXICAL.get(lexical.backend)
        if self.key is not None and not getattr(backend.load(), "supports_bytes", True):
            raise MedRAGError(f"an encrypted index cannot hold a {lexical.backend} lexical index (it keeps files on "
                              f"disk): use --set lexical.backend=bm25s")
        return backend.load().create(backend.options(lexical.options))

    # -- composition -----------------------------------------------------------------------------
    @cached_property
    def embedder(self) -> Embedder:
        return Embedder.from_settings(self.settings)

    @cached_property
    def chunker(self) -> Chunker:
        return Chunker.for_embedder(self.embedder, self.settings)

    @property
    def vectors(self) -> Segments:
        """The vector store: the backend's segments (``medrag.stores.segments``)."""
        if self._vectors is None:
            with self._lock:
                if self._vectors is None:
                    backend = STORES.get(self.settings.index.backend)
                    self._vectors = Segments(backend.load(), backend.options(self.settings.index.options),
                                             self.embedder.dim, self.settings.threads)
        return self._vectors

    @cached_property
    def reranker(self) -> Reranker | None:
        r = self.settings.retrieval
        return (Reranker(r.reranker, batch_size=self.settings.embedding.batch_size // 2 or 1,
                         threads=self.settings.threads) if r.reranker else None)

    @property
    def retriever(self) -> Retriever:
        return Retriever(self.embedder, self.vectors, self.chunks, self.lexical, self.settings, self.reranker)

    def generator(self, spec: str | None = None) -> Generator:
        """The generator named ``spec`` (default: the settings'), loaded once."""
        spec = spec or self.settings.generation.generator
        with self._lock:
            if spec not in self._generators:
                g = self.settings.generation
                self._generators[spec] = make_generator(spec, embedder=self.embedder, max_new_tokens=g.max_new_tokens,
                                                        threads=self.settings.threads, options=g.options,
                                                        sentences=SentenceVectors(self.embedder, self.chunks))
            return self._generators[spec]

    # -- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write the index: a plaintext one incrementally (only what changed since its last save there; see
        ``medrag.stores.layout``), an encrypted one sealed whole. A crash at any moment leaves the previous save
        intact."""
        directory = Path(directory)
        vectors = self.vectors
        info = {"embedder": self.settings.embedding.model, "dim": vectors.dim,
                "index_type": self.settings.index.options.get("index_type", self.settings.index.backend),
                "chunks": vectors.count(), "documents": self.chunks.count_documents()}
        self.last_save: dict[str, float] = {}
        if self.key is not None:
            whole = vectors.whole()
            dumps = {"vectors": getattr(whole, "to_bytes", None), "chunks": self.chunks.to_bytes}
            if self.lexical is not None:
                dumps["lexical"] = getattr(self.lexical, "to_bytes", None)
            layout.commit_sealed(directory, dumps, self.settings.to_dict(), info, self.key)
        else:
            self._checkpoint(directory, info)
        log.info("saved %d chunks to %s", info["chunks"], directory)

    def _checkpoint(self, directory: Path, info: dict[str, Any]) -> None:
        """A plaintext save: new files, then the chunk store's commit, then the manifest file."""
        directory.mkdir(parents=True, exist_ok=True)
        old = layout.current(directory, self.chunks)
        if old and layout.is_encrypted(old):
            raise sealed.IndexKeyError(f"index {directory} is encrypted: open it with its key to add to it (it is "
                                       f"never saved in plaintext)")
        generation = int(old.get("generation", 0)) + 1

        def write(name: str, writer: Callable[[Path], None]) -> None:
            layout.write_file(directory, name, writer)

        files: dict[str, str] = {}
        clock = _Clock()
        entry = self.vectors.checkpoint(directory, generation, write)
        clock.lap("vectors")
        if self.lexical is not None:
            files["lexical"] = f"lexical.{generation}.{self.lexical.suffix}"
            write(files["lexical"], self.lexical.save)
            clock.lap("lexical")
        here = self.chunks.in_place and self.chunks.lives_in(directory)
        files["chunks"] = self.chunks.path.name if here and self.chunks.path else f"chunks.{generation}.sqlite"
        manifest: dict[str, Any] = {"format": layout.FORMAT_VERSION, "generation": generation, "files": files,
                                    "vectors": entry, "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info}
        self.settings.save(directory / layout.SETTINGS)
        if here:
            self.chunks.commit(generation, manifest)  # the commit point
        else:
            write(files["chunks"], lambda path: self.chunks.save(path, generation, manifest))
            self.chunks.continue_in(directory / files["chunks"])
        self.chunks.settle()  # durable on disk before the manifest names it
        clock.lap("chunks")
        layout.publish(directory, manifest)
        layout.sweep(directory, manifest, keep=self.vectors.pending_files())
        clock.lap("publish")
        self.last_save = clock.laps
        log.debug("checkpoint %d of %s: %s", generation, directory, clock.laps)

    def begin_write(self, directory: str | Path | None) -> None:
        """Get ready to change the index: its chunk store is written in place when it will be saved back into
        the directory it was loaded from, else copied into memory first (the saved files never change)."""
        if self.key is None and directory is not None and self.chunks.lives_in(directory):
            self.chunks.write_in_place()
        else:
            self.chunks.to_memory()

    def compact(self, directory: str | Path) -> dict[str, int]:
        """Merge every vector segment into one, without the deleted vectors, and save into ``directory`` (an
        index of the previous format is converted); returns the segment counts before and after."""
        self.begin_write(directory)
        vectors = self.vectors
        before = len(vectors.sealed)
        if len(vectors.sealed) > 1 or len(vectors.tombstones):
            vectors.offer(vectors.merge(list(vectors.sealed)))  # installed by the save
        self.save(directory)
        return {"segments_before": before, "segments_after": len(self.vectors.sealed),
                "chunks": self.vectors.count()}

    @classmethod
    def load(cls, directory: str | Path, settings: Settings | None = None, *,
             key: str | bytes | IndexKey | None = None, **changes: Any) -> MedRAG:
        """Open a saved index with the settings it was built with (query-time fields may change).

        Passing ``settings`` or ``changes`` that differ in a build-time field (embedder, chunking,
        index type) is an error: the index would silently answer with the wrong vectors. An encrypted index
        needs its ``key`` (default ``$MEDRAG_INDEX_KEY``), is decrypted into memory, and stays encrypted
        when saved again; a plaintext index ignores ``key``.
        """
        directory = Path(directory)
        manifest = layout.read_manifest(directory)
        chunks = None  # a plaintext index's chunk store: opened once, for its committed state and its rows
        if manifest["format"] == layout.FORMAT_VERSION and not layout.is_encrypted(manifest):
            chunks = ChunkStore.load(directory / layout.file_of(directory, manifest, "chunks"))
            manifest = layout.current(directory, chunks)
        index_key = None
        if layout.is_encrypted(manifest):
            index_key = layout.unlock(directory, manifest, key if key is not None else sealed.passphrase())
            saved_dict, _ = layout.read_settings(directory, manifest, index_key)
            try:
                saved = Settings.from_dict(saved_dict)
            except ValueError as exc:
                raise MedRAGError(f"corrupt settings in the encrypted index {directory}: "
                                  f"{str(exc).splitlines()[0]}") from exc
        else:
            saved = Settings.load(directory / layout.SETTINGS)
        wanted = (settings or saved).replace(**changes)
        if wanted.lexical.backend == "auto":  # the index's own
            wanted = wanted.replace(**{"lexical.backend": saved.lexical.backend, "lexical.options": saved.lexical.options})
        mismatch = saved.index_mismatch(wanted)
        if mismatch:
            raise MedRAGError(f"index {directory} was built with other settings ({'; '.join(mismatch)}); "
                              f"query it with the settings it was built with, or re-ingest")
        rag = cls(wanted, key=index_key)
        files = manifest["files"]
        store = STORES.get(saved.index.backend)
        backend, options = store.load(), store.options(wanted.index.options)
        lexical = LEXICAL.get(saved.lexical.backend) if saved.lexical.enabled and "lexical" in files else None
        if index_key is None:
            rag.chunks = chunks or ChunkStore.load(directory / files["chunks"])
            if manifest["format"] == layout.FORMAT_VERSION:
                rag._vectors = Segments.open(directory, manifest.get("vectors", {}), backend, options,
                                             int(manifest.get("dim") or 0), wanted.threads)
            else:  # the previous format: one vectors file, the one segment until the next save
                one = backend.open(directory / files["vectors"], options, wanted.threads, mmap=True)
                low, high = rag.chunks.id_range()
                rag._vectors = Segments(backend, options, one.dim, wanted.threads,
                                        segments=[Segment(files["vectors"], directory, one, low, high, one.count())])
            if lexical is not None:
                rag.lexical = lexical.load().open(directory / files["lexical"], lexical.options(saved.lexical.options))
        else:  # decrypted in memory: nothing of it is written anywhere
            def opened(role: str, backend: Any, *args: Any) -> Any:
                what = f"the {role} of {directory}"
                if not hasattr(backend, "open_bytes"):
                    raise MedRAGError(f"{what} cannot be opened from an encrypted index: backend "
                                      f"{backend.__name__} has no open_bytes")
                return backend.open_bytes(layout.read_part(directory, manifest, role, index_key), *args, what=what)

            rag.chunks = ChunkStore.from_bytes(layout.read_part(directory, manifest, "chunks", index_key),
                                               f"the chunks of {directory}")
            whole = opened("vectors", backend, options, wanted.threads)
            rag._vectors = Segments(backend, options, whole.dim, wanted.threads, fresh=whole)
            if lexical is not None:
                rag.lexical = opened("lexical", lexical.load(), lexical.options(saved.lexical.options))
        if saved.lexical.enabled and lexical is None:  # saved before it had one: rebuilt from the chunk texts
            ids = rag.chunks.ids()
            chunks = rag.chunks.get(ids)
            rag.lexical.add(np.asarray(ids, dtype=np.int64), [chunks[i].embed_text for i in ids])
        counts = {rag._vectors.count(), rag.chunks.count(), rag.lexical.count() if rag.lexical else rag.chunks.count()}
        if len(counts) != 1:
            raise MedRAGError(f"index {directory} is inconsistent: {rag._vectors.count()} vectors, "
                              f"{rag.chunks.count()} chunks, {rag.lexical.count() if rag.lexical else '-'} lexical rows")
        return rag

    # -- ingest ----------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], *, save_to: str | Path | None = None, skip_bad: bool = False,
               progress: bool = True, pubmed: PubMedQuery | None = None) -> IngestReport:
        """Read, chunk, embed and store every document in ``paths`` (files, folders, recipes); see
        ``medrag.ingest.ingest``. ``save_to`` checkpoints into that index directory, so a re-run resumes."""
        with index_keyed(self.key):  # an encrypted index's notes get pseudonyms stable across runs
            return ingest(self, paths, save_to=save_to, skip_bad=skip_bad, progress=progress, pubmed=pubmed)

    def delete_document(self, doc_id: str) -> int:
        """Remove a document's chunks from every store; 1 if it was there, else 0."""
        ids = np.asarray(self.chunks.delete(doc_id), dtype=np.int64)
        if len(ids):
            self.vectors.delete(ids)
            if self.lexical is not None:
                self.lexical.delete(ids)
        return 1 if len(ids) else 0

    # -- questions -------------------------------------------------------------------------------
    def retrieve(self, question: str, k: int | None = None, *, where: Filter | str | None = None,
                 retriever: str | None = None) -> list[Hit]:
        """The ``k`` best passages for one question (``where``: a Filter or a spec like ``"year>=2015"``)."""
        return self.retrieve_batch([question], k, where=where, retriever=retriever)[0]

    def retrieve_batch(self, questions: Sequence[str], k: int | None = None, *, where: Filter | str | None = None,
                       retriever: str | None = None, query_vectors: np.ndarray | None = None,
                       rerank: bool = True) -> list[list[Hit]]:
        """The ``k`` best passages for each question, searched in one batch per store (``query_vectors``: the
        questions' embeddings, when already computed; ``rerank``: let the settings' reranker re-order them)."""
        self._check_search(retriever)
        where = parse_filter(where) if isinstance(where, str) else where
        return self.retriever.search(list(questions), k or self.settings.retrieval.k, where, retriever, query_vectors,
                                     rerank)

    def find(self, question: str, k: int | None = None, *, where: Filter | str | None = None,
             retriever: str | None = None, query_vectors: np.ndarray | None = None, dense_k: int = 0) -> Found:
        """``retrieve``, with the ``dense_k`` best dense hits (by cosine) from the same search: what an answer
        and its abstention need, in one store call (``Retriever.find``)."""
        self._check_search(retriever)
        where = parse_filter(where) if isinstance(where, str) else where
        return self.retriever.find([question], k or self.settings.retrieval.k, where, retriever, query_vectors,
                                   dense_k=dense_k)[0]

    def _check_search(self, retriever: str | None) -> None:
        if self.vectors.count() and self.vectors.dim != self.embedder.dim:
            raise MedRAGError(f"embedder {self.settings.embedding.model} makes {self.embedder.dim}-d vectors, "
                              f"the index holds {self.vectors.dim}-d ones")
        if retriever is not None and retriever not in RETRIEVERS:
            raise MedRAGError(f"unknown retriever {retriever!r}; choose from {', '.join(RETRIEVERS)}")

    def ask(self, question: str, *, k: int | None = None, generator: str | None = None,
            where: Filter | str | None = None, retriever: str | None = None, context: str | None = None,
            strict: bool | None = None, on_token: Callable[[str], None] | None = None) -> Answer:
        """Retrieve passages and answer from them; every ``[n]`` in the answer is a cited source, numbered by
        first appearance (``medrag.answering``; docs/answer.md).

        An emergency in the question puts a call-for-help message first. A long message is searched by its
        focus. Weak evidence (the dense cosines of the best passages, calibrated) abstains without calling the
        generator. The generator reads each passage widened by its document neighbours. Each answer
        sentence is checked against the passages it cites; ``strict`` drops unsupported ones.
        ``context`` (age, conditions, drugs) shapes retrieval and the prompt and is stored nowhere.
        ``on_token`` receives a language model's raw text as it is generated, before any check.
        """
        from medrag.answering.ask import ask

        return ask(self, question, k=k, generator=generator, where=where, retriever=retriever, context=context,
                   strict=strict, on_token=on_token)

    def case(self, note: str, *, k: int | None = None, similar: int = 0, strict: bool | None = None,
             similar_from: MedRAG | None = None) -> CaseAnalysis:
        """A clinical note's problems, each with cited evidence from this index, red flags first; the note is
        de-identified in memory and stored nowhere (``medrag.case``). ``similar``: that many of the most similar
        de-identified notes, from ``similar_from`` (a notes index) or this index."""
        from medrag.case import analyse

        found = analyse(self, note, k=k, strict=strict)
        if similar > 0:
            near = analyse_similar(similar_from or self, found, similar)
            found = found.model_copy(update={"similar": near})
        return found

    @cached_property
    def _idf(self) -> IDF | None:
        """The lexical index's IDF of a word, for choosing among a translated term's English senses."""
        return index_idf(self)

    def info(self, speed: bool = False) -> dict[str, Any]:
        """Counts, sources, embedder, its path (backend and precision) and, with ``speed``, how many texts per
        second this CPU embeds with it (a one-second measurement), index type and settings."""
        from medrag.embedding import cpu

        e = self.settings.embedding
        path = {"path": f"{e.backend} {e.precision}", "cpu_class": cpu.cpu_class()}
        if speed:
            path |= {"runs_as": self.embedder.describe(), "texts_per_second": round(self.embedder.speed(), 1)}
        return {"documents": self.chunks.count_documents(), "chunks": self.chunks.count(), "embedding": path,
                "vectors": self.vectors.count(), "bm25_rows": self.lexical.count() if self.lexical else None,
                "sources": self.chunks.summary(), "embedder": self.settings.embedding.model,
                "index_type": self.settings.index.options.get("index_type", self.settings.index.backend),
                "index_trained": not getattr(self.vectors, "staged", False),
                "segments": len(self.vectors.sealed) + (1 if self.vectors.fresh.count() else 0),
                "deleted_vectors": len(self.vectors.tombstones),
                "settings": self.settings.to_dict()}


class _Clock:
    """Seconds between laps, by name (what a checkpoint spent where)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 4)
        self._last = now
