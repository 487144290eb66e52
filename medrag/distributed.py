"""Distributed ingest on Ray: Ray Data parses, chunks and embeds shards of the sources on a pool of actors
(one model each) and writes each shard's vectors to disk; the ordinary ingest then merges them into a medrag
index, taking every chunk's vector from the shards instead of the model.

The merge re-reads and re-chunks the sources on the driver (parsing runs at thousands of documents/s, embedding
at tens), so duplicates, replacements, deletions, chunk ids and checkpoints are exactly the local engine's: the
result is an ordinary index, and Flat search over it returns what the local engine's would. Shards are keyed
by file version, record range and the embedding settings, written atomically and kept until the merge has
saved: a killed run re-embeds only the shards it had not written.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from medrag import sources
from medrag.chunking import Chunker
from medrag.documents import Deletion
from medrag.embedding import Embedder
from medrag.errors import MedRAGError
from medrag.fileio import write_npy
from medrag.ingest import IngestReport, Target, check_sources, file_key, ingest, read_source, tag_source
from medrag.settings import CHUNK_FIELDS, Settings

log = logging.getLogger(__name__)

SHARDS = ".ray-shards"  # inside the index directory, removed once the merge has saved
RECORDS_PER_SHARD = 2000  # records per shard: what a killed run can lose
EMBED_BATCH = 1024  # texts per actor call: sentence-transformers sorts them by length into batches of 64


@dataclass(frozen=True)
class Shard:
    """A record range ``[start, stop)`` of one source file."""

    key: str
    path: str
    format: str | None
    source_type: str | None
    start: int
    stop: int
    options: str = "{}"  # the recipe's reader options, as JSON (Ray rows carry plain values)


def text_key(text: str) -> tuple[int, int]:
    """A chunk text's 128-bit identity, as two unsigned 64-bit halves of its SHA-1."""
    digest = hashlib.sha1(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big")


def plan(checked: Sequence[tuple[sources.Source, int]], settings: Settings,
         records_per_shard: int = RECORDS_PER_SHARD) -> list[Shard]:
    """Shards covering every record of the checked sources, in source order; shards made under other
    ``CHUNK_FIELDS`` (the settings a chunk's text and vector depend on) are not reused."""
    if records_per_shard <= 0:
        raise MedRAGError(f"records per shard must be positive, not {records_per_shard}")
    config = "\0".join(str(settings.get(f)) for f in CHUNK_FIELDS)
    shards = []
    for src, n_records in checked:
        path, fingerprint = file_key(src)
        for start in range(0, max(n_records, 1), records_per_shard):
            stop = min(n_records, start + records_per_shard)
            key = hashlib.sha1(f"{config}\0{path}\0{fingerprint}\0{start}\0{stop}".encode()).hexdigest()[:24]
            shards.append(Shard(key, str(src.path), src.format, src.source_type, start, stop,
                                json.dumps(src.options, sort_keys=True, default=str)))
    return shards


# -- on the workers -------------------------------------------------------------------------------
_PARTS: dict[str, tuple[Embedder, Chunker]] = {}


def _parts(settings: dict[str, Any]) -> tuple[Embedder, Chunker]:
    """One embedder and chunker per worker process and settings."""
    key = repr(sorted(settings.items()))
    if key not in _PARTS:
        built = Settings(**settings)
        embedder = Embedder.from_settings(built)
        _PARTS[key] = embedder, Chunker.for_embedder(embedder, built)
    return _PARTS[key]


def chunk_shard(row: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The distinct chunk texts of one shard, each row tagged with the shard and its number of texts."""
    shard = Shard(**{f: row[f] for f in Shard.__dataclass_fields__})
    src = sources.Source(Path(shard.path), shard.format, shard.source_type, json.loads(shard.options))
    chunker = _parts(settings)[1]
    texts: dict[tuple[int, int], str] = {}
    for position, record in enumerate(read_source(src, Settings(**settings))):
        if position >= shard.stop:
            break
        if position < shard.start or isinstance(record, Deletion):
            continue
        for chunk in chunker.split(tag_source(record, src)):
            texts.setdefault(text_key(chunk.embed_text), chunk.embed_text)
    return [{"shard": shard.key, "total": len(texts), "hi": hi, "lo": lo, "text": text}
            for (hi, lo), text in texts.items()]


class EmbedActor:
    """A Ray actor holding one embedding model; embeds batches of chunk texts."""

    def __init__(self, settings: dict[str, Any], threads: int) -> None:
        self.embedder = _parts({**settings, "threads": threads})[0]
        self.embedder.model  # noqa: B018 - load once, when the actor starts

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**{k: batch[k] for k in ("shard", "total", "hi", "lo")},
                "vector": self.embedder.embed_documents([str(t) for t in batch["text"]])}


# -- on the driver --------------------------------------------------------------------------------
class ShardStore:
    """The shard files of one index: ``KEY.vectors.npy`` (float32) and ``KEY.keys.npy`` (uint64 pairs; written
    last, so its presence means the shard is complete). No pickle."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def done(self, key: str) -> bool:
        return (self.directory / f"{key}.keys.npy").exists()

    def write(self, key: str, keys: np.ndarray, vectors: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, array in (("vectors", vectors), ("keys", keys)):
            write_npy(self.directory / f"{key}.{name}.npy", array)

    def lookup(self, keys: Iterable[str], dim: int) -> ShardVectors:
        return ShardVectors(self.directory, list(keys), dim)


class ShardVectors:
    """Chunk text → vector, over the shards' files (vectors memory-mapped; keys sorted for binary search)."""

    def __init__(self, directory: Path, shard_keys: Sequence[str], dim: int) -> None:
        keys = [np.load(directory / f"{k}.keys.npy", allow_pickle=False).reshape(-1, 2) for k in shard_keys]
        self._vectors = [np.load(directory / f"{k}.vectors.npy", allow_pickle=False, mmap_mode="r")
                         for k in shard_keys]
        self.dim = dim
        all_keys = np.concatenate(keys) if keys else np.zeros((0, 2), np.uint64)
        shard = np.concatenate([np.full(len(k), i, np.int32) for i, k in enumerate(keys)]) if keys else \
            np.zeros(0, np.int32)
        row = np.concatenate([np.arange(len(k), dtype=np.int64) for k in keys]) if keys else np.zeros(0, np.int64)
        order = np.lexsort((all_keys[:, 1], all_keys[:, 0]))
        self._hi, self._lo = all_keys[order, 0], all_keys[order, 1]
        self._shard, self._row = shard[order], row[order]

    def __len__(self) -> int:
        return len(self._hi)

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            hi, lo = text_key(text)
            left, right = np.searchsorted(self._hi, hi, "left"), np.searchsorted(self._hi, hi, "right")
            match = left + np.flatnonzero(self._lo[left:right] == lo)
            if not len(match):
                raise MedRAGError("a chunk has no vector in the Ray shards (the sources changed during the run?): "
                                  "run the ingest again")
            j = int(match[0])
            out[i] = self._vectors[self._shard[j]][self._row[j]]
        return out


def _init_ray(address: str | None, cpus: int | None) -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MedRAGError("the ray engine needs Ray: pip install 'medrag[ray]'") from exc
    if not log.isEnabledFor(logging.DEBUG):  # Ray Data narrates every execution at INFO
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=cpus or os.cpu_count() or 1, object_store_memory=256 * 1024**2, **kwargs)
    return ray


def embed_shards(shards: Sequence[Shard], store: ShardStore, settings: Settings, *, workers: int,
                 threads: int, address: str | None = None, progress: bool = True) -> int:
    """Chunk and embed the shards ``store`` lacks on Ray; returns how many were embedded."""
    todo = [s for s in shards if not store.done(s.key)]
    if not todo:
        return 0
    ray = _init_ray(address, None if address else workers * threads)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    options = settings.to_dict()
    ds = (ray.data.from_items([asdict(s) for s in todo], override_num_blocks=len(todo))
          # chunking is cheap beside embedding: it reserves no CPU, so the actors can hold every core
          .flat_map(partial(chunk_shard, settings=options), num_cpus=0,
                    compute=ray.data.TaskPoolStrategy(size=max(1, workers)))
          .map_batches(EmbedActor, fn_constructor_kwargs={"settings": options, "threads": threads},
                       batch_size=EMBED_BATCH, batch_format="numpy", num_cpus=threads,
                       compute=ray.data.ActorPoolStrategy(size=workers)))
    buffers: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    written: set[str] = set()
    bar = tqdm(total=len(todo), desc="embedding shards (ray)", unit="shard", disable=not progress)
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for key in np.unique(batch["shard"]):
            rows = batch["shard"] == key
            keys = np.stack([batch["hi"][rows], batch["lo"][rows]], axis=1).astype(np.uint64)
            buffers.setdefault(str(key), []).append((keys, np.asarray(batch["vector"][rows], np.float32)))
            total = int(batch["total"][rows][0])
            if sum(len(k) for k, _ in buffers[str(key)]) == total:
                parts = buffers.pop(str(key))
                store.write(str(key), np.concatenate([k for k, _ in parts]), np.concatenate([v for _, v in parts]))
                written.add(str(key))
                bar.update(1)
    for shard in todo:  # shards without a single chunk (deletions only, or empty files)
        if shard.key not in written and shard.key not in buffers:
            store.write(shard.key, np.zeros((0, 2), np.uint64), np.zeros((0, 0), np.float32))
            bar.update(1)
    bar.close()
    if buffers:
        raise MedRAGError(f"{len(buffers)} shards came back incomplete from Ray: run the ingest again")
    return len(todo)


def ingest_ray(rag: Target, paths: Iterable[str | Path], save_to: str | Path, *, address: str | None = None,
               workers: int | None = None, threads: int | None = None, skip_bad: bool = False,
               progress: bool = True, pubmed: sources.PubMedQuery | None = None,
               records_per_shard: int = RECORDS_PER_SHARD) -> IngestReport:
    """``medrag.ingest.ingest`` with the embedding done by Ray: ``workers`` actors of ``threads`` CPU threads each
    (local default: one worker per two cores), on a local Ray instance or the cluster at ``address``."""
    save_to = Path(save_to)
    expanded = sources.expand(list(paths), pubmed, progress)
    precheck = IngestReport()
    checked = check_sources(expanded, precheck, skip_bad, progress, rag.settings)
    cpus = os.cpu_count() or 1
    threads = threads or (2 if cpus >= 2 else 1)
    workers = workers or max(1, cpus // threads)
    shards = plan(checked, rag.settings, records_per_shard)
    store = ShardStore(save_to / SHARDS)
    started = time.perf_counter()
    embedded = embed_shards(shards, store, rag.settings, workers=workers, threads=threads, address=address,
                            progress=progress)
    shard_seconds = time.perf_counter() - started
    log.info("%d shards embedded on Ray, %d kept from an earlier run", embedded, len(shards) - embedded)
    lookup = store.lookup((s.key for s in shards), rag.embedder.dim)
    report = ingest(rag, save_to=save_to, progress=progress, embed=lookup, checked=checked)
    report.skipped = precheck.skipped
    report.shards, report.shard_seconds = embedded, shard_seconds
    shutil.rmtree(store.directory, ignore_errors=True)  # the index has saved: the shards are spent
    return report

