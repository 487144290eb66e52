"""The lexical stores (bm25s and tantivy, one contract) on real BioASQ snippets, rank fusion against hand-computed
values, metadata filters."""
from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from medrag.errors import MedRAGError
from medrag.filters import Filter, journal_key, parse_filter
from medrag.fusion import normalize_scores, rrf, rrf_batch, score_fusion, score_fusion_batch
from medrag.lexical import LEXICAL, BM25Store, LexicalStore

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SNIPPETS = DATA / "corpora" / "pubmed" / "bioasq_snippets.jsonl"
BIOASQ = DATA / "eval" / "bioasq"

pytestmark = pytest.mark.skipif(not SNIPPETS.is_file(), reason="needs ../shared/data")


@pytest.fixture(scope="module")
def snippets() -> list[dict]:
    with open(SNIPPETS, encoding="utf-8") as fh:
        return [json.loads(line) for line, _ in zip(fh, range(2000))]


@pytest.fixture(scope="module")
def ids(snippets: list[dict]) -> np.ndarray:
    return np.arange(len(snippets), dtype=np.int64) * 3 + 100  # ids unlike bm25s's 0..n-1 positions


@pytest.fixture(scope="module", params=["bm25s", "tantivy"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each lexical backend in turn: the contract tests hold for both."""
    return request.param


def make(backend: str) -> LexicalStore:
    """An empty store of ``backend`` with its default options."""
    entry = LEXICAL.get(backend)
    return entry.load().create(entry.options({}))


@pytest.fixture(scope="module")
def store(snippets: list[dict], ids: np.ndarray, backend: str) -> LexicalStore:
    bm25 = make(backend)
    bm25.add(ids, [s["text"] for s in snippets])
    return bm25


@pytest.fixture(scope="module")
def questions(snippets: list[dict]) -> list[tuple[str, str, set[str]]]:
    """(golden file, question, gold PMIDs) for every BioASQ question with a gold PMID among the snippets."""
    pmids = {s["pmid"] for s in snippets}
    found = []
    for path in sorted(BIOASQ.glob("*_golden.json")):
        for q in json.loads(path.read_text())["questions"]:
            gold = {url.rstrip("/").rsplit("/", 1)[-1] for url in q["documents"]}
            if gold & pmids:
                found.append((path.name, q["body"], gold))
    return found


def top_pmids(store: BM25Store, snippets: list[dict], ids: np.ndarray, query: str, k: int = 10) -> list[str]:
    _, hits = store.search([query], k)
    return [snippets[(int(i) - 100) // 3]["pmid"] for i in hits[0] if i >= 0]


# --- BM25Store ------------------------------------------------------------------------------------------


def test_bioasq_gold_snippets_in_top_10(store, snippets, ids, questions) -> None:
    assert "What is the 3D genome browser?" in [q for _, q, _ in questions]  # the 7B1 one
    hits = {q: bool(set(top_pmids(store, snippets, ids, q)) & gold) for _, q, gold in questions}
    early = [q for name, q, _ in questions if name[:3] in ("7B1", "7B3", "7B4")]
    assert len(early) == 5 and all(hits[q] for q in early), hits
    assert len(hits) >= 25 and sum(hits.values()) / len(hits) >= 0.65, hits  # measured 20 of 28


def test_stemming_matters(snippets, ids, store) -> None:
    texts = [s["text"] for s in snippets]
    assert not any("vaccinated" in t.lower() for t in texts)  # only "vaccine" and "vaccination" occur
    stem_docs = {int(ids[i]) for i, t in enumerate(texts) if re.search(r"\bvaccin(e|ation)\b", t.lower())}
    _, hits = store.search(["vaccinated"], 10)
    assert len(stem_docs) >= 3 and set(hits[0][hits[0] >= 0].tolist()) == stem_docs
    plain = BM25Store(stemmer=None)
    plain.add(ids, texts)
    _, hits = plain.search(["vaccinated"], 5)
    assert (hits == -1).all()
    # British plural in the query, singular in the text: "tumours" -> "tumour"
    singular = {int(ids[i]) for i, t in enumerate(texts) if "tumour" in t.lower() and "tumours" not in t.lower()}
    _, hits = store.search(["tumours"], 50)
    assert singular and singular <= set(hits[0].tolist())
    _, hits = plain.search(["tumours"], 50)
    assert not singular & set(hits[0].tolist())


def test_batched_search_equals_one_by_one(store, questions) -> None:
    queries = [q for _, q, _ in questions] + ["the of and", "", "zzzqqq unknownword"]
    scores, hits = store.search(queries, 20)
    assert scores.shape == hits.shape == (len(queries), 20) and hits.dtype == np.int64
    for row, query in enumerate(queries):
        s1, h1 = store.search([query], 20)
        np.testing.assert_array_equal(h1[0], hits[row])
        np.testing.assert_array_equal(s1[0], scores[row])
        assert np.all(np.diff(scores[row][hits[row] >= 0]) <= 0)  # best first
    assert (hits[-3:] == -1).all() and (scores[-3:] == 0).all()  # stop words only, empty, unknown words


def test_fewer_hits_than_k_padded_and_empty_store(backend: str) -> None:
    small = make(backend)
    assert small.search(["anything"], 3)[1].tolist() == [[-1, -1, -1]]
    small.add(np.array([5, 9]), ["Aspirin reduces fever.", "Insulin treats diabetes."])
    scores, hits = small.search(["aspirin dosage", "insulin", "fever diabetes"], 4)
    assert hits.tolist() == [[5, -1, -1, -1], [9, -1, -1, -1], [5, 9, -1, -1]]  # equal scores: smaller id first
    assert scores[2, 0] == scores[2, 1] > 0
    assert small.search(["aspirin"], 0)[1].shape == (1, 0)


def test_add_delete_search_never_returns_deleted(snippets, ids, questions) -> None:
    texts = [s["text"] for s in snippets]
    bm25 = BM25Store()
    bm25.add(ids[:1500], texts[:1500])
    queries = [q for _, q, _ in questions]
    _, before = bm25.search(queries, 10)
    bm25.add(ids[1500:], texts[1500:])  # lazily rebuilt at the next search
    assert bm25.count() == 2000
    deleted = np.unique(np.concatenate([before[before >= 0], ids[::7]]))
    assert bm25.delete(deleted) == len(deleted) and bm25.delete(deleted) == 0
    assert bm25.count() == 2000 - len(deleted)
    _, after = bm25.search(queries, 50)
    assert not np.isin(after, deleted).any() and (after >= 0).any()
    index = bm25._bm25
    bm25.search(queries[:1], 5)
    assert bm25._bm25 is index  # no rebuild without a change
    again = np.array([10_000_000])
    bm25.add(again, [texts[int(np.flatnonzero(ids == deleted[0])[0])]])
    assert 10_000_000 in bm25.search([texts[int(np.flatnonzero(ids == deleted[0])[0])]], 3)[1]
    with pytest.raises(MedRAGError, match="must be new"):
        bm25.add(again, ["duplicate"])
    with pytest.raises(MedRAGError):
        bm25.add(np.array([1, 2]), ["one text"])


@pytest.mark.parametrize("method", ["lucene", "bm25+"])
def test_save_load_round_trip(tmp_path, snippets, ids, questions, method) -> None:
    bm25 = BM25Store(method=method, k1=1.2, b=0.6)
    bm25.add(ids, [s["text"] for s in snippets])
    bm25.delete(ids[::5])  # saved after a pending change: save rebuilds first
    bm25.save(tmp_path / "bm25")
    written = {p.name for p in (tmp_path / "bm25").iterdir()}
    expected = {"bm25.json", "ids.npy", "lengths.npy", "tokens.npy", "params.index.json", "vocab.index.json",
                "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy"}
    assert written == expected | ({"nonoccurrence_array.index.npy"} if method == "bm25+" else set())
    queries = [q for _, q, _ in questions]
    scores, hits = bm25.search(queries, 25)
    for mmap in (False, True):
        loaded = BM25Store.load(tmp_path / "bm25", mmap=mmap)
        assert loaded.params == bm25.params and loaded.count() == bm25.count()
        s2, h2 = loaded.search(queries, 25)
        np.testing.assert_array_equal(h2, hits)
        np.testing.assert_array_equal(s2, scores)
    with pytest.raises(MedRAGError, match="memory-mapped"):
        loaded.save(tmp_path / "bm25")
    loaded.add(np.array([-5 + 10**9]), ["Galcanezumab galcanezumab galcanezumab migraine."])  # mmap'd, then changed
    assert loaded.search(["galcanezumab"], 1)[1][0, 0] == 10**9 - 5


def test_parameters_change_scores(snippets, ids) -> None:
    texts = [s["text"] for s in snippets[:300]]
    a, b = BM25Store(k1=1.5, b=0.75), BM25Store(k1=0.9, b=0.2, method="robertson")
    a.add(ids[:300], texts)
    b.add(ids[:300], texts)
    assert not np.allclose(a.search(["migraine treatment"], 5)[0], b.search(["migraine treatment"], 5)[0])
    with pytest.raises(MedRAGError, match="method"):
        BM25Store(method="tfidf")
    with pytest.raises(MedRAGError):
        BM25Store(b=2.0)
    with pytest.raises(MedRAGError, match="stemmer"):
        BM25Store(stemmer="klingon")


class _Payload:
    """Unpickling this creates a directory: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize("name", ["data.csc.index.npy", "indptr.csc.index.npy", "tokens.npy", "ids.npy"])
@pytest.mark.parametrize("as_npy", [True, False])
def test_load_refuses_pickled_data(tmp_path, name, as_npy) -> None:
    bm25 = BM25Store()
    bm25.add(np.array([1, 2]), ["Aspirin reduces fever.", "Insulin treats diabetes."])
    bm25.save(tmp_path / "bm25")
    marker = tmp_path / "pwned"
    if as_npy:  # a valid .npy file holding an object array
        np.save(tmp_path / "bm25" / name, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    else:  # a bare pickle stream under the .npy name
        (tmp_path / "bm25" / name).write_bytes(pickle.dumps(_Payload(marker)))
    for mmap in (False, True):
        with pytest.raises(MedRAGError, match="cannot read BM25 index"):
            BM25Store.load(tmp_path / "bm25", mmap=mmap)
    assert not marker.exists()


def test_load_refuses_missing_or_inconsistent(tmp_path) -> None:
    with pytest.raises(MedRAGError, match="no readable BM25 index"):
        BM25Store.load(tmp_path / "nothing")
    bm25 = BM25Store()
    bm25.add(np.array([1, 2]), ["Aspirin reduces fever.", "Insulin treats diabetes."])
    bm25.save(tmp_path / "bm25")
    np.save(tmp_path / "bm25" / "ids.npy", np.array([1, 2, 3]))
    with pytest.raises(MedRAGError, match="do not agree"):
        BM25Store.load(tmp_path / "bm25")
    empty = BM25Store()
    empty.save(tmp_path / "empty")
    assert BM25Store.load(tmp_path / "empty").search(["x"], 2)[1].tolist() == [[-1, -1]]


# --- fusion (expected values cross-checked once against ranx 0.3.21's fuse(): rrf, and wsum over min-max) --


A = ([1, 2, 3, 4], [0.9, 0.8, 0.7, 0.1])
B = ([3, 5, 1], [12.0, 9.0, 3.0])


def test_rrf_hand_computed() -> None:
    fused = rrf([A[0], B[0]], k=60)
    assert [d for d, _ in fused] == [1, 3, 2, 5, 4]  # 1 and 3 tie, as do 2 and 5: smaller id first
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 63) == fused[1][1]
    assert dict(fused) == pytest.approx({1: 1 / 61 + 1 / 63, 3: 1 / 63 + 1 / 61, 2: 1 / 62, 5: 1 / 62, 4: 1 / 64})
    weighted = dict(rrf([A[0], B[0]], k=1, weights=[2.0, 0.5]))
    assert weighted == pytest.approx({1: 2 / 2 + 0.5 / 4, 2: 2 / 3, 3: 2 / 4 + 0.5 / 2, 4: 2 / 5, 5: 0.5 / 3})
    assert rrf([[7, -1, 8, 7]], k=0) == [(7, 1.0), (8, pytest.approx(1 / 3))]  # -1 keeps its place, repeats count once
    assert rrf([]) == [] and rrf([[-1, -1]]) == []
    with pytest.raises(MedRAGError):
        rrf([A[0]], weights=[1.0, 2.0])
    with pytest.raises(MedRAGError):
        rrf([A[0]], weights=[-1.0])


def test_score_fusion_minmax_and_zscore() -> None:
    minmax = score_fusion([A, B], weights=[0.7, 0.3])
    assert [d for d, _ in minmax] == [3, 1, 2, 5, 4]
    assert dict(minmax) == pytest.approx({3: 0.825, 1: 0.7, 2: 0.6125, 5: 0.2, 4: 0.0})
    # z-scores (population std); a missing document gets its list's lowest z-score (ranx would give 0)
    zscore = score_fusion([A, B], weights=[0.7, 0.3], normalize="zscore")
    assert [d for d, _ in zscore] == [3, 1, 2, 5, 4]
    expected = {3: 0.4893895, 1: 0.2175870, 2: -0.0073144, 5: -1.1005540, 4: -1.5816243}
    assert dict(zscore) == pytest.approx(expected, abs=1e-6)
    # ids -1 dropped; a one-hit list says "retrieved" (1) vs "not" (0); repeated id keeps its first score
    assert score_fusion([([4, -1], [2.0, 0.0]), ([9, 4, 9], [5.0, 1.0, 0.0])]) == [(4, 1.0), (9, 1.0)]
    assert normalize_scores(np.array([]))[0].size == 0
    with pytest.raises(MedRAGError):
        score_fusion([A], normalize="rank")  # type: ignore[arg-type]
    with pytest.raises(MedRAGError):
        score_fusion([([1, 2], [0.5])])


def test_batched_fusion_equals_per_query(store, snippets, ids, questions) -> None:
    queries = [q for _, q, _ in questions]
    other = BM25Store(k1=0.8, b=0.3, stemmer=None)
    other.add(ids, [s["text"] for s in snippets])
    s1, i1 = store.search(queries, 30)
    s2, i2 = other.search(queries, 30)
    fused = rrf_batch([i1, i2[:, :10]], k=60, limit=15)
    scored = score_fusion_batch([(i1, s1), (i2, s2)], normalize="zscore", limit=15)
    for q in range(len(queries)):
        assert fused[q] == rrf([i1[q], i2[q, :10]])[:15]
        assert scored[q] == score_fusion([(i1[q], s1[q]), (i2[q], s2[q])], normalize="zscore")[:15]
    with pytest.raises(MedRAGError, match="different numbers"):
        rrf_batch([i1, i2[:3]])


# --- filters --------------------------------------------------------------------------------------------


def test_parse_filter_and_match() -> None:
    f = parse_filter("year>=2015,year<=2020,source_type=pubmed|Guideline,journal=Lancet")
    assert f == Filter(2015, 2020, ("pubmed", "guideline"), ("Lancet",)) and not f.is_empty
    assert parse_filter(str(f)) == f
    assert f.matches({"year": 2016, "source_type": "pubmed", "journal": "Lancet (London, England)"})
    assert f.matches({"year": "2020", "source_type": "guideline", "journal": "The Lancet"})
    assert not f.matches({"year": 2021, "source_type": "pubmed", "journal": "Lancet"})
    assert not f.matches({"year": 2016, "source_type": "consumer_health", "journal": "Lancet"})
    assert not f.matches({"year": 2016, "source_type": "pubmed", "journal": "The Lancet. Oncology"})
    assert not f.matches({"source_type": "pubmed", "journal": "Lancet"})  # no year: fails a year bound
    years = parse_filter("year>2015, year<2018")
    assert (years.year_min, years.year_max) == (2016, 2017) and years.matches({"year": "2017 Mar"})
    assert parse_filter("year=2018") == Filter(2018, 2018)
    commas = parse_filter("journal=Sensors (Basel, Switzerland)|BMJ,year>=2000")
    assert commas.journals == ("Sensors (Basel, Switzerland)", "BMJ") and commas.year_min == 2000
    assert commas.matches({"journal": "sensors", "year": 2001})
    assert parse_filter("").is_empty and parse_filter(None).is_empty and Filter().matches({})
    assert journal_key("The  New England journal of medicine") == "new england journal of medicine"


@pytest.mark.parametrize("spec", ["year>=abc", "color=red", "year", "journal>Lancet", "year!=2000",
                                  "source_type=a,source_type=b", "year>2020,year<2019", "journal=a||b",
                                  "source_type=", ",", "year>=2015,,journal=x"])
def test_parse_filter_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(MedRAGError):
        parse_filter(spec)


def test_coverage_weighs_rare_stems_and_misses_unknown_ones(backend: str) -> None:
    bm25 = make(backend)
    texts = ["Metformin lowers blood glucose in type 2 diabetes.", "Blood pressure rises with age.",
             "Exercise lowers blood pressure.", "Blood tests measure glucose."]
    bm25.add(np.array([10, 11, 12, 13]), texts)
    assert bm25.coverage("Metformin lowers glucose?", [10]) == 1.0  # every stem in the passage
    assert bm25.coverage("Metformin lowers glucose?", [11]) == 0.0
    common, rare = bm25.coverage("metformin blood", [11]), bm25.coverage("metformin blood", [10])
    assert rare == 1.0 and 0 < common < 0.5  # "blood" is in every text: it weighs less than "metformin"
    # a word the index never saw weighs most and is never covered: the topic is absent
    assert 0 < bm25.coverage("metformin for Langer mesomelic dysplasia", [10]) < 0.4
    assert bm25.coverage("what is the", [10]) is None  # stop words only: nothing to cover
    assert bm25.coverage("metformin", []) == 0.0
