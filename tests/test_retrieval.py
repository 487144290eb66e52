"""Each retriever (dense, BM25, hybrid fusion) and the metadata filters, on the small real index."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medrag import MedRAG, MedRAGError, Settings
from medrag.embedding import Embedder
from medrag.stores import FaissStore

from .conftest import QUESTION, medrag_cli



def test_bm25_index_is_saved_beside_the_vectors(small_index: Path, rag: MedRAG) -> None:
    assert rag.lexical is not None and rag.lexical.count() == rag.vectors.count() == rag.chunks.count()
    assert any(p.name.startswith("lexical.") and p.is_dir() for p in small_index.iterdir())


def test_each_retriever_ranks_relevant_chunks(rag: MedRAG) -> None:
    results = {mode: rag.retrieve(QUESTION, k=10, retriever=mode) for mode in ("dense", "bm25", "hybrid")}
    for mode, hits in results.items():
        assert len(hits) == 10, mode
        assert "blood pressure" in (hits[0].chunk.title + hits[0].chunk.text).lower(), mode
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True), mode
    dense_ids = {h.chunk.id for h in results["dense"]}
    bm25_ids = {h.chunk.id for h in results["bm25"]}
    hybrid_ids = {h.chunk.id for h in results["hybrid"]}
    assert hybrid_ids <= dense_ids | bm25_ids | {h.chunk.id for h in rag.retrieve(QUESTION, k=100, retriever="dense")}
    assert hybrid_ids & (bm25_ids - dense_ids) or dense_ids == bm25_ids  # fusion brings in lexical-only hits
    # the hybrid score is reciprocal rank fusion: at most 2 / (rrf_k + 1)
    assert results["hybrid"][0].score <= 2 / (rag.settings.retrieval.rrf_k + 1) + 1e-9
    assert all(h.dense is not None for h in results["dense"])


def test_exact_terms_are_found_by_bm25(rag: MedRAG) -> None:
    # a rare exact term: lexical search must rank a chunk containing it first
    chunk = next(iter(rag.chunks.get([1]).values()))
    term = max(chunk.text.split(), key=len).strip(".,;:()")
    hit = rag.retrieve(term, k=1, retriever="bm25")[0]
    assert term.lower() in (hit.chunk.title + " " + hit.chunk.text).lower()


def test_batched_equals_one_by_one(rag: MedRAG) -> None:
    questions = [QUESTION, "influenza vaccination", "kidney disease and uric acid"]
    batch = rag.retrieve_batch(questions, k=5)
    assert [[h.chunk.id for h in hits] for hits in batch] == [[h.chunk.id for h in rag.retrieve(q, k=5)]
                                                             for q in questions]
    # each hit's cosine is to its own question, even when another question found the same chunk
    def cosines(hits: list) -> list[float]:  # batched embedding differs from single in the 7th decimal
        return [round(h.dense, 4) for h in hits]

    assert [cosines(hits) for hits in batch] == [cosines(rag.retrieve(q, k=5)) for q in questions]


def test_filters(rag: MedRAG) -> None:
    pubmed = rag.retrieve(QUESTION, k=5, where="source_type=pubmed")
    assert pubmed and all(h.chunk.metadata["source_type"] == "pubmed" for h in pubmed)
    recent = rag.retrieve("kidney", k=5, where="year>=2026")
    assert recent and all(h.chunk.metadata.get("year", 0) >= 2026 for h in recent)
    assert rag.retrieve(QUESTION, k=5, where="year<=1900,source_type=pubmed") == []
    with pytest.raises(MedRAGError):
        rag.retrieve(QUESTION, where="colour=blue")
    with pytest.raises(MedRAGError, match="unknown retriever"):
        rag.retrieve(QUESTION, retriever="psychic")


def test_dense_only_index_refuses_lexical_modes(tmp_path: Path, embedder: Embedder) -> None:
    rag = MedRAG(Settings.preset("dense"))
    rag.embedder = embedder
    rag.ingest([Path(__file__).resolve().parents[2] / "shared/data/corpora/guidelines/medquad/9_CDC_QA/0000001.xml"],
               save_to=tmp_path / "dense", progress=False)
    loaded = MedRAG.load(tmp_path / "dense")
    loaded.embedder = embedder
    assert loaded.lexical is None and loaded.retrieve("influenza", k=2)
    with pytest.raises(MedRAGError, match="BM25"):
        loaded.retrieve("influenza", retriever="bm25")
    with pytest.raises(MedRAGError, match="lexical"):
        Settings(lexical=False, retriever="hybrid")


def test_cli_retriever_and_filter(small_index: Path) -> None:
    result = medrag_cli("ask", QUESTION, "--index", small_index, "--retriever", "bm25", "--filter",
                        "source_type=consumer_health", "--json", check=True)
    retrieved = json.loads(result.stdout)["retrieved"]
    assert retrieved and all(r["doc_id"].startswith("medquad:") and r["pmid"] is None for r in retrieved)


def test_faiss_store_protocol_for_each_index_type(rag: MedRAG, tmp_path: Path) -> None:
    """add / search / delete / save / load / count on Flat and on HNSW (which cannot remove in place)."""
    from medrag.stores import FaissStore

    ids = np.array(sorted(rag.chunks.get(range(1, 61))), dtype=np.int64)
    vectors = rag.embedder.embed_documents([rag.chunks.get([int(i)])[int(i)].embed_text for i in ids])
    for factory in ("Flat", "HNSW32"):
        store = FaissStore(vectors.shape[1], factory)
        store.add(ids, vectors)
        scores, found = store.search(vectors[:3], 1)
        assert found[:, 0].tolist() == ids[:3].tolist() and np.allclose(scores[:, 0], 1, atol=1e-4)
        assert store.delete(ids[:10]) == 10 and store.count() == 50
        assert not set(store.search(vectors[:10], 5)[1].ravel().tolist()) & set(ids[:10].tolist())
        store.save(tmp_path / f"{factory}.faiss")
        again = FaissStore.load(tmp_path / f"{factory}.faiss")
        assert again.count() == 50
        assert again.search(vectors[20:23], 3)[1].tolist() == store.search(vectors[20:23], 3)[1].tolist()


def _real_vectors(rag: MedRAG, n_copies: int) -> tuple[np.ndarray, np.ndarray]:
    """The small index's real chunk embeddings, each also copied with small Gaussian noise (renormalised)."""
    ids = np.asarray(rag.chunks.ids(), dtype=np.int64)
    base = rag.vectors.vectors_of(ids)
    rng = np.random.default_rng(0)
    copies = [base] + [base + rng.normal(0, 0.01, base.shape).astype(np.float32) for _ in range(n_copies)]
    vectors = np.vstack(copies)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.arange(len(vectors), dtype=np.int64), vectors.astype(np.float32)


def test_ivf_pq_is_exact_until_trained_then_trained_on_its_vectors(rag: MedRAG, tmp_path: Path) -> None:
    """An IVF-PQ store searches exactly (flat) until it holds enough vectors to train, survives a save/load
    in that state, then trains on what it holds; nprobe and k_factor (RFlat) are applied."""
    from medrag.stores import FaissStore
    from medrag.stores.faiss_store import inner, training_size

    ids, vectors = _real_vectors(rag, 8)
    store = FaissStore(vectors.shape[1], "IVF8,PQ16x4,RFlat", nprobe=8, k_factor=8)
    need = training_size(inner(store.index))
    assert need == 39 * 16 and len(vectors) > need  # 4-bit PQ: 16 codebook entries
    store.add(ids[:100], vectors[:100])
    assert store.staged and store.count() == 100
    exact = vectors[:100] @ vectors[:5].T
    assert store.search(vectors[:5], 3)[1][:, 0].tolist() == np.argmax(exact, axis=0).tolist()
    store.save(tmp_path / "staged.faiss")
    again = FaissStore.load(tmp_path / "staged.faiss", "IVF8,PQ16x4,RFlat", nprobe=8, k_factor=8)
    assert again.staged and again.count() == 100
    again.add(ids[100:], vectors[100:])
    assert not again.staged and again.count() == len(vectors)
    assert "Refine" in type(inner(again.index)).__name__
    truth = np.argsort(-(vectors @ vectors[:20].T), axis=0)[:10].T
    found = again.search(vectors[:20], 10)[1]
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.9  # every list probed, candidates re-scored exactly
    again.save(tmp_path / "trained.faiss")
    loaded = FaissStore.load(tmp_path / "trained.faiss", "IVF8,PQ16x4,RFlat", nprobe=1, k_factor=1)
    assert not loaded.staged and loaded.count() == len(vectors)
    coarse = loaded.search(vectors[:20], 10)[1]
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(coarse, truth)]) < recall  # the knobs act


def test_bare_ivf_keeps_ids_deletes_and_reloads(rag: MedRAG, tmp_path: Path) -> None:
    """IVF types keep chunk ids in their own lists (no IndexIDMap2 and its ~180 B/vector reverse map)."""
    import faiss

    from medrag.stores import FaissStore

    ids, vectors = _real_vectors(rag, 8)
    ids = ids * 7 + 3  # ids that are not positions
    store = FaissStore(vectors.shape[1], "IVF8,SQ8", nprobe=8)
    store.add(ids, vectors)
    assert not store.staged and isinstance(faiss.downcast_index(store.index), faiss.IndexIVF)
    assert store.search(vectors[:3], 1)[1][:, 0].tolist() == ids[:3].tolist()
    assert store.delete(ids[:5]) == 5 and store.count() == len(ids) - 5
    assert not set(store.search(vectors[:5], 10)[1].ravel().tolist()) & set(ids[:5].tolist())
    store.save(tmp_path / "ivf.faiss")
    again = FaissStore.load(tmp_path / "ivf.faiss", "IVF8,SQ8", nprobe=8)
    assert again.count() == len(ids) - 5
    assert again.search(vectors[10:13], 3)[1].tolist() == store.search(vectors[10:13], 3)[1].tolist()


def test_hnsw_ef_search_comes_from_settings(small_index: Path, tmp_path: Path) -> None:
    import faiss

    rag = MedRAG.load(small_index)
    ids, vectors = _real_vectors(rag, 0)
    store = FaissStore(vectors.shape[1], "HNSW32", ef_search=7)
    store.add(ids, vectors)
    assert faiss.downcast_index(store.index.index).hnsw.efSearch == 7
    store.save(tmp_path / "h.faiss")
    loaded = FaissStore.load(tmp_path / "h.faiss", "HNSW32", ef_search=99)
    assert faiss.downcast_index(loaded.index.index).hnsw.efSearch == 99


def test_ivf_pq_index_type_through_the_cli(tmp_path: Path) -> None:
    """--index-type IVF...: a small index stays exact (flat) until it can be trained, and says so; the
    saved settings bring the factory string and search knobs back on load."""
    from .conftest import SMALL_CORPUS

    index = tmp_path / "ivf"
    medrag_cli("ingest", *SMALL_CORPUS[:3], "--index", index, "--index-type", "IVF16,PQ48", "--quiet",
               check=True)
    info = medrag_cli("info", "--index", index, check=True).stdout
    assert "IVF16,PQ48 (too few vectors to train yet: searched exactly)" in info
    rag = MedRAG.load(index, nprobe=4)
    assert rag.vectors.factory == "IVF16,PQ48" and rag.vectors.staged and rag.vectors.params["nprobe"] == 4
    hits = rag.retrieve(QUESTION, k=3, retriever="dense")
    assert "blood pressure" in (hits[0].chunk.title + hits[0].chunk.text).lower()
    exact = rag.embedder.embed_documents([h.chunk.embed_text for h in hits]) @ rag.embedder.embed_queries([QUESTION])[0]
    assert np.allclose([h.score for h in hits], exact, atol=1e-4)  # searched exactly while untrained


@pytest.mark.parametrize("fusion", ["rrf", "minmax"])
def test_dense_weight_shares_hybrid_fusion(small_index: Path, embedder: Embedder, fusion: str) -> None:
    questions = [QUESTION, "metformin side effects"]
    ranked = {}
    for weight in (0.0, 1.0):
        rag = MedRAG.load(small_index, fusion=fusion, dense_weight=weight)
        rag.embedder = embedder
        ranked[weight] = [[h.chunk.id for h in hits] for hits in rag.retrieve_batch(questions, 5)]
    rag = MedRAG.load(small_index)
    rag.embedder = embedder
    assert ranked[1.0] == [[h.chunk.id for h in hits] for hits in rag.retrieve_batch(questions, 5, retriever="dense")]
    assert ranked[0.0] == [[h.chunk.id for h in hits] for hits in rag.retrieve_batch(questions, 5, retriever="bm25")]
    with pytest.raises(MedRAGError, match="dense_weight"):
        Settings(dense_weight=1.5)
