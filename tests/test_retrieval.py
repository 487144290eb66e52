"""Each retriever (dense, BM25, hybrid fusion) and the metadata filters, on the small real index."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medrag import MedRAG, MedRAGError, Settings
from medrag.embedding import Embedder

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
    assert results["hybrid"][0].score <= 2 / (rag.settings.rrf_k + 1) + 1e-9
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
