"""Segmented indexes (issue 18): checkpoints write only what changed, deletions are tombstones, compaction is
atomic (SIGKILL included), a commit lost between the chunk store and the manifest rolls forward, IVF segments
train once and are memory-mapped, and an index of the previous format loads and converts."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from medrag import MedRAG, MedRAGError, Settings
from medrag.embedding import Embedder
from medrag.stores import FaissStore, layout
from medrag.stores.faiss_store import FaissOptions
from medrag.stores.segments import Segments

from .conftest import QUESTION, SMALL_CORPUS, medrag_cli, tree_digest
from .test_ingest import _state

QUESTIONS = [QUESTION, "How is anemia treated?", "What causes asthma attacks?", "Is diabetes hereditary?"]


def _manifest(index: Path) -> dict:
    return json.loads((index / "manifest.json").read_text())


def _pipeline(embedder: Embedder, **changes: object) -> MedRAG:
    rag = MedRAG(Settings().replace(**{"ingest.merge_segments": 0, **changes}))
    rag.embedder = embedder
    return rag


def _dense(rag: MedRAG, embedder: Embedder) -> list[list[tuple[int, float]]]:
    rag.embedder = embedder
    return [[(h.chunk.id, round(h.score, 5)) for h in hits]
            for hits in rag.retrieve_batch(QUESTIONS, 10, retriever="dense", rerank=False)]


def _agree(a: list[list[tuple[int, float]]], b: list[list[tuple[int, float]]], embedder: Embedder) -> bool:
    """Two indexes of the same texts embedded in other batches: the same neighbours on an fp32 path; on a bf16
    one (not bit-reproducible across batch shapes) a near-tie may swap."""
    if embedder.precision == "fp32":
        return [[i for i, _ in q] for q in a] == [[i for i, _ in q] for q in b]
    return all(len({i for i, _ in x} & {i for i, _ in y}) >= 9 for x, y in zip(a, b))


def _files(index: Path) -> dict[str, tuple[int, int]]:
    """Each file's (inode, mtime): what a rewrite would change."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in index.iterdir() if p.is_file()}


def test_checkpoints_write_only_new_segments(embedder: Embedder, tmp_path: Path) -> None:
    index = tmp_path / "index"
    first = _pipeline(embedder, **{"ingest.checkpoint_chunks": 4})
    first.ingest(SMALL_CORPUS[:10], save_to=index, progress=False)
    before, files = _manifest(index), _files(index)
    assert before["format"] == 2 and len(before["vectors"]["segments"]) >= 2

    again = MedRAG.load(index)
    again.embedder = embedder
    again.ingest(SMALL_CORPUS[10:], save_to=index, progress=False)
    after = _manifest(index)
    assert after["generation"] > before["generation"]
    # the earlier segments and the chunk store are the same files, untouched; only new segments were added
    old = [s["file"] for s in before["vectors"]["segments"]]
    assert [s["file"] for s in after["vectors"]["segments"]][:len(old)] == old
    assert len(after["vectors"]["segments"]) > len(old)
    assert all(_files(index)[name] == files[name] for name in old)
    assert after["files"]["chunks"] == before["files"]["chunks"]  # written in place, one transaction a checkpoint
    assert sorted(p.name for p in index.iterdir()) == sorted(["manifest.json", "settings.json", *layout.live_files(after)])

    direct = _pipeline(embedder)
    direct.ingest(SMALL_CORPUS, progress=False)
    loaded = MedRAG.load(index)
    assert _state(loaded) == _state(direct)
    assert _agree(_dense(loaded, embedder), _dense(direct, embedder), embedder)


def _built(embedder: Embedder, index: Path, checkpoint: int = 8) -> MedRAG:
    rag = _pipeline(embedder, **{"ingest.checkpoint_chunks": checkpoint})
    rag.ingest(SMALL_CORPUS, save_to=index, progress=False)
    return rag


def test_deletions_are_tombstones_until_compact(embedder: Embedder, tmp_path: Path) -> None:
    index = tmp_path / "index"
    _built(embedder, index)
    rag = MedRAG.load(index)
    rag.embedder = embedder
    doomed = sorted({c.doc_id for c in rag.chunks.get(rag.chunks.ids()).values()})[::3]
    gone = [i for i, c in rag.chunks.get(rag.chunks.ids()).items() if c.doc_id in doomed]
    rag.begin_write(index)
    assert sum(rag.delete_document(d) for d in doomed) == len(doomed)
    rag.save(index)
    manifest = _manifest(index)
    assert manifest["vectors"]["tombstones"] and np.load(index / manifest["vectors"]["tombstones"]).tolist() == sorted(gone)

    loaded = MedRAG.load(index)
    assert loaded.vectors.count() == loaded.chunks.count() == manifest["chunks"]
    before = _dense(loaded, embedder)
    assert not {i for hits in before for i, _ in hits} & set(gone)
    segments = len(manifest["vectors"]["segments"])
    assert segments > 2

    result = medrag_cli("compact", "--index", index, check=True)
    assert f"{segments} vector segments -> 1" in result.stdout
    compacted = _manifest(index)
    assert len(compacted["vectors"]["segments"]) == 1 and not compacted["vectors"]["tombstones"]
    assert sorted(p.name for p in index.iterdir()) == sorted(["manifest.json", "settings.json",
                                                              *layout.live_files(compacted)])
    after = MedRAG.load(index)
    assert after.vectors.count() == after.chunks.count() == loaded.chunks.count()
    assert _dense(after, embedder) == before


def test_a_commit_lost_before_the_manifest_rolls_forward(embedder: Embedder, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunk store's commit is the commit point: a death before manifest.json is replaced loses nothing."""
    index = tmp_path / "index"
    rag = _pipeline(embedder, **{"ingest.checkpoint_chunks": 10_000})
    rag.ingest(SMALL_CORPUS[:4], save_to=index, progress=False)
    generation = _manifest(index)["generation"]

    def die(directory: Path, manifest: dict) -> None:
        raise KeyboardInterrupt  # the process dies right after the chunk store committed

    monkeypatch.setattr(layout, "publish", die)
    with pytest.raises(KeyboardInterrupt):
        rag.ingest(SMALL_CORPUS[4:], save_to=index, progress=False)
    monkeypatch.undo()
    assert _manifest(index)["generation"] == generation  # the file still names the older generation
    loaded = MedRAG.load(index)
    direct = _pipeline(embedder)
    direct.ingest(SMALL_CORPUS, progress=False)
    assert _state(loaded) == _state(direct) and loaded.vectors.count() == loaded.chunks.count()
    loaded.save(index)  # the next save publishes its manifest and sweeps
    assert _manifest(index)["generation"] == generation + 2
    assert sorted(p.name for p in index.iterdir()) == sorted(["manifest.json", "settings.json",
                                                              *layout.live_files(_manifest(index))])


def test_sigkill_during_compaction_leaves_a_whole_index(embedder: Embedder, tmp_path: Path) -> None:
    index = tmp_path / "index"
    _built(embedder, index, checkpoint=4)
    rag = MedRAG.load(index)
    rag.begin_write(index)
    for doc in sorted({c.doc_id for c in rag.chunks.get(rag.chunks.ids()).values()})[::4]:
        rag.delete_document(doc)
    rag.save(index)
    del rag
    want_state = _state(MedRAG.load(index))
    want_hits = _dense(MedRAG.load(index), embedder)
    segments = len(_manifest(index)["vectors"]["segments"])
    assert segments > 5

    script = Path(sys.executable).parent / "medrag"
    outcomes = []
    for delay in (0.3, 0.8, 1.3, 1.8, 2.5, 3.5):
        generation = _manifest(index)["generation"]
        process = subprocess.Popen([str(script), "compact", "--index", str(index)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(60)
        outcomes.append(_manifest(index)["generation"] > generation)
        loaded = MedRAG.load(index)  # whatever the kill interrupted, the last commit loads, whole
        assert loaded.vectors.count() == loaded.chunks.count()
        assert _state(loaded) == want_state and _dense(loaded, embedder) == want_hits
        if outcomes[-1]:
            break
    assert not outcomes[0]  # at least the first kill landed before the compaction committed
    medrag_cli("compact", "--index", index, check=True)
    final = MedRAG.load(index)
    assert len(final.vectors.sealed) == 1 and not len(final.vectors.tombstones)
    assert _state(final) == want_state and _dense(final, embedder) == want_hits
    assert not [p for p in index.iterdir() if p.name.startswith(".")]


def test_ivf_segments_train_once_share_a_template_and_are_memory_mapped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(1200, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    options = FaissOptions(index_type="IVF4,SQ8", nprobe=4)
    segments = Segments(FaissStore, options, 32, threads=1)
    need = segments.fresh.training_need()
    assert need == 39 * 4

    def write(name: str, writer: object) -> None:
        layout.write_file(tmp_path, name, writer)  # type: ignore[arg-type]

    generation = 0
    for start in range(0, 1200, 100):  # a checkpoint every 100 vectors
        segments.add(np.arange(start, start + 100) + 1, vectors[start:start + 100])
        generation += 1
        entry = segments.checkpoint(tmp_path, generation, write)
        if start + 100 < need:
            assert segments.staged and entry["template"] is None  # flat, exact, until enough to train on
    assert not segments.staged and entry["template"]
    # the staged segments were absorbed into the first trained one; every later one is a copy of the template
    assert len(entry["segments"]) == 12 - need // 100
    opened = Segments.open(tmp_path, entry, FaissStore, options, 32, threads=1)
    ivf = faiss.extract_index_ivf(opened.sealed[-1].store.index)
    assert type(faiss.downcast_InvertedLists(ivf.invlists)).__name__ == "OnDiskInvertedLists"  # memory-mapped
    assert opened.count() == 1200
    found = opened.search(vectors[::50], 1)[1][:, 0]
    assert found.tolist() == (np.arange(0, 1200, 50) + 1).tolist()

    opened.delete(np.arange(1, 41))  # tombstones in the first segment
    ids = opened.search(vectors[:40], 5)[1]
    assert not set(ids.ravel().tolist()) & set(range(1, 41)) and opened.count() == 1160
    merged = opened.merge(list(opened.sealed))
    assert merged is not None and merged.count == 1160  # IVF lists moved as they are, tombstones dropped
    opened.offer(merged)
    entry = opened.checkpoint(tmp_path, generation + 1, write)
    assert len(entry["segments"]) == 1 and entry["tombstones"] is None
    again = Segments.open(tmp_path, entry, FaissStore, options, 32, threads=1)
    assert np.array_equal(again.search(vectors[100:140], 5)[1], opened.search(vectors[100:140], 5)[1])
    with pytest.raises(MedRAGError, match="must grow"):
        again.add(np.array([5]), vectors[:1])


def test_segments_merge_in_the_background_during_an_ingest(embedder: Embedder, tmp_path: Path) -> None:
    index = tmp_path / "index"
    rag = _pipeline(embedder, **{"ingest.checkpoint_chunks": 4, "ingest.merge_segments": 3})
    rag.ingest(SMALL_CORPUS, save_to=index, progress=False)
    manifest = _manifest(index)
    checkpoints = manifest["generation"]
    assert checkpoints > 8 and len(manifest["vectors"]["segments"]) < checkpoints / 2
    assert any(".merged." in s["file"] for s in manifest["vectors"]["segments"])
    direct = _pipeline(embedder)
    direct.ingest(SMALL_CORPUS, progress=False)
    loaded = MedRAG.load(index)
    assert _state(loaded) == _state(direct) and _agree(_dense(loaded, embedder), _dense(direct, embedder), embedder)


def test_previous_format_loads_and_compact_converts_it(tmp_path: Path) -> None:
    legacy = Path(__file__).parent / "data" / "legacy_index" / "index"
    index = Path(shutil.copytree(legacy, tmp_path / "index"))
    assert _manifest(index)["format"] == 1
    before = MedRAG.load(index)
    torch_embedder = before.embedder
    hits = _dense(before, torch_embedder)
    digest = tree_digest(index)
    assert tree_digest(index) == digest  # loading it wrote nothing

    medrag_cli("compact", "--index", index, check=True)
    manifest = _manifest(index)
    assert manifest["format"] == 2 and len(manifest["vectors"]["segments"]) == 1
    after = MedRAG.load(index)
    assert _state(after) == _state(before) and _dense(after, torch_embedder) == hits
    assert not [p for p in index.iterdir() if p.name.endswith((".bm25", ".faiss")) and ".1." in p.name
                and p.name not in layout.live_files(manifest)]


def test_saving_a_loaded_index_elsewhere_links_its_segments(embedder: Embedder, tmp_path: Path) -> None:
    """A save into another directory hard-links the sealed segments (no copy), and over another index never
    writes over one of its live files."""
    first, second = tmp_path / "first", tmp_path / "second"
    _built(embedder, first, checkpoint=16)
    other = _pipeline(embedder, **{"ingest.checkpoint_chunks": 16})
    other.ingest(SMALL_CORPUS[:6], save_to=second, progress=False)
    loaded = MedRAG.load(first)
    want = _state(loaded)
    loaded.save(tmp_path / "copy")
    segment = _manifest(first)["vectors"]["segments"][0]["file"]
    assert (tmp_path / "copy" / segment).stat().st_ino == (first / segment).stat().st_ino  # linked, not copied
    before = set(layout.live_files(_manifest(second)))
    assert segment in before  # the same segment name lives in both indexes
    loaded.save(second)  # over another index: a new generation of it, written beside its live files
    assert _state(MedRAG.load(second)) == want == _state(MedRAG.load(tmp_path / "copy"))
    assert not set(layout.live_files(_manifest(second))) & before  # none of them was written over


def test_whole_leaves_the_segments_as_they_are(tmp_path: Path) -> None:
    """An encrypted save takes every live vector in one store; the segments (the fresh one too) stay intact."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    segments = Segments(FaissStore, FaissOptions(), 16, threads=1)
    segments.add(np.arange(1, 201), vectors[:200])
    segments.checkpoint(tmp_path, 1, lambda name, writer: layout.write_file(tmp_path, name, writer))
    segments.add(np.arange(201, 301), vectors[200:])
    segments.delete(np.arange(1, 11))
    whole = segments.whole()
    assert whole.count() == segments.count() == 290 and segments.fresh.count() == 100
    assert np.array_equal(whole.search(vectors[150:160], 3)[1], segments.search(vectors[150:160], 3)[1])
