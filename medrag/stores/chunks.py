"""Chunk texts and metadata in SQLite, beside the vector index; row ids are the vector ids."""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
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
    id INTEGER PRIMARY KEY,
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
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
"""


class ChunkStore:
    """Documents (metadata once per document) and their chunks (text, title).

    A loaded store is read on disk, read-only: SQLite pages come from the OS cache, so memory does not grow
    with the corpus. The first change copies it into memory, so that a half-done ingest never touches the
    saved file; ``save`` writes a consistent snapshot. One connection serves every thread, one statement at a
    time (a lock; each is a short indexed lookup), so a loaded index can be queried from a thread pool.
    """

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.executescript(SCHEMA)
        self.on_disk = False
        self._lock = threading.RLock()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of one statement, run under the lock."""
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    @classmethod
    def load(cls, path: Path, *, in_memory: bool = False) -> ChunkStore:
        """Open a saved store read-only on disk (or, with ``in_memory``, copied into memory)."""
        store = cls.__new__(cls)
        store._lock = threading.RLock()
        try:
            store.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            store.db.execute("SELECT count(*) FROM chunks").fetchone()
        except sqlite3.Error as exc:
            raise MedRAGError(f"cannot read chunk store {path}: {exc}") from exc
        store.on_disk = True
        if in_memory:
            store.to_memory()
        return store

    def to_memory(self) -> None:
        """Work on an in-memory copy from now on (before any change)."""
        with self._lock:
            if self.on_disk:
                memory = sqlite3.connect(":memory:", check_same_thread=False)
                self.db.backup(memory)
                self.db.close()
                self.db, self.on_disk = memory, False
                self.db.executescript(SCHEMA)  # tables an older index lacks (sentence_vectors)

    def save(self, path: Path) -> None:
        """Write a consistent snapshot to ``path`` (the caller makes the write atomic)."""
        target = sqlite3.connect(str(path))
        with self._lock, target:
            self.db.backup(target)
        target.close()

    def to_bytes(self) -> bytes:
        """The whole database as bytes (SQLite's serialization), for an encrypted index: no file is written."""
        with self._lock:
            return self.db.serialize()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, what: str = "chunk store") -> ChunkStore:
        """A store in memory from ``to_bytes``'s output; temporary tables and sorts stay in memory too."""
        store = cls.__new__(cls)
        store._lock = threading.RLock()
        store.db = sqlite3.connect(":memory:", check_same_thread=False)
        try:
            store.db.deserialize(data)
            store.db.execute("PRAGMA temp_store = MEMORY")
            store.db.execute("SELECT count(*) FROM chunks").fetchone()
            store.db.executescript(SCHEMA)  # tables an older index lacks
        except sqlite3.Error as exc:
            raise MedRAGError(f"cannot read {what}: {exc}") from exc
        store.on_disk = False
        return store

    @property
    def total_changes(self) -> int:
        """Rows changed through this store's connection (an ingest saves only when it changed something)."""
        return self.db.total_changes

    def document_hash(self, doc_id: str) -> str | None:
        rows = self._rows("SELECT content_hash FROM documents WHERE doc_id = ?", (doc_id,))
        return rows[0][0] if rows else None

    def add(self, doc: Document, chunks: Sequence[Chunk], source_file: str = "") -> list[int]:
        """Store a document and its chunks; returns the chunks' new row ids."""
        meta = json.dumps(doc.metadata, ensure_ascii=False, sort_keys=True)
        with self._lock, self.db:
            self.db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
                            (doc.id, doc.content_hash, source_file, doc.metadata.get("source_type"), meta))
            ids = [self.db.execute("INSERT INTO chunks (doc_id, idx, title, text) VALUES (?, ?, ?, ?)",
                                   (doc.id, c.index, c.title, c.text)).lastrowid for c in chunks]
        return ids

    def delete(self, doc_id: str) -> list[int]:
        """Remove a document; returns the row ids of the chunks it had."""
        with self._lock, self.db:
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

    def add_sentence_vectors(self, vectors: dict[int, np.ndarray]) -> None:
        """Store each chunk's sentence vectors (rows in ``passage_sentences`` order), as float16."""
        rows = [(int(i), np.ascontiguousarray(v, dtype=np.float16).tobytes()) for i, v in vectors.items()]
        with self._lock, self.db:
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
        with self._lock, self.db:
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
