"""FAISS vector store built from a factory string, inner product over unit vectors, ids = chunk rows."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import faiss
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

#: faiss recommends at least this many training points per centroid (IVF lists, PQ codebook entries)
POINTS_PER_CENTROID = 39


def _factory(dim: int, factory: str) -> faiss.Index:
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise MedRAGError(f"invalid FAISS index type {factory!r}: {str(exc).splitlines()[0]}") from exc
    ivf = faiss.try_extract_index_ivf(index)
    for layer in [*_layers(index), *([faiss.downcast_index(ivf)] if ivf is not None else [])]:
        if hasattr(layer, "do_polysemous_training"):  # ~40 s of training for codes search does not use
            layer.do_polysemous_training = False
    return index


def _wrap(index: faiss.Index) -> faiss.Index:
    """The index with chunk-row ids: IVF indexes keep ids in their lists; others go inside an ``IndexIDMap2``
    (whose reverse map costs ~180 bytes a vector, which is why IVF is left bare)."""
    return index if isinstance(faiss.downcast_index(index), faiss.IndexIVF) else faiss.IndexIDMap2(index)


def inner(index: faiss.Index) -> faiss.Index:
    """The index inside an id map (or ``index`` itself when it has none). The caller keeps ``index`` alive:
    the result does not own its memory."""
    concrete = faiss.downcast_index(index)
    return faiss.downcast_index(concrete.index) if isinstance(concrete, faiss.IndexIDMap) else concrete


def flat_vectors(flat: faiss.IndexFlat) -> np.ndarray:
    """A copy of the vectors a flat index holds, in insertion order."""
    return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(-1, flat.d).astype(np.float32)


def training_size(index: faiss.Index) -> int:
    """Vectors an untrained index is trained on: enough for its coarse lists and PQ codebooks."""
    need = 0
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        need = max(need, POINTS_PER_CENTROID * ivf.nlist)
    for layer in _layers(index):
        pq = getattr(layer, "pq", None)
        if pq is not None:
            need = max(need, POINTS_PER_CENTROID * (1 << pq.nbits))
    return max(need, 1)


def _layers(index: faiss.Index) -> list[faiss.Index]:
    """``index`` and the indexes it wraps (id map, refine, pre-transform), outermost first."""
    out, seen = [], faiss.downcast_index(index)
    while seen is not None:
        out.append(seen)
        inner = getattr(seen, "base_index", None) or getattr(seen, "index", None)
        seen = faiss.downcast_index(inner) if isinstance(inner, faiss.Index) else None
    return out


class FaissOptions(BaseModel):
    """The FAISS store's options: the factory string (build-time) and three query-time knobs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index_type: str = Field("Flat", description="a FAISS factory string: Flat, HNSW32, IVF1024,PQ48, "
                                                "IVF4096,PQ48,RFlat ...")
    ef_search: int = Field(64, gt=0, description="HNSW: candidates explored per query (recall against speed)")
    nprobe: int = Field(16, gt=0, description="IVF: inverted lists visited per query")
    k_factor: int = Field(4, gt=0, description="RFlat refinement: approximate candidates re-scored exactly, "
                                               "per result")


class FaissStore:
    """A FAISS index (``"Flat"``, ``"HNSW32"``, ``"IVF4096,PQ48"`` ...) wrapped in an id map.

    An index type that needs training (IVF, PQ) keeps its vectors in an exact flat index until
    ``training_size`` of them have been added, then is trained on those and takes them all; until then
    (and when saved so) it searches exactly. ``ef_search`` (HNSW), ``nprobe`` (IVF) and ``k_factor``
    (``RFlat`` refinement) are query-time knobs.
    """

    Options = FaissOptions
    suffix = "faiss"  # the file name's ending in an index directory
    mmaps = True  # ``open(..., mmap=True)``: IVF lists memory-mapped

    def __init__(self, dim: int, factory: str = "Flat", *, threads: int = 0, ef_search: int = 64,
                 nprobe: int = 16, k_factor: int = 4) -> None:
        faiss.omp_set_num_threads(threads or os.cpu_count() or 1)
        self.factory = factory
        self.params = {"efSearch": ef_search, "nprobe": nprobe, "k_factor": k_factor}
        self.index = _wrap(_factory(dim, factory))
        self._staged: faiss.IndexIDMap2 | None = None  # exact index for the vectors before training
        if not self.index.is_trained:
            self._staged = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._doomed: set[int] = set()  # ids to drop from an index type that cannot remove (HNSW)
        self._needs_training = not self.index.is_trained
        self._tune()

    @classmethod
    def create(cls, dim: int, options: FaissOptions, threads: int = 0) -> FaissStore:
        """An empty store for ``dim``-dimensional vectors."""
        return cls(dim, options.index_type, threads=threads, ef_search=options.ef_search, nprobe=options.nprobe,
                   k_factor=options.k_factor)

    @classmethod
    def open(cls, path: Path, options: FaissOptions, threads: int = 0, *, mmap: bool = False) -> FaissStore:
        """A saved store, with the query-time knobs of ``options``; ``mmap``: an IVF index's lists stay on disk,
        memory-mapped (``IO_FLAG_MMAP``; the store is then read-only: never added to or deleted from)."""
        return cls.load(path, options.index_type, threads=threads, ef_search=options.ef_search,
                        nprobe=options.nprobe, k_factor=options.k_factor, mmap=mmap)

    @classmethod
    def from_template(cls, data: bytes, options: FaissOptions, threads: int = 0) -> FaissStore:
        """An empty store from ``template()``'s bytes: trained like the store that made them."""
        return cls.open_bytes(data, options, threads, what="FAISS index template")

    def template(self) -> bytes | None:
        """This trained index emptied, serialized (coarse quantizer, codebooks); None for a type that needs no
        training, or while still staged."""
        if self._staged is not None or not self._needs_training:
            return None
        self._purge()
        empty = faiss.clone_index(self.index)
        empty.reset()
        return faiss.serialize_index(empty).tobytes()

    def training_need(self) -> int:
        """Vectors the index type is trained on (0: it needs no training)."""
        return training_size(inner(self.index)) if self._needs_training else 0

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of everything stored (decoded: exact only for flat types)."""
        self._purge()
        live = faiss.downcast_index(self._live)
        if isinstance(live, faiss.IndexIDMap):
            ids = faiss.vector_to_array(live.id_map).astype(np.int64)
            base = inner(live)
            vectors = flat_vectors(base) if isinstance(base, faiss.IndexFlat) else base.reconstruct_n(0, base.ntotal)
            return ids, np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        ivf = faiss.extract_index_ivf(live)
        lists = ivf.invlists
        ids = np.concatenate([faiss.rev_swig_ptr(lists.get_ids(n), lists.list_size(n)).copy()
                              for n in range(ivf.nlist) if lists.list_size(n)] or [np.zeros(0, np.int64)])
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        return ids.astype(np.int64), live.reconstruct_batch(ids.astype(np.int64)).reshape(-1, self.dim)

    @classmethod
    def merge(cls, stores: list[FaissStore], dead: np.ndarray, dim: int, options: FaissOptions,
              threads: int = 0) -> FaissStore:
        """One store with every vector of ``stores`` (opened without ``mmap``; consumed) but the ids ``dead``:
        codes moved as they are where FAISS can (``merge_from``: flat, IVF, PQ), else vectors re-added."""
        out = cls.create(dim, options, threads)
        dead = np.asarray(dead, dtype=np.int64)
        trained = [s for s in stores if s.count() and not s.staged]
        if trained and len(trained) == len([s for s in stores if s.count()]):
            base = trained[0]._live
            try:
                for other in trained[1:]:
                    base.merge_from(other._live, 0)
            except RuntimeError:
                pass  # this type cannot merge (HNSW): its vectors are re-added below
            else:
                if len(dead):
                    base.remove_ids(dead)
                out.index, out._staged = base, None
                out._tune()
                return out
        parts = [s.vectors() for s in stores if s.count()]
        if parts:
            ids = np.concatenate([p[0] for p in parts])
            vectors = np.vstack([p[1] for p in parts])
            keep = ~np.isin(ids, dead)
            order = np.argsort(ids[keep], kind="stable")
            out.add(ids[keep][order], vectors[keep][order])
        return out

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def staged(self) -> bool:
        """True while an index type that needs training still holds its vectors in an exact flat index."""
        return self._staged is not None

    @property
    def _live(self) -> faiss.Index:
        return self._staged if self._staged is not None else self.index

    def _tune(self) -> None:
        """Apply the query-time parameters to whichever layers have them."""
        for layer in _layers(self.index):
            if hasattr(layer, "hnsw"):
                layer.hnsw.efSearch = int(self.params["efSearch"])
            if isinstance(layer, faiss.IndexRefine):
                layer.k_factor = float(self.params["k_factor"])
        ivf = faiss.try_extract_index_ivf(inner(self.index))
        if ivf is not None:
            ivf.nprobe = int(self.params["nprobe"])

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise MedRAGError(f"vectors of shape {vectors.shape} do not fit an index of dimension {self.dim}")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self._staged is not None:  # stage only what training needs; the rest goes straight into the index
            need = training_size(inner(self.index))
            room = max(0, need - self._staged.ntotal)
            self._staged.add_with_ids(vectors[:room], ids[:room])
            if self._staged.ntotal < need:
                return
            self._train()
            vectors, ids = vectors[room:], ids[room:]
            if not len(ids):
                return
        self.index.add_with_ids(vectors, ids)

    def _train(self) -> None:
        """Train the real index on the staged vectors and move them all into it."""
        staged, self._staged = self._staged, None
        ids = faiss.vector_to_array(staged.id_map).astype(np.int64)
        vectors = flat_vectors(inner(staged))
        log.info("training %s on %d vectors", self.factory, len(vectors))
        self.index.train(vectors)
        self.index.add_with_ids(vectors, ids)
        self._tune()

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self._purge()
        if self.count() == 0 or k <= 0:
            n = len(queries)
            return np.zeros((n, max(k, 0)), np.float32), np.full((n, max(k, 0)), -1, np.int64)
        return self._live.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def delete(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        try:
            return int(self._live.remove_ids(ids))
        except RuntimeError:  # e.g. HNSW: rebuilt without them once, at the next search, count or save
            present = set(faiss.vector_to_array(self.index.id_map).tolist())
            before = len(self._doomed)
            self._doomed.update(int(i) for i in ids if int(i) in present)
            return len(self._doomed) - before

    def _purge(self) -> None:
        """Rebuild an index that cannot remove vectors without the ids deleted from it."""
        if not self._doomed:
            return
        all_ids = faiss.vector_to_array(self.index.id_map)
        keep = np.array([i for i in all_ids if int(i) not in self._doomed], dtype=np.int64)
        vectors = np.vstack([self.index.reconstruct(int(i)) for i in keep]) if len(keep) else None
        log.info("rebuilding the %s index without %d deleted vectors", self.factory, len(self._doomed))
        fresh = _wrap(_factory(self.dim, self.factory))
        if vectors is not None:
            fresh.add_with_ids(vectors, keep)
        self.index, self._doomed = fresh, set()
        self._tune()

    def count(self) -> int:
        self._purge()
        return int(self._live.ntotal)

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (the caller makes the write atomic); staged vectors are saved flat."""
        self._purge()
        faiss.write_index(self._live, str(path))

    def to_bytes(self) -> np.ndarray:
        """The index serialized in memory (what ``save`` writes), for an encrypted index."""
        self._purge()
        return faiss.serialize_index(self._live)

    @classmethod
    def load(cls, path: Path, factory: str | None = None, *, threads: int = 0, ef_search: int = 64,
             nprobe: int = 16, k_factor: int = 4, mmap: bool = False) -> FaissStore:
        """Read a saved index; ``factory`` is the type it was built as (a flat file of an untrained type is
        its staged vectors); ``mmap``: IVF lists memory-mapped, read-only."""
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap else 0)
            ivf = faiss.try_extract_index_ivf(index) if mmap else None
            if ivf is not None and isinstance(faiss.downcast_InvertedLists(ivf.invlists), faiss.OnDiskInvertedLists):
                faiss.downcast_InvertedLists(ivf.invlists).prefetch_nthread = 0  # 32 threads a search: slower
        except RuntimeError as exc:
            raise MedRAGError(f"cannot read FAISS index {path}: {str(exc).splitlines()[0]}") from exc
        return cls._wrap_loaded(index, factory, threads=threads, ef_search=ef_search, nprobe=nprobe,
                                k_factor=k_factor)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, factory: str | None = None, *, threads: int = 0,
                   ef_search: int = 64, nprobe: int = 16, k_factor: int = 4,
                   what: str = "FAISS index") -> FaissStore:
        """``load`` from ``to_bytes``'s output, in memory."""
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:
            raise MedRAGError(f"cannot read {what}: {str(exc).splitlines()[0]}") from exc
        return cls._wrap_loaded(index, factory, threads=threads, ef_search=ef_search, nprobe=nprobe,
                                k_factor=k_factor)

    @classmethod
    def open_bytes(cls, data: bytes | bytearray | memoryview, options: FaissOptions, threads: int = 0,
                   what: str = "FAISS index") -> FaissStore:
        """``open`` from ``to_bytes``'s output (an encrypted index's decrypted vectors)."""
        return cls.from_bytes(data, options.index_type, threads=threads, ef_search=options.ef_search,
                              nprobe=options.nprobe, k_factor=options.k_factor, what=what)

    @classmethod
    def _wrap_loaded(cls, index: faiss.Index, factory: str | None, *, threads: int, ef_search: int, nprobe: int,
                     k_factor: int) -> FaissStore:
        """A store around an index just read (``factory``: the type it was built as)."""
        base = inner(index)
        store = cls(index.d, factory or "Flat", threads=threads, ef_search=ef_search, nprobe=nprobe,
                    k_factor=k_factor)
        store.factory = factory or type(base).__name__.removeprefix("Index")
        if store.staged and isinstance(base, faiss.IndexFlat):
            store._staged = index  # saved before it had enough vectors to train
        else:
            store.index, store._staged = index, None
            store._tune()
        return store
