"""Chunk texts and metadata in SQLite, beside the vector index; row ids are the vector ids."""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from medrag.documents import Chunk, Document
from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    source_file TEXT,
    source_type TEXT,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    idx INTEGER NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    records_done INTEGER NOT NULL,
    complete INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sentence_vectors (
    chunk_id INTEGER PRIMARY KEY,
    vectors BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS index_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL,
    manifest TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
"""


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    """A connection that leaves transactions to us (``isolation_level=None``), usable from any thread."""
    return sqlite3.connect(target, uri=uri, check_same_thread=False, isolation_level=None)


def _set_state(db: sqlite3.Connection, generation: int, manifest: dict[str, Any]) -> None:
    """Record the index's generation and manifest in the store (committed with the caller's transaction)."""
    db.execute("INSERT OR REPLACE INTO index_state VALUES (1, ?, ?)", (generation, json.dumps(manifest, sort_keys=True)))


class ChunkStore:
    """Documents (metadata once per document) and their chunks (text, title).

    A loaded store is read on disk, read-only: SQLite pages come from the OS cache, so memory does not grow
    with the corpus. An ingest into the index it was loaded from writes the file in place (``write_in_place``:
    WAL, one transaction from one checkpoint to the next, ``commit`` ends it with the index's state row), so a
    half-done ingest's rows are rolled back by SQLite if it dies; any other first change copies the store into
    memory (``to_memory``), and ``save`` writes a whole new file. One connection serves every thread, one
    statement at a time (a lock; each is a short indexed lookup), so a loaded index can be queried from a
    thread pool. Chunk ids only grow (``AUTOINCREMENT``): an id deleted is never given again.
    """

    def __init__(self) -> None:
        self.db = _connect(":memory:")
        self.db.executescript(SCHEMA)
        self.on_disk = False
        self.path: Path | None = None  # the file a loaded store reads
        self.in_place = False  # writes go into ``path`` (uncommitted until ``commit``)
        self._lock = threading.RLock()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One change, all or nothing (a savepoint); inside the open transaction of a store written in place."""
        with self._lock:
            if self.on_disk and not self.in_place:
                self.to_memory()
            if self.in_place and not self.db.in_transaction:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("BEGIN IMMEDIATE")  # the write lock, held to the next commit
            self.db.execute("SAVEPOINT change")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK TO change")
                self.db.execute("RELEASE change")
                raise
            self.db.execute("RELEASE change")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of one statement, run under the lock."""
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    @classmethod
    def load(cls, path: Path, *, in_memory: bool = False) -> ChunkStore:
        """Open a saved store read-only on disk (or, with ``in_memory``, copied into memory)."""
        store = cls.__new__(cls)
        store._lock = threading.RLock()
        store.path, store.in_place = Path(path), False
        try:
            store.db = _connect(f"file:{path}?mode=ro", uri=True)
            store.db.execute("SELECT count(*) FROM chunks").fetchone()
        except sqlite3.Error as exc:
            raise MedRAGError(f"cannot read chunk store {path}: {exc}") from exc
        store.on_disk = True
        if in_memory:
            store.to_memory()
        return store

    def state(self) -> tuple[int, dict[str, Any]] | None:
        """The generation and manifest this store was last committed with (None: an older index, or unsaved)."""
        try:
            rows = self._rows("SELECT generation, manifest FROM index_state WHERE id = 1")
        except sqlite3.OperationalError:  # a store saved before the table existed
            return None
        if not rows:
            return None
        try:
            return int(rows[0][0]), dict(json.loads(rows[0][1]))
        except (ValueError, TypeError) as exc:
            raise MedRAGError(f"corrupt index state in chunk store {self.path}: {exc}") from exc

    def to_memory(self) -> None:
        """Work on an in-memory copy from now on (before any change)."""
        with self._lock:
            if self.on_disk:
                if self.in_place and self.db.in_transaction:
                    raise MedRAGError(f"the chunk store {self.path} has changes not yet committed in place")
                memory = _connect(":memory:")
                self.db.backup(memory)
                self._close()
                self.db, self.on_disk, self.in_place = memory, False, False
                self.db.execute("PRAGMA journal_mode = MEMORY")
                self.db.executescript(SCHEMA)  # tables an older index lacks (sentence_vectors, index_state)
                self._modernize()

    def _modernize(self) -> None:
        """Give a chunks table from before ids only grew ``AUTOINCREMENT`` (an in-memory copy; once)."""
        if self._ids_grow():
            return
        self.db.executescript("""
            BEGIN;
            ALTER TABLE chunks RENAME TO chunks_old;
            DROP INDEX IF EXISTS chunks_doc;
            CREATE TABLE chunks (id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL REFERENCES
                documents(doc_id), idx INTEGER NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL);
            INSERT INTO chunks SELECT id, doc_id, idx, title, text FROM chunks_old;
            DROP TABLE chunks_old;
            CREATE INDEX chunks_doc ON chunks(doc_id);
            COMMIT;
        """)

    def _ids_grow(self) -> bool:
        """Whether chunk ids only grow here (``AUTOINCREMENT``: a deleted id is never given again)."""
        sql = self.db.execute("SELECT sql FROM sqlite_master WHERE name = 'chunks'").fetchone()[0]
        return "AUTOINCREMENT" in sql.upper()

    def lives_in(self, directory: str | Path) -> bool:
        """Whether this store reads (and may be written in place) from a file in ``directory``."""
        return self.path is not None and self.path.parent.resolve() == Path(directory).resolve()

    def write_in_place(self) -> None:
        """Write changes into the loaded file itself (WAL), committed by ``commit`` (an ingest into the index it
        was loaded from). A store already in memory, or already in place, stays as it is."""
        with self._lock:
            if not self.on_disk or self.in_place:
                return
            assert self.path is not None
            if not self._ids_grow() or self.state() is None:
                self.to_memory()  # an index of the previous format: rewritten whole at its next save
                return
            self._close()
            self._open_writable(self.path)

    def _open_writable(self, path: Path) -> None:
        try:
            self.db = _connect(str(path))
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")  # durable at ``settle``'s checkpoint, before the manifest
            self.db.execute("PRAGMA cache_size = -65536")  # 64 MB: the B-tree pages random keys touch stay cached
            self.db.execute("PRAGMA busy_timeout = 10000")
        except sqlite3.Error as exc:
            raise MedRAGError(f"cannot write chunk store {path}: {exc}") from exc
        self.path, self.on_disk, self.in_place = Path(path), True, True

    def commit(self, generation: int, manifest: dict[str, Any]) -> None:
        """Commit a store written in place, with the index's new state: the commit point of a checkpoint."""
        with self._lock:
            if not self.in_place:
                raise MedRAGError("only a chunk store written in place commits in place")
            if not self.db.in_transaction:
                self.db.execute("BEGIN IMMEDIATE")
            _set_state(self.db, generation, manifest)
            self.db.execute("COMMIT")

    def save(self, path: Path, generation: int | None = None, manifest: dict[str, Any] | None = None) -> None:
        """Write a consistent snapshot to ``path`` (the caller makes the write atomic), with the index's state
        when given."""
        with self._lock:
            if self.in_place and self.db.in_transaction:
                raise MedRAGError(f"the chunk store {self.path} has changes not yet committed in place: save the "
                                  f"index where it was loaded from first")
            target = sqlite3.connect(str(path), isolation_level=None)
            self.db.backup(target)
        if generation is not None:
            target.executescript(SCHEMA)
            _set_state(target, generation, manifest or {})
        target.execute("PRAGMA journal_mode = DELETE")  # one file, until it is written in place
        target.close()

    def settle(self) -> None:
        """After a commit, fold the WAL back into the file and flush it to disk, leaving one file between
        checkpoints (best effort: a reader in another process keeps it in WAL mode, and the WAL is then only
        checkpointed, still flushed)."""
        with self._lock:
            if self.in_place and not self.db.in_transaction:
                try:
                    self.db.execute("PRAGMA journal_mode = DELETE")
                except sqlite3.OperationalError:
                    self.db.execute("PRAGMA wal_checkpoint(FULL)")

    def id_range(self) -> tuple[int, int]:
        """The lowest and highest chunk id stored (0, -1 when empty)."""
        low, high = self._rows("SELECT min(id), max(id) FROM chunks")[0]
        return (0, -1) if low is None else (int(low), int(high))

    def continue_in(self, path: Path) -> None:
        """After ``save`` to ``path`` (renamed into place): go on reading, and writing in place, from there."""
        with self._lock:
            self._close()
            self._open_writable(path)

    def to_bytes(self) -> bytes:
        """The whole database as bytes (SQLite's serialization), for an encrypted index: no file is written."""
        with self._lock:
            return self.db.serialize()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, what: str = "chunk store") -> ChunkStore:
        """A store in memory from ``to_bytes``'s output; temporary tables and sorts stay in memory too."""
        store = cls.__new__(cls)
        store._lock = threading.RLock()
        store.path, store.in_place = None, False
        store.db = _connect(":memory:")
        try:
            store.db.deserialize(data)
            store.db.execute("PRAGMA temp_store = MEMORY")
            store.db.execute("SELECT count(*) FROM chunks").fetchone()
            store.db.executescript(SCHEMA)  # tables an older index lacks
            store._modernize()
        except sqlite3.Error as exc:
            raise MedRAGError(f"cannot read {what}: {exc}") from exc
        store.on_disk = False
        return store

    @property
    def total_changes(self) -> int:
        """Rows changed through this store's connection (an ingest saves only when it changed something)."""
        return getattr(self, "_changes_before", 0) + self.db.total_changes

    def _close(self) -> None:
        """Close the connection (before another replaces it), keeping its count of changes."""
        self._changes_before = getattr(self, "_changes_before", 0) + self.db.total_changes
        self.db.close()

    def document_hash(self, doc_id: str) -> str | None:
        rows = self._rows("SELECT content_hash FROM documents WHERE doc_id = ?", (doc_id,))
        return rows[0][0] if rows else None

    def add(self, doc: Document, chunks: Sequence[Chunk], source_file: str = "") -> list[int]:
        """Store a document and its chunks; returns the chunks' new row ids."""
        meta = json.dumps(doc.metadata, ensure_ascii=False, sort_keys=True)
        with self._write():
            self.db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
                            (doc.id, doc.content_hash, source_file, doc.metadata.get("source_type"), meta))
            ids = [self.db.execute("INSERT INTO chunks (doc_id, idx, title, text) VALUES (?, ?, ?, ?)",
                                   (doc.id, c.index, c.title, c.text)).lastrowid for c in chunks]
        return ids

    def delete(self, doc_id: str) -> list[int]:
        """Remove a document; returns the row ids of the chunks it had."""
        with self._write():
            ids = [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))]
            self.db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
            self.db.executemany("DELETE FROM sentence_vectors WHERE chunk_id = ?", [(i,) for i in ids])
            self.db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        return ids

    def get(self, ids: Sequence[int]) -> dict[int, Chunk]:
        """The chunks with these row ids (unknown ids are absent)."""
        wanted = [int(i) for i in ids if i >= 0]
        found: dict[int, Chunk] = {}
        for start in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
            part = wanted[start:start + 900]
            rows = self._rows(f"SELECT c.id, c.doc_id, c.idx, c.title, c.text, d.metadata FROM chunks c "
                                   f"JOIN documents d ON d.doc_id = c.doc_id "
                                   f"WHERE c.id IN ({','.join('?' * len(part))})", part)
            for rid, doc_id, idx, title, text, meta in rows:
                found[rid] = Chunk(doc_id=doc_id, index=idx, text=text, title=title,
                                   metadata=json.loads(meta), id=rid)
        return found

    def neighbours(self, chunks: Sequence[Chunk], before: int = 1, after: int = 1) -> dict[int, list[Chunk]]:
        """Each stored chunk's document neighbours, itself included, in document order: the chunks at most
        ``before`` places before and ``after`` places after it (keyed by the chunk's id)."""
        out: dict[int, list[Chunk]] = {}
        for chunk in chunks:
            if chunk.id is None:
                continue
            rows = self._rows("SELECT id, idx, title, text FROM chunks WHERE doc_id = ? AND idx BETWEEN ? AND ? "
                              "ORDER BY idx", (chunk.doc_id, chunk.index - before, chunk.index + after))
            out[chunk.id] = [Chunk(doc_id=chunk.doc_id, index=idx, text=text, title=title, metadata=chunk.metadata,
                                   id=rid) for rid, idx, title, text in rows]
        return out

    def add_sentence_vectors(self, vectors: dict[int, np.ndarray]) -> None:
        """Store each chunk's sentence vectors (rows in ``passage_sentences`` order), as float16."""
        rows = [(int(i), np.ascontiguousarray(v, dtype=np.float16).tobytes()) for i, v in vectors.items()]
        with self._write():
            self.db.executemany("INSERT OR REPLACE INTO sentence_vectors VALUES (?, ?)", rows)

    def sentence_vectors(self, ids: Sequence[int], dim: int) -> dict[int, np.ndarray]:
        """The stored sentence vectors (float32, ``(sentences, dim)``) of these chunks; absent when not stored
        (an index built before they were, or a chunk with none)."""
        wanted = [int(i) for i in ids if i >= 0]
        found: dict[int, np.ndarray] = {}
        for start in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
            part = wanted[start:start + 900]
            try:
                rows = self._rows(f"SELECT chunk_id, vectors FROM sentence_vectors "
                                  f"WHERE chunk_id IN ({','.join('?' * len(part))})", part)
            except sqlite3.OperationalError:  # a store saved before the table existed
                return {}
            found.update((rid, np.frombuffer(blob, dtype=np.float16).reshape(-1, dim).astype(np.float32))
                         for rid, blob in rows if len(blob) % (2 * dim) == 0)
        return found

    def duplicate_of(self, content_hash: str) -> str | None:
        """The id of a stored document with exactly this content, if any."""
        rows = self._rows("SELECT doc_id FROM documents WHERE content_hash = ? LIMIT 1", (content_hash,))
        return rows[0][0] if rows else None

    def file_progress(self, path: str, fingerprint: str) -> tuple[int, bool]:
        """(records already ingested, whether the file is complete) for this version of a source file."""
        rows = self._rows("SELECT records_done, complete FROM files WHERE path = ? AND fingerprint = ?",
                          (path, fingerprint))
        return (int(rows[0][0]), bool(rows[0][1])) if rows else (0, False)

    def set_file_progress(self, path: str, fingerprint: str, records_done: int, complete: bool) -> None:
        with self._write():
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                            (path, fingerprint, records_done, int(complete)))

    def ids(self) -> list[int]:
        """Every chunk's row id, ascending."""
        return [r[0] for r in self._rows("SELECT id FROM chunks ORDER BY id")]

    def count(self) -> int:
        return int(self._rows("SELECT count(*) FROM chunks")[0][0])

    def count_documents(self) -> int:
        return int(self._rows("SELECT count(*) FROM documents")[0][0])

    def summary(self) -> dict[str, Any]:
        """Documents and chunks per source type, for ``medrag info``."""
        rows = self._rows("SELECT d.source_type, count(DISTINCT d.doc_id), count(c.id) FROM documents d "
                               "LEFT JOIN chunks c ON c.doc_id = d.doc_id GROUP BY d.source_type")
        return {str(t): {"documents": n, "chunks": c} for t, n, c in rows}

    def pmids(self) -> set[str]:
        """Every PMID the stored documents carry (citations, PMC sections, snippets ...)."""
        rows = self._rows("SELECT DISTINCT json_extract(metadata, '$.pmid') FROM documents")
        return {str(r[0]) for r in rows if r[0] is not None}
