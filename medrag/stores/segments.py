"""Vector segments: an index's vectors as immutable segment files plus one fresh segment, written incrementally.

The Lucene/LSM idea. New vectors go into a *fresh* segment in memory; a checkpoint writes only it, as a new
file, and the manifest names the live segments. Sealed segments are never changed: a deletion of one of
their vectors is a *tombstone* (its id, in a small ``tombstones.N.npy``), skipped at search. A search asks
every segment for its best ``k`` plus the tombstones in its id range, drops the tombstoned ids and merges by
score. Ids only grow (the chunk store's ``AUTOINCREMENT``), so each segment holds one id range, a fresh
segment's ids are above every sealed one's, and a tombstone finds its segment by range.

An index type that needs training (IVF, PQ) stages its first vectors flat, exact (``FaissStore``); once the
staged segments together hold enough vectors, they are absorbed into the fresh segment, which trains on them
(once). From then on every new fresh segment is a copy of the trained, empty index (``template``, saved once
beside the segments), so all segments share one coarse quantizer and codebook and their scores compare.

``merge`` (``medrag compact``, and an ingest in the background when segments pile up) rewrites adjacent
segments as one, without their tombstoned vectors. Sealed segments are opened memory-mapped where the
backend can (FAISS IVF lists: ``IO_FLAG_MMAP``), so they cost page cache, not resident memory.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medrag.errors import MedRAGError
from medrag.fileio import link_or_copy
from medrag.stores.layout import write_file

log = logging.getLogger(__name__)


@dataclass
class Segment:
    """One sealed segment: its file (in ``directory``), its open store and the id range it holds."""

    file: str
    directory: Path
    store: Any
    first: int
    last: int
    count: int  # vectors in the file, tombstoned ones included

    def entry(self) -> dict[str, Any]:
        """Its line in the manifest."""
        return {"file": self.file, "first": self.first, "last": self.last, "count": self.count}


class Segments:
    """A vector store (``VectorStore`` protocol) over sealed segment files and one fresh in-memory segment.

    ``backend`` is the store class (``FaissStore``), ``options`` its options. Adds and deletes come from one
    thread while nothing searches; searches may run from several threads.
    """

    def __init__(self, backend: Any, options: Any, dim: int, threads: int = 0, *,
                 segments: list[Segment] | None = None, tombstones: np.ndarray | None = None,
                 template: bytes | None = None, template_file: str | None = None, fresh: Any = None) -> None:
        self.backend, self.options, self.threads = backend, options, threads
        self._dim = dim
        self.sealed: list[Segment] = list(segments or [])
        self.tombstones = np.unique(np.asarray(tombstones if tombstones is not None else [], dtype=np.int64))
        self.template = template  # the trained, empty index (serialized); None until trained / not needed
        self.template_file = template_file
        if self.template is None and hasattr(backend, "template"):
            trained = [s for s in self.sealed if not getattr(s.store, "staged", False)]
            if trained:  # an index saved before templates were: taken from a segment, read whole once
                self.template = backend.open(trained[-1].directory / trained[-1].file, options, threads).template()
        self.fresh = fresh if fresh is not None else self._new_fresh()
        self._offered: MergedSegment | None = None
        self._pending: set[str] = set()
        self.tombstones_file: str | None = None  # the file the last checkpoint wrote them to
        self._tombstones_saved = True  # whether ``tombstones`` is what that file holds
        self._fresh_range = (0, -1)  # the fresh segment's lowest and highest id
        self._lock = threading.RLock()

    # -- the protocol --------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    @property
    def suffix(self) -> str:
        return str(self.backend.suffix)

    @property
    def factory(self) -> str:
        return str(getattr(self.fresh, "factory", ""))

    @property
    def params(self) -> dict[str, Any]:
        return dict(getattr(self.fresh, "params", {}))

    @property
    def staged(self) -> bool:
        """True while the index type still needs training (its vectors are searched exactly)."""
        return bool(getattr(self.fresh, "staged", False))

    def _new_fresh(self) -> Any:
        if self.template is not None:
            return self.backend.from_template(self.template, self.options, self.threads)
        return self.backend.create(self._dim, self.options, self.threads)

    def count(self) -> int:
        return sum(s.count for s in self.sealed) + self.fresh.count() - len(self.tombstones)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) and self.sealed and int(ids.min()) <= self.sealed[-1].last:
            raise MedRAGError(f"vector ids must grow: {int(ids.min())} is not above the sealed segments' "
                              f"{self.sealed[-1].last}")
        with self._lock:
            self.fresh.add(ids, vectors)
            if len(ids):
                low, high = self._fresh_range
                self._fresh_range = (int(ids.min()) if high < low else low, max(high, int(ids.max())))
            if self.staged and self.sealed and any(getattr(s.store, "staged", False) for s in self.sealed):
                self._absorb_staged()
            if self.template is None and not self.staged and hasattr(self.fresh, "template"):
                self.template = self.fresh.template()
                self.template_file = None  # written at the next checkpoint

    def _absorb_staged(self) -> None:
        """Once the staged (flat) segments and the fresh one hold enough vectors to train the index type, move
        them all into one fresh segment, which trains on them."""
        staged = [s for s in self.sealed if getattr(s.store, "staged", False)]
        need = self.fresh.training_need()
        if sum(s.count for s in staged) + self.fresh.count() < need:
            return
        parts = [s.store.vectors() for s in staged] + [self.fresh.vectors()]
        ids = np.concatenate([p[0] for p in parts])
        vectors = np.vstack([p[1] for p in parts])
        keep = ~np.isin(ids, self.tombstones)
        log.info("training the index on %d vectors from %d staged segments", int(keep.sum()), len(parts))
        fresh = self.backend.create(self._dim, self.options, self.threads)
        order = np.argsort(ids[keep], kind="stable")
        fresh.add(ids[keep][order], vectors[keep][order])
        dropped = {s.file for s in staged}
        low = min(s.first for s in staged)
        self.tombstones = self.tombstones[self.tombstones < low]
        self.sealed = [s for s in self.sealed if s.file not in dropped]
        self.fresh = fresh
        self._fresh_range = (int(ids.min()), self._fresh_range[1])
        self._tombstones_saved = False

    def delete(self, ids: np.ndarray) -> int:
        """Remove these vectors (ids the chunk store held): from the fresh segment at once, from sealed ones as
        tombstones."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if not len(ids):
            return 0
        with self._lock:
            top = self.sealed[-1].last if self.sealed else -1
            removed = self.fresh.delete(ids[ids > top]) if (ids > top).any() else 0
            old = ids[ids <= top]
            old = old[self._in_sealed(old) & ~np.isin(old, self.tombstones)]
            if len(old):
                self.tombstones = np.union1d(self.tombstones, old)
                self._tombstones_saved = False
            return int(removed) + len(old)

    def _in_sealed(self, ids: np.ndarray) -> np.ndarray:
        inside = np.zeros(len(ids), dtype=bool)
        for s in self.sealed:
            inside |= (ids >= s.first) & (ids <= s.last)
        return inside

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        n = len(queries)
        if k <= 0 or self.count() == 0:
            return np.zeros((n, max(k, 0)), np.float32), np.full((n, max(k, 0)), -1, np.int64)
        scores, found = [], []
        for store, dead in self._searched():
            s, i = store.search(queries, k + dead)
            if dead:
                gone = np.isin(i, self.tombstones)
                s, i = np.where(gone, -np.inf, s), np.where(gone, -1, i)
            scores.append(s)
            found.append(i)
        if len(scores) == 1 and not np.isinf(scores[0]).any():
            return scores[0][:, :k], found[0][:, :k]
        s, i = np.hstack(scores), np.hstack(found)
        s = np.where(i < 0, -np.inf, s)
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        s, i = np.take_along_axis(s, order, 1), np.take_along_axis(i, order, 1)
        i = np.where(np.isinf(s), -1, i)
        s = np.where(np.isinf(s), 0.0, s).astype(np.float32)
        if s.shape[1] < k:
            s = np.pad(s, ((0, 0), (0, k - s.shape[1])))
            i = np.pad(i, ((0, 0), (0, k - i.shape[1])), constant_values=-1)
        return s, i

    def _searched(self) -> list[tuple[Any, int]]:
        """(store, tombstones in its range) for every segment with vectors left, the fresh one last."""
        out = []
        for s in self.sealed:
            dead = int(((self.tombstones >= s.first) & (self.tombstones <= s.last)).sum())
            if s.count > dead:
                out.append((s.store, dead))
        if self.fresh.count():
            out.append((self.fresh, 0))
        return out

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids (decoded: exact for flat types; zeros for ids not stored), in order."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros((len(ids), self._dim), np.float32)
        live = ~np.isin(ids, self.tombstones)
        for store in [s.store for s in self.sealed] + [self.fresh]:
            if not store.count():
                continue
            held, vectors = store.vectors()
            order = np.argsort(held, kind="stable")
            at = np.clip(np.searchsorted(held[order], ids), 0, len(held) - 1)
            hit = (held[order][at] == ids) & live
            out[hit] = vectors[order[at[hit]]]
        return out

    # -- persistence ---------------------------------------------------------------------------------
    def checkpoint(self, directory: Path, generation: int, write: Any) -> dict[str, Any]:
        """Write what changed since the last checkpoint into ``directory`` with ``write(name, writer)`` (an
        atomic file write): the fresh segment as a new sealed one, the tombstones, the template once; the files
        of an index saved elsewhere before are linked (or copied) in. Returns the manifest's ``vectors``."""
        with self._lock:
            self._install(directory, write)
            for n, s in enumerate(self.sealed):
                if s.directory.resolve() != directory.resolve():
                    name = _free(directory, s.file, f"vectors.{generation}.l{n}.{self.suffix}")
                    write(name, lambda path, src=s.directory / s.file: link_or_copy(src, path))  # never over a live file
                    s.file, s.directory = name, directory
            if self.fresh.count():
                first, last = self._fresh_range
                name = _free(directory, f"vectors.{generation}.{self.suffix}", f"vectors.{generation}.f.{self.suffix}")
                write(name, self.fresh.save)
                store = _open(self.backend, directory / name, self.options, self.threads, mmap=True)
                self.sealed.append(Segment(name, directory, store, first, last, self.fresh.count()))
                self.fresh, self._fresh_range = self._new_fresh(), (0, -1)
            if self.template is not None and (self.template_file is None
                                              or not (directory / self.template_file).exists()):
                name, data = f"template.{generation}.{self.suffix}", self.template
                write(name, lambda path: path.write_bytes(data))
                self.template_file = name
            if not len(self.tombstones):
                self.tombstones_file = None
            elif (not self._tombstones_saved or self.tombstones_file is None
                  or not (directory / self.tombstones_file).exists()):
                name, dead = f"tombstones.{generation}.npy", self.tombstones.copy()
                write(name, lambda path: _write_npy(path, dead))
                self.tombstones_file = name
            self._tombstones_saved = True
            return {"segments": [s.entry() for s in self.sealed], "tombstones": self.tombstones_file,
                    "template": self.template_file}

    @classmethod
    def open(cls, directory: Path, entry: dict[str, Any], backend: Any, options: Any, dim: int,
             threads: int = 0) -> Segments:
        """The segments a manifest's ``vectors`` entry names, sealed ones memory-mapped."""
        segments = []
        for item in entry.get("segments", []):
            try:
                file, first, last, count = str(item["file"]), int(item["first"]), int(item["last"]), int(item["count"])
            except (KeyError, TypeError, ValueError) as exc:
                raise MedRAGError(f"corrupt index manifest in {directory}: bad segment {item!r}") from exc
            if "/" in file or file.startswith("."):
                raise MedRAGError(f"corrupt index manifest in {directory}: bad segment file {file!r}")
            store = _open(backend, directory / file, options, threads, mmap=True)
            segments.append(Segment(file, directory, store, first, last, count))
        tombstones = None
        if entry.get("tombstones"):
            tombstones = _read_npy(directory / str(entry["tombstones"]))
        template = None
        if entry.get("template"):
            template = (directory / str(entry["template"])).read_bytes()
        found = cls(backend, options, dim, threads, segments=segments, tombstones=tombstones, template=template,
                    template_file=entry.get("template"))
        found.tombstones_file = entry.get("tombstones")
        return found

    def whole(self) -> Any:
        """Every live vector in one in-memory store of the backend (an encrypted index saves it so); the
        segments themselves are left as they are."""
        with self._lock:
            if not self.sealed:
                return self.fresh
            if not hasattr(self.backend, "merge"):
                raise MedRAGError(f"the {self.backend.__name__} vector store cannot merge segments (no merge)")
            copy = (self.backend.open_bytes(self.fresh.to_bytes(), self.options, self.threads) if self.fresh.count()
                    else None)  # a merge consumes what it merges
            return self._merge_stores(self.sealed, copy)[0]

    def _merge_stores(self, segments: list[Segment], extra: Any = None) -> tuple[Any, np.ndarray]:
        """Adjacent ``segments`` (read whole, not mapped) and ``extra`` merged into one store without the
        tombstones in their range; the store and those tombstones."""
        with self._lock:  # a snapshot; the merge itself runs unlocked (in a background thread during an ingest)
            dead = self.tombstones[(self.tombstones >= segments[0].first) & (self.tombstones <= segments[-1].last)]
            stores = [_open(self.backend, s.directory / s.file, self.options, self.threads) for s in segments]
        return self.backend.merge([*stores, *([extra] if extra is not None else [])], dead, self._dim, self.options,
                                  self.threads), dead

    def plan_merge(self, factor: int) -> list[Segment]:
        """The adjacent segments to merge next: the newest run of at least ``factor`` segments each smaller than
        ``factor`` times the run's smallest (a log-structured merge), or nothing."""
        run: list[Segment] = []
        if not hasattr(self.backend, "merge"):
            return run
        for s in reversed(self.sealed):
            if run and s.count - self._dead_in(s) > factor * min(r.count - self._dead_in(r) for r in run):
                break
            run.insert(0, s)
        return run if len(run) >= factor else []

    def _dead_in(self, s: Segment) -> int:
        return int(((self.tombstones >= s.first) & (self.tombstones <= s.last)).sum())

    def merge(self, segments: list[Segment]) -> MergedSegment | None:
        """Merge these adjacent sealed segments into one, without their tombstoned vectors, and write it as a new
        file beside them (it takes the place of theirs at the next ``checkpoint``; until then they stay live).
        Safe to run in a background thread while adds, deletes and searches go on."""
        if len(segments) < 1 or not hasattr(self.backend, "merge"):
            return None
        with self._lock:
            directory = segments[0].directory
            name = f"vectors.{segments[0].first}-{segments[-1].last}.merged.{self.suffix}"
            self._pending |= {name, f".{name}.tmp"}  # a checkpoint's sweep leaves them alone
        merged, dead = self._merge_stores(segments)
        write_file(directory, name, merged.save)
        return MergedSegment([s.file for s in segments], segments[0].first, segments[-1].last, name, directory,
                             merged.count(), dead)

    def offer(self, merged: MergedSegment | None) -> None:
        """Hand a finished merge over: the next ``checkpoint`` puts it in place of the segments it was made of."""
        with self._lock:
            self._offered = merged

    @property
    def merging(self) -> bool:
        """Whether a merge is offered and not yet installed."""
        return self._offered is not None

    def pending_files(self) -> set[str]:
        """Files merges are writing or have written but not installed yet (not to be swept)."""
        with self._lock:
            return set(self._pending)

    def _install(self, directory: Path, write: Any) -> None:
        """Put the offered merge in place of its segments (dropped if they changed meanwhile)."""
        merged, self._offered = self._offered, None
        if merged is None:
            return
        self._pending -= {merged.file, f".{merged.file}.tmp"}
        files = [s.file for s in self.sealed]
        at = files.index(merged.files[0]) if merged.files[0] in files else -1
        if at < 0 or files[at:at + len(merged.files)] != merged.files:
            log.info("a merge of %d segments was overtaken; dropped", len(merged.files))
            return
        if merged.directory.resolve() != directory.resolve():
            name = _free(directory, merged.file, f"vectors.{merged.first}-{merged.last}.merged.l.{self.suffix}")
            write(name, lambda path: link_or_copy(merged.directory / merged.file, path))
            merged.file, merged.directory = name, directory
        store = _open(self.backend, directory / merged.file, self.options, self.threads, mmap=True)
        self.sealed[at:at + len(merged.files)] = [Segment(merged.file, directory, store, merged.first, merged.last,
                                                          merged.count)]
        if len(merged.dropped):
            self.tombstones = np.setdiff1d(self.tombstones, merged.dropped)
            self._tombstones_saved = False
        log.info("merged %d segments into %s (%d vectors)", len(merged.files), merged.file, merged.count)


@dataclass
class MergedSegment:
    """A merge's result: which segment files it replaces, its id range, its file, its count, and the
    tombstones it dropped."""

    files: list[str]
    first: int
    last: int
    file: str  # the merged segment's file, written
    directory: Path
    count: int
    dropped: np.ndarray


def _open(backend: Any, path: Path, options: Any, threads: int, *, mmap: bool = False) -> Any:
    """``backend.open``, memory-mapped when asked and the backend can (its ``mmaps``)."""
    if mmap and getattr(backend, "mmaps", False):
        return backend.open(path, options, threads, mmap=True)
    return backend.open(path, options, threads)


def _free(directory: Path, name: str, other: str) -> str:
    """``name``, or ``other`` when a file of that name is already in ``directory`` (never write over a live one)."""
    return name if not (directory / name).exists() else other


def _write_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.asarray(np.load(path, allow_pickle=False), dtype=np.int64).ravel()
    except (OSError, ValueError) as exc:
        raise MedRAGError(f"cannot read tombstones {path}: {exc}") from exc


__all__ = ["MergedSegment", "Segment", "Segments"]
