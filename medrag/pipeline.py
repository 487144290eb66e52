"""MedRAG: the one pipeline class composing reader → chunker → embedder → store → retriever → generator."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from medrag import corpus, readers, safety
from medrag.answer import DISCLAIMER, Answer, Citation
from medrag.chunking import Chunker
from medrag.documents import Chunk, Deletion, Document
from medrag.embedding import Embedder
from medrag.errors import MedRAGError
from medrag.filters import Filter, parse_filter
from medrag.generation import Generator, make_generator
from medrag.lexical import BM25Store
from medrag.reranking import Reranker
from medrag.retrieval import Hit, Retriever
from medrag.settings import RETRIEVERS, Settings
from medrag.stores import VectorStore, store_class
from medrag.stores import layout
from medrag.stores.chunks import ChunkStore

log = logging.getLogger(__name__)

NO_EVIDENCE = "The indexed sources returned no passage for this question, so medrag cannot answer it."
NO_SENTENCE = "The retrieved passages contain no sentence that answers this question; see the sources below."
ABSTAIN = ("The indexed sources do not answer this question well enough for medrag to answer it: the closest "
           "passages are only loosely related. Try rephrasing, or index sources that cover the topic.")
EMBED_BATCH_CHUNKS = 1024  # chunks embedded per call: large enough for length-sorted batches of 64


@dataclass
class IngestReport:
    """What an ingest did, for the closing summary."""

    files: int = 0
    documents: int = 0
    chunks: int = 0
    unchanged: int = 0
    unchanged_files: int = 0
    duplicates: int = 0
    replaced: int = 0
    deleted: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    shards: int = 0  # the Ray engine: shards embedded in this run
    shard_seconds: float = 0.0  # the Ray engine: seconds spent embedding them (before the merge)

    def summary(self) -> str:
        total = self.seconds + self.shard_seconds
        rate = self.documents / total if total else 0.0
        text = (f"{self.files} files ({self.unchanged_files} already ingested): {self.documents} documents added "
                f"({self.chunks} chunks), {self.replaced} replaced, {self.unchanged} unchanged, "
                f"{self.duplicates} duplicates, {self.deleted} deleted, {len(self.skipped)} files skipped, "
                f"in {total:.1f} s ({rate:.1f} documents/s)")
        if self.shard_seconds:
            text += f"; Ray embedded {self.shards} shards in {self.shard_seconds:.1f} s, the merge took {self.seconds:.1f} s"
        return "\n".join([text, *(f"  skipped {path}: {why}" for path, why in self.skipped)])


class MedRAG:
    """Ingest sources into an index, retrieve passages, answer questions with citations."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.chunks = ChunkStore()
        self._vectors: VectorStore | None = None
        self.lexical: BM25Store | None = self._new_lexical()
        self._generators: dict[str, Generator] = {}

    def _new_lexical(self) -> BM25Store | None:
        s = self.settings
        return BM25Store(k1=s.bm25_k1, b=s.bm25_b, method=s.bm25_method) if s.lexical else None

    # -- composition -----------------------------------------------------------------------------
    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        return Embedder(s.embedder, precision=s.embedder_precision, query_prompt=s.query_prompt,
                        document_prompt=s.document_prompt, batch_size=s.batch_size, threads=s.threads,
                        query_model=s.query_embedder)

    @cached_property
    def chunker(self) -> Chunker:
        size = min(self.settings.chunk_tokens, self.embedder.max_seq_length)
        return Chunker(self.embedder.tokenizer, size, self.settings.chunk_overlap, self.settings.document_prompt)

    @property
    def vectors(self) -> VectorStore:
        if self._vectors is None:
            self._vectors = store_class(self.settings.store)(self.embedder.dim, self.settings.index_type,
                                                             **self._search_params)
        return self._vectors

    @property
    def _search_params(self) -> dict[str, int]:
        s = self.settings
        return {"threads": s.threads, "ef_search": s.ef_search, "nprobe": s.nprobe, "k_factor": s.k_factor}

    @cached_property
    def reranker(self) -> Reranker | None:
        s = self.settings
        return Reranker(s.reranker, batch_size=s.batch_size // 2 or 1, threads=s.threads) if s.reranker else None

    @property
    def retriever(self) -> Retriever:
        return Retriever(self.embedder, self.vectors, self.chunks, self.lexical, self.settings, self.reranker)

    def generator(self, spec: str | None = None) -> Generator:
        """The generator named ``spec`` (default: the settings'), loaded once."""
        spec = spec or self.settings.generator
        if spec not in self._generators:
            s = self.settings
            self._generators[spec] = make_generator(
                spec, embedder=self.embedder, max_new_tokens=s.max_new_tokens, n_sentences=s.extractive_sentences,
                threads=s.threads, openai_base_url=s.openai_base_url, openai_api_key_env=s.openai_api_key_env,
                openai_context_tokens=s.openai_context_tokens)
        return self._generators[spec]

    # -- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write the index atomically: a crash leaves the previous save intact."""
        vectors = self.vectors
        writers = {"vectors": ("faiss", vectors.save), "chunks": ("sqlite", self.chunks.save)}
        if self.lexical is not None:
            writers["lexical"] = ("bm25", self.lexical.save)
        layout.commit(directory, writers,
                      self.settings.to_dict(),
                      {"embedder": self.settings.embedder, "dim": vectors.dim,
                       "index_type": self.settings.index_type, "chunks": vectors.count(),
                       "documents": self.chunks.count_documents()})
        log.info("saved %d chunks to %s", vectors.count(), directory)

    @classmethod
    def load(cls, directory: str | Path, settings: Settings | None = None, **changes: Any) -> MedRAG:
        """Open a saved index with the settings it was built with (query-time fields may change).

        Passing ``settings`` or ``changes`` that differ in a build-time field (embedder, chunking,
        index type) is an error: the index would silently answer with the wrong vectors.
        """
        directory = Path(directory)
        manifest = layout.read_manifest(directory)
        saved = Settings.load(directory / layout.SETTINGS)
        wanted = (settings or saved).replace(**changes)
        mismatch = saved.index_mismatch(wanted)
        if mismatch:
            raise MedRAGError(f"index {directory} was built with other settings ({'; '.join(mismatch)}); "
                              f"query it with the settings it was built with, or re-ingest")
        rag = cls(wanted)
        files = manifest["files"]
        rag.chunks = ChunkStore.load(directory / files["chunks"])
        rag._vectors = store_class(saved.store).load(directory / files["vectors"], saved.index_type,
                                                     **rag._search_params)
        if saved.lexical and "lexical" in files:
            rag.lexical = BM25Store.load(directory / files["lexical"], mmap=True)  # pages, not process memory
        elif saved.lexical:  # an index saved before it had one: rebuilt from the stored chunk texts
            ids = rag.chunks.ids()
            chunks = rag.chunks.get(ids)
            rag.lexical.add(np.asarray(ids, dtype=np.int64), [chunks[i].embed_text for i in ids])
        counts = {rag._vectors.count(), rag.chunks.count(), rag.lexical.count() if rag.lexical else rag.chunks.count()}
        if len(counts) != 1:
            raise MedRAGError(f"index {directory} is inconsistent: {rag._vectors.count()} vectors, "
                              f"{rag.chunks.count()} chunks, {rag.lexical.count() if rag.lexical else '-'} BM25 rows")
        return rag

    # -- ingest ----------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], *, save_to: str | Path | None = None, skip_bad: bool = False,
               progress: bool = True, pubmed: corpus.PubMedQuery | None = None,
               vectors: Callable[[list[str]], np.ndarray] | None = None,
               checked: Sequence[tuple[corpus.Source, int]] | None = None) -> IngestReport:
        """Read, chunk, embed and store every document in ``paths`` (files, folders, recipes).

        Every file is parsed once up front, so a bad file stops the ingest before anything changes
        (or, with ``skip_bad``, is left out and listed). With ``save_to`` the index is saved every
        ``checkpoint_chunks`` new chunks and at the end, with how far each file got: re-running the
        same command after a crash skips finished files and resumes the one it was in.
        ``pubmed:QUERY`` paths are downloaded first through E-utilities as ``pubmed`` says.
        ``vectors`` maps chunk texts to their vectors when they were embedded elsewhere (``medrag.distributed``);
        ``checked`` holds sources ``check_sources`` already parsed (``paths`` is then not read again).
        """
        start = time.perf_counter()
        report = IngestReport()
        self.chunks.to_memory()  # an index opened on disk is changed in memory, then saved atomically
        changes_before = self.chunks.db.total_changes
        if checked is None:
            checked = check_sources(corpus.expand(paths, pubmed, progress), report, skip_bad, progress)
        report.files = len(checked)
        embed = vectors or self.embedder.embed_documents
        if vectors is None:
            self.embedder.model  # noqa: B018 - load the model before the progress bar starts
        bar = tqdm(total=sum(n for _, n in checked), desc="ingesting", unit="doc", disable=not progress)
        pending: dict[str, tuple[Document, list[Chunk], str]] = {}
        pending_hashes: set[str] = set()
        finished: list[tuple[str, str, int]] = []  # files read to the end whose documents may be pending
        since_save = pending_chunks = 0

        def flush() -> None:
            nonlocal since_save, pending_chunks
            texts = [c.embed_text for _, cs, _ in pending.values() for c in cs]
            embedded = embed(texts)
            ids = np.asarray([i for doc, cs, file in pending.values() for i in self.chunks.add(doc, cs, file)],
                             dtype=np.int64)
            self.vectors.add(ids, embedded)
            if self.lexical is not None:
                self.lexical.add(ids, texts)
            for key, fingerprint, n in finished:
                self.chunks.set_file_progress(key, fingerprint, n, complete=True)
            report.chunks += len(ids)
            since_save += len(ids)
            bar.update(len(pending))
            bar.set_postfix(chunks=self.vectors.count(), refresh=False)
            pending.clear()
            pending_hashes.clear()
            finished.clear()
            pending_chunks = 0

        for src, n_records in checked:
            key, fingerprint = file_key(src)
            done, complete = self.chunks.file_progress(key, fingerprint)
            if complete:
                report.unchanged_files += 1
                bar.update(n_records)
                continue
            bar.update(done)
            for position, record in enumerate(readers.read(src.path, src.format), start=1):
                if position <= done:  # saved by an earlier, interrupted run
                    continue
                if record.id in pending:
                    flush()
                if isinstance(record, Deletion):
                    report.deleted += self._delete(record.id)
                    bar.update(1)
                    continue
                record = tag_source(record, src)
                digest = record.content_hash
                old = self.chunks.document_hash(record.id)
                if old == digest:
                    report.unchanged += 1
                    bar.update(1)
                    continue
                if old is None and (digest in pending_hashes or self.chunks.duplicate_of(digest)):
                    report.duplicates += 1
                    bar.update(1)
                    continue
                if old is not None:
                    self._delete(record.id)
                    report.replaced += 1
                pending[record.id] = (record, self.chunker.split(record), str(src.path))
                pending_hashes.add(digest)
                pending_chunks += len(pending[record.id][1])
                report.documents += 1
                if pending_chunks >= EMBED_BATCH_CHUNKS:
                    flush()
                if save_to is not None and since_save + pending_chunks >= self.settings.checkpoint_chunks:
                    flush()
                    self.chunks.set_file_progress(key, fingerprint, position, complete=False)
                    self.save(save_to)
                    since_save = 0
            finished.append((key, fingerprint, n_records))
        flush()
        bar.close()
        if save_to is not None and (self.chunks.db.total_changes != changes_before
                                    or not (Path(save_to) / layout.MANIFEST).exists()):
            self.save(save_to)
        report.seconds = time.perf_counter() - start
        return report

    def _delete(self, doc_id: str) -> int:
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
        if self.vectors.count() and self.vectors.dim != self.embedder.dim:
            raise MedRAGError(f"embedder {self.settings.embedder} makes {self.embedder.dim}-d vectors, "
                              f"the index holds {self.vectors.dim}-d ones")
        if retriever is not None and retriever not in RETRIEVERS:
            raise MedRAGError(f"unknown retriever {retriever!r}; choose from {', '.join(RETRIEVERS)}")
        where = parse_filter(where) if isinstance(where, str) else where
        return self.retriever.search(list(questions), k or self.settings.k, where, retriever, query_vectors, rerank)

    def ask(self, question: str, *, k: int | None = None, generator: str | None = None,
            where: Filter | str | None = None, retriever: str | None = None, context: str | None = None,
            strict: bool | None = None, on_token: Callable[[str], None] | None = None) -> Answer:
        """Retrieve passages and answer from them; every ``[n]`` in the answer is a cited source.

        An emergency in the question puts a call-for-help message first. Weak evidence (the dense
        cosines of the best passages, calibrated) abstains without calling the generator. Each answer
        sentence is checked against the passages it cites; ``strict`` drops unsupported ones.
        ``context`` (age, conditions, drugs) shapes retrieval and the prompt and is stored nowhere.
        ``on_token`` receives a language model's raw text as it is generated, before any check.
        """
        s = self.settings
        emergency = safety.detect_emergency(question)
        notices = [n for n in (emergency.message if emergency else None,
                               safety.language_notice(question, s.embedder)) if n]
        query = f"{question} (patient: {context.strip()})" if context and context.strip() else question
        vector = self.embedder.embed_queries([query])  # embedded once: for the answer's and the abstention's search
        hits = self.retrieve_batch([query], k, where=where, retriever=retriever, query_vectors=vector)[0]
        dense = self.retrieve_batch([query], safety.MARGIN_DEPTH, where=where, retriever="dense",
                                    query_vectors=vector, rerank=False)[0]
        coverage = (self.lexical.coverage(question, [h.chunk.id for h in dense])
                    if self.lexical is not None and s.abstain_coverage_weight else None)
        gen = self.generator(generator)
        abstained = not hits or safety.abstain([h.score for h in dense], s.abstain_threshold, s.abstain_margin_weight,
                                               coverage, s.abstain_coverage_weight)
        result = None if abstained else gen.generate(query, [h.chunk for h in hits], on_token=on_token)
        checked, removed = [], 0
        if result is None:
            body = NO_EVIDENCE if not hits else ABSTAIN
        else:
            text, removed = safety.remove_doctor_claims(result.text)
            checker = safety.SupportChecker(self.embedder, s.support_threshold)
            checked = checker.check(safety.split_answer(text), [h.chunk.text for h in hits])
            if strict if strict is not None else s.strict:
                removed += sum(not c.supported for c in checked)
                checked = [c for c in checked if c.supported]
            body = " ".join(f"{c.text} {''.join(f'[{n}]' for n in c.citations)}".strip() for c in checked)
            body = body or NO_SENTENCE
        cited = sorted({n for c in checked for n in c.citations})
        retrieved = [{"n": n, "chunk_id": h.chunk.id, "doc_id": h.chunk.doc_id, "pmid": h.chunk.pmid,
                      "url": h.chunk.url, "title": h.chunk.title, "score": round(h.score, 4)}
                     for n, h in enumerate(hits, 1)]
        return Answer(question=question, text="\n\n".join([*notices, body, DISCLAIMER]),
                      citations=[_citation(n, hits[n - 1]) for n in cited],
                      generator=result.generator if result else gen.name, retrieved=retrieved,
                      invalid_citations=result.invalid_citations if result else 0, abstained=abstained,
                      emergency=emergency is not None, notices=notices, removed_sentences=removed,
                      sentences=[{"text": c.text, "citations": c.citations, "support": round(c.support, 4),
                                  "supported": c.supported} for c in checked])

    def info(self) -> dict[str, Any]:
        """Counts, sources, embedder, index type and settings."""
        return {"documents": self.chunks.count_documents(), "chunks": self.chunks.count(),
                "vectors": self.vectors.count(), "bm25_rows": self.lexical.count() if self.lexical else None,
                "sources": self.chunks.summary(),
                "embedder": self.settings.embedder, "index_type": self.settings.index_type,
                "index_trained": not getattr(self.vectors, "staged", False),
                "settings": self.settings.to_dict()}


def check_sources(sources: Sequence[corpus.Source], report: IngestReport, skip_bad: bool,
                  progress: bool) -> list[tuple[corpus.Source, int]]:
    """Parse every source once: (source, records) for the readable ones; a bad one raises, or with
    ``skip_bad`` is listed in ``report.skipped``."""
    checked: list[tuple[corpus.Source, int]] = []
    for src in tqdm(sources, desc="checking", unit="file", disable=not progress or len(sources) < 2):
        try:
            checked.append((src, sum(1 for _ in readers.read(src.path, src.format))))
        except MedRAGError as exc:
            if not skip_bad:
                raise
            report.skipped.append((str(src.path), str(exc)))
    return checked


def tag_source(record: Document, src: corpus.Source) -> Document:
    """``record`` with its recipe's ``source_type``, when the recipe sets one."""
    if not src.source_type:
        return record
    return replace(record, metadata={**record.metadata, "source_type": src.source_type})


def file_key(src: corpus.Source) -> tuple[str, str]:
    """A source file's identity (its resolved path) and version (size, mtime, format, source type)."""
    stat = src.path.stat()
    return str(src.path.resolve()), f"{stat.st_size}:{stat.st_mtime_ns}:{src.format}:{src.source_type}"


def _citation(n: int, hit: Hit) -> Citation:
    meta = hit.chunk.metadata
    return Citation(n=n, pmid=hit.chunk.pmid, url=hit.chunk.url, title=hit.chunk.title,
                    journal=meta.get("journal"), year=meta.get("year"), source=meta.get("source"),
                    score=round(hit.score, 4), text=hit.chunk.text)
