"""The one ingest engine: check, read, dedupe, chunk, embed, store, checkpoint, resume.

Both engines use it: the local one embeds with the index's own embedder, the Ray engine
(``medrag.distributed``) passes ``embed``, a lookup of vectors it computed on a pool of actors. Every file is
parsed once up front, so a bad file stops the ingest before anything changes (or, with ``skip_bad``, is left
out and listed). With ``save_to`` the index is saved every ``ingest.checkpoint_chunks`` new chunks and at the
end, with how far each file got: re-running the same command after a crash skips finished files and resumes
the one it was in.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from medrag import readers, sources
from medrag.documents import Chunk, Deletion, Document
from medrag.errors import MedRAGError
from medrag.sentences import embed_passages
from medrag.stores import layout

if TYPE_CHECKING:
    from medrag.chunking import Chunker
    from medrag.embedding import Embedder
    from medrag.settings import Settings
    from medrag.stores.chunks import ChunkStore

log = logging.getLogger(__name__)

EMBED_BATCH_CHUNKS = 1024  # chunks embedded per call: large enough for length-sorted batches of 64
Embed = Callable[[list[str]], np.ndarray]


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


class Target(Protocol):
    """What ingest writes into: an index's stores, its chunker and embedder (``MedRAG`` is one)."""

    settings: Settings
    chunks: ChunkStore
    lexical: Any

    @property
    def vectors(self) -> Any: ...

    @property
    def chunker(self) -> Chunker: ...

    @property
    def embedder(self) -> Embedder: ...

    def save(self, directory: str | Path) -> None: ...

    def begin_write(self, directory: str | Path | None) -> None: ...

    def delete_document(self, doc_id: str) -> int: ...


def read_source(src: sources.Source, settings: Settings | None = None) -> Iterable[Document | Deletion]:
    """The records of one source: its recipe options to its reader, and clinical notes always through a notes
    reader (de-identified before anything sees them) unless the settings say they already are."""
    fmt, options = src.format, dict(src.options)
    notes_settings = settings is not None and (settings.ingest.notes_already_deidentified
                                               or settings.ingest.deid_shift_dates)
    if src.source_type == "clinical_note" or notes_settings:
        fmt = fmt or readers.sniff(src.path, explicit=True)
        if src.source_type == "clinical_note":
            fmt = readers.AS_NOTES.get(fmt or "", fmt) or _notes_format_by_name(src.path)
            if fmt not in readers.NOTE_FORMATS:
                raise MedRAGError(f"{src.path}: a clinical_note source must be read by a notes reader "
                                  f"({', '.join(sorted(readers.NOTE_FORMATS))}), not {fmt!r}")
        if fmt in readers.NOTE_FORMATS and settings is not None:
            options.setdefault("already_deidentified", settings.ingest.notes_already_deidentified)
            options.setdefault("shift_dates", settings.ingest.deid_shift_dates)
    return readers.read(src.path, fmt, options or None)


def _notes_format_by_name(path: Path) -> str:
    """A notes file that no sniffing rule recognises: read by its name's ending."""
    name = path.name.lower().removesuffix(".gz")
    return "notes_jsonl" if name.endswith((".jsonl", ".json")) else "notes_csv" if name.endswith(".csv") else "notes_text"


def check_sources(checked_sources: Sequence[sources.Source], report: IngestReport, skip_bad: bool,
                  progress: bool, settings: Settings | None = None) -> list[tuple[sources.Source, int]]:
    """Parse every source once: (source, records) for the readable ones; a bad one raises, or with
    ``skip_bad`` is listed in ``report.skipped``."""
    checked: list[tuple[sources.Source, int]] = []
    for src in tqdm(checked_sources, desc="checking", unit="file", disable=not progress or len(checked_sources) < 2):
        try:
            checked.append((src, sum(1 for _ in read_source(src, settings))))
        except MedRAGError as exc:
            if not skip_bad:
                raise
            report.skipped.append((str(src.path), str(exc)))
    return checked


def tag_source(record: Document, src: sources.Source) -> Document:
    """``record`` with its recipe's ``source_type``, when the recipe sets one."""
    if not src.source_type:
        return record
    return replace(record, metadata={**record.metadata, "source_type": src.source_type})


def file_key(src: sources.Source) -> tuple[str, str]:
    """A source file's identity (its resolved path) and version (size, mtime, format, source type, options)."""
    stat = src.path.stat()
    options = f":{json.dumps(src.options, sort_keys=True, default=str)}" if src.options else ""
    return str(src.path.resolve()), f"{stat.st_size}:{stat.st_mtime_ns}:{src.format}:{src.source_type}{options}"


class Merger:
    """Merges vector segments in a background thread while an ingest goes on (``ingest.merge_segments``
    adjacent ones of like size); the next checkpoint writes the result."""

    def __init__(self, vectors: Any, factor: int) -> None:
        self.vectors, self.factor = vectors, factor
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        """Start a merge if segments have piled up and none is running or waiting to be written."""
        if self.factor < 2 or not hasattr(self.vectors, "plan_merge") or self.vectors.merging:
            return
        if self._thread is not None and self._thread.is_alive():
            return
        run = self.vectors.plan_merge(self.factor)
        if run:
            self._thread = threading.Thread(target=self._merge, args=(run,), name="medrag-merge", daemon=True)
            self._thread.start()

    def _merge(self, run: list[Any]) -> None:
        try:
            self.vectors.offer(self.vectors.merge(run))
        except Exception as exc:  # noqa: BLE001 - reported, never fatal: the segments stay as they are
            self._error = exc

    def finish(self) -> bool:
        """Wait for a running merge; whether one waits to be written."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            log.warning("a background merge of vector segments failed: %s", self._error)
        return bool(getattr(self.vectors, "merging", False))


def ingest(target: Target, paths: Iterable[str | Path] = (), *, save_to: str | Path | None = None,
           skip_bad: bool = False, progress: bool = True, pubmed: sources.PubMedQuery | None = None,
           embed: Embed | None = None, checked: Sequence[tuple[sources.Source, int]] | None = None) -> IngestReport:
    """Read, chunk, embed and store every document in ``paths`` (files, folders, recipes) into ``target``.

    ``pubmed:QUERY`` paths are downloaded first through E-utilities as ``pubmed`` says. ``embed`` maps chunk
    texts to their vectors when they were embedded elsewhere (the Ray engine; no sentence vectors are stored
    then, and answers embed those sentences when asked); ``checked`` holds sources
    ``check_sources`` already parsed (``paths`` is then not read again).
    """
    start = time.perf_counter()
    report = IngestReport()
    chunks = target.chunks
    if checked is None:
        checked = check_sources(sources.expand(paths, pubmed, progress), report, skip_bad, progress, target.settings)
    target.begin_write(save_to)  # in place when saving back where it was loaded from, else in memory
    changes_before = chunks.total_changes
    merger = Merger(target.vectors, target.settings.ingest.merge_segments)
    report.files = len(checked)
    if embed is None:
        target.embedder.model  # noqa: B018 - load the model before the progress bar starts
    bar = tqdm(total=sum(n for _, n in checked), desc="ingesting", unit="doc", disable=not progress)
    pending: dict[str, tuple[Document, list[Chunk], str]] = {}
    pending_hashes: set[str] = set()
    finished: list[tuple[str, str, int]] = []  # files read to the end whose documents may be pending
    since_save = pending_chunks = 0

    def flush() -> None:
        nonlocal since_save, pending_chunks
        new = [c for _, cs, _ in pending.values() for c in cs]
        texts = [c.embed_text for c in new]
        if embed is None:  # one forward pass gives the chunk vectors and their sentences' vectors
            embedded, sentences = (embed_passages(target.embedder, new) if target.settings.ingest.sentence_vectors
                                   else (target.embedder.embed_documents(texts), None))
        else:
            embedded, sentences = embed(texts), None
        ids = np.asarray([i for doc, cs, file in pending.values() for i in chunks.add(doc, cs, file)], dtype=np.int64)
        if sentences is not None:
            chunks.add_sentence_vectors(dict(zip(ids.tolist(), sentences)))
        target.vectors.add(ids, embedded)
        if target.lexical is not None:
            target.lexical.add(ids, texts)
        for key, fingerprint, n in finished:
            chunks.set_file_progress(key, fingerprint, n, complete=True)
        report.chunks += len(ids)
        since_save += len(ids)
        bar.update(len(pending))
        bar.set_postfix(chunks=target.vectors.count(), refresh=False)
        pending.clear()
        pending_hashes.clear()
        finished.clear()
        pending_chunks = 0

    for src, n_records in checked:
        key, fingerprint = file_key(src)
        done, complete = chunks.file_progress(key, fingerprint)
        if complete:
            report.unchanged_files += 1
            bar.update(n_records)
            continue
        bar.update(done)
        for position, record in enumerate(read_source(src, target.settings), start=1):
            if position <= done:  # saved by an earlier, interrupted run
                continue
            if record.id in pending:
                flush()
            if isinstance(record, Deletion):
                report.deleted += target.delete_document(record.id)
                bar.update(1)
                continue
            record = tag_source(record, src)
            digest = record.content_hash
            old = chunks.document_hash(record.id)
            if old == digest:
                report.unchanged += 1
                bar.update(1)
                continue
            if old is None and (digest in pending_hashes or chunks.duplicate_of(digest)):
                report.duplicates += 1
                bar.update(1)
                continue
            if old is not None:
                target.delete_document(record.id)
                report.replaced += 1
            pending[record.id] = (record, target.chunker.split(record), str(src.path))
            pending_hashes.add(digest)
            pending_chunks += len(pending[record.id][1])
            report.documents += 1
            if pending_chunks >= EMBED_BATCH_CHUNKS:
                flush()
            if save_to is not None and since_save + pending_chunks >= target.settings.ingest.checkpoint_chunks:
                flush()
                chunks.set_file_progress(key, fingerprint, position, complete=False)
                target.save(save_to)
                merger.start()
                since_save = 0
        finished.append((key, fingerprint, n_records))
    flush()
    bar.close()
    merged = merger.finish()
    if save_to is not None and (merged or chunks.total_changes != changes_before
                                or not (Path(save_to) / layout.MANIFEST).exists()):
        target.save(save_to)
    report.seconds = time.perf_counter() - start
    return report


__all__ = ["EMBED_BATCH_CHUNKS", "IngestReport", "Target", "check_sources", "file_key", "ingest", "read_source",
           "tag_source"]
