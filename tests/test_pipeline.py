"""The pipeline end to end on a small real corpus: ingest, save, load, retrieve, ask."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from medrag import MedRAG, MedRAGError, Settings
from medrag.answer import DISCLAIMER
from medrag.embedding import Embedder

from medrag.stores import layout

from .conftest import QUESTION, SMALL_CORPUS, TINY_GPT2



def test_index_layout_and_counts(small_index: Path, rag: MedRAG, tmp_path: Path) -> None:
    manifest = json.loads((small_index / "manifest.json").read_text())
    assert manifest["format"] == 2 and manifest["vectors"]["segments"]  # segmented: every file is named
    assert sorted(p.name for p in small_index.iterdir()) == sorted(
        ["manifest.json", "settings.json", *layout.live_files(manifest)])
    assert Settings.load(small_index / "settings.json") == MedRAG(Settings()).settings  # auto lexical: tantivy
    assert MedRAG(Settings()).settings.lexical.backend == "tantivy" and Settings().lexical.backend == "auto"
    # settings saved before the abstention gate had a coverage term keep the gate they were saved with
    legacy = Path(__file__).parent / "data" / "legacy_index" / "index" / "settings.json"  # the flat form
    older = {k: v for k, v in json.loads(legacy.read_text()).items() if k not in ("abstain_coverage_weight", "threads")}
    (tmp_path / "older.json").write_text(json.dumps(older))
    assert Settings.load(tmp_path / "older.json") == Settings(abstain_coverage_weight=0.0,
                                                              abstain_threshold=0.52).replace(**{
        "embedding.backend": "torch", "embedding.precision": "fp32", "lexical.backend": "bm25s"})
    info = rag.info()
    assert info["chunks"] == info["vectors"] == manifest["chunks"] > info["documents"] > 30
    assert set(info["sources"]) == {"pubmed", "consumer_health"}
    assert info["embedder"] == "all-MiniLM-L6-v2" and info["index_type"] == "Flat"


def test_no_chunk_is_truncated_at_embedding_time(rag: MedRAG, embedder: Embedder) -> None:
    chunks = rag.chunks.get(rag.chunks.ids())
    assert len(chunks) == rag.chunks.count()
    lengths = [embedder.count_tokens(c.embed_text) for c in chunks.values()]
    assert max(lengths) <= embedder.max_seq_length
    assert max(lengths) > embedder.max_seq_length - 40  # long documents really were split near the limit
    by_doc: dict[str, list[int]] = {}
    for c in chunks.values():
        by_doc.setdefault(c.doc_id, []).append(c.index)
        # the title goes in front of every chunk; a title-only citation becomes one untitled chunk
        assert c.embed_text == (f"{c.title}\n{c.text}" if c.title else c.text)
        assert c.title or c.doc_id.startswith("pmid:")
    assert any(len(v) > 1 for v in by_doc.values())
    assert all(sorted(v) == list(range(len(v))) for v in by_doc.values())


def test_load_returns_the_same_top10(small_index: Path, embedder: Embedder) -> None:
    first, second = MedRAG.load(small_index), MedRAG.load(small_index)
    first.embedder = embedder  # the second one loads its embedder from the saved settings
    top = [(h.chunk.id, round(h.score, 4)) for h in first.retrieve(QUESTION, k=10)]
    assert len(top) == 10 and [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    assert top == [(h.chunk.id, round(h.score, 4)) for h in second.retrieve(QUESTION, k=10)]


def test_retrieval_finds_the_relevant_source(rag: MedRAG) -> None:
    hits = rag.retrieve(QUESTION, k=3)
    assert "blood pressure" in (hits[0].chunk.title + hits[0].chunk.text).lower()
    batch = rag.retrieve_batch([QUESTION, "How is influenza prevented?"], k=3)
    assert [h.chunk.id for h in batch[0]] == [h.chunk.id for h in hits]
    assert batch[1][0].chunk.id != hits[0].chunk.id


def test_extractive_answer_cites_real_sources(rag: MedRAG) -> None:
    answer = rag.ask(QUESTION)
    assert answer.generator == "extractive"
    assert answer.text.endswith(DISCLAIMER)
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    assert markers and markers == {c.n for c in answer.citations}
    indexed = {c.doc_id for c in rag.chunks.get(rag.chunks.ids()).values()}
    for c in answer.citations:
        assert c.pmid or c.url
        assert c.text and c.text in answer.retrieved[c.n - 1].title + c.text
        assert answer.retrieved[c.n - 1].doc_id in indexed
    assert len(answer.retrieved) == rag.settings.retrieval.k
    rendered = answer.render()
    assert "Sources:" in rendered and rendered.rstrip().endswith(DISCLAIMER)


def test_language_model_answer_with_a_prompt_over_the_window(rag: MedRAG) -> None:
    # 40 passages of up to 256 tokens are far more than GPT-2's 1,024 positions: packing must cut, not crash
    answer = rag.ask(QUESTION, k=40, generator=str(TINY_GPT2))
    assert answer.generator.startswith("hf:")
    assert answer.text.endswith(DISCLAIMER)
    assert len(answer.retrieved) == 40
    assert all(1 <= c.n <= 40 for c in answer.citations)
    assert answer.invalid_citations >= 0


def test_reingest_is_idempotent(index_copy: Path, embedder: Embedder, tmp_path: Path) -> None:
    rag = MedRAG.load(index_copy)
    rag.embedder = embedder
    before = rag.chunks.count()
    report = rag.ingest(SMALL_CORPUS[:2], save_to=index_copy, progress=False)
    assert report.unchanged_files == 2 and report.documents == report.chunks == 0
    assert MedRAG.load(index_copy).chunks.count() == before
    # the same pages under another file name (so other document ids): stored once, by content hash
    copy = tmp_path / "copy.xml"
    shutil.copy(SMALL_CORPUS[0], copy)
    report = rag.ingest([copy], save_to=index_copy, progress=False)
    assert report.unchanged_files == 0 and report.duplicates > 0 and report.documents == report.chunks == 0
    assert MedRAG.load(index_copy).chunks.count() == before


def test_bad_input_is_a_clear_error(small_index: Path, rag: MedRAG, tmp_path: Path) -> None:
    with pytest.raises(MedRAGError, match="empty question"):
        rag.ask("   ")
    with pytest.raises(MedRAGError, match="no such file"):
        rag.ingest([tmp_path / "missing.xml"])
    with pytest.raises(MedRAGError, match="holds no medrag index"):
        MedRAG.load(tmp_path)
    with pytest.raises(MedRAGError, match="embedder"):
        MedRAG.load(small_index, embedder="pritamdeka/S-PubMedBert-MS-MARCO")
    with pytest.raises(MedRAGError, match="unknown setting"):
        Settings().replace(chunk_size=3)
    with pytest.raises(MedRAGError, match="cannot load generator"):
        rag.ask(QUESTION, generator=str(tmp_path / "no-model"))
