"""The house: backends plug in by dotted path, settings are typed and nested, old indexes still answer the same,
a loaded index serves many threads, and ``medrag --help`` stays light."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from medrag import Answer, MedRAG, MedRAGError, Settings
from medrag.registry import registry

from .conftest import MEDQUAD, QUESTION, medrag_cli

LEGACY = Path(__file__).parent / "data" / "legacy_index"
STORE_SPECS = ("faiss", "tests.plugins:NumpyStore")


# -- the store contract, for the built-in store and a toy one from outside the package --------------------------
@pytest.mark.parametrize("spec", STORE_SPECS)
def test_store_contract(spec: str, tmp_path: Path) -> None:
    backend = registry("store").get(spec)
    store = backend.load().create(16, backend.options({}), 1)
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(40, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(100, 140, dtype=np.int64)
    store.add(ids, vectors)
    assert store.count() == 40
    scores, found = store.search(vectors[:3], 5)
    assert found.shape == (3, 5) and found[:, 0].tolist() == [100, 101, 102]  # each vector finds itself first
    exact = np.argsort(-(vectors[:3] @ vectors.T), axis=1)[:, :5] + 100
    assert found.tolist() == exact.tolist() and np.all(np.diff(scores, axis=1) <= 1e-6)
    assert store.delete(np.array([100, 999])) == 1 and store.count() == 39
    assert 100 not in store.search(vectors[:1], 5)[1]
    store.save(tmp_path / f"store.{store.suffix}")
    again = backend.load().open(tmp_path / f"store.{store.suffix}", backend.options({}), 1)
    assert again.count() == 39 and again.search(vectors[1:2], 5)[1].tolist() == store.search(vectors[1:2], 5)[1].tolist()
    _, empty = backend.load().create(16, backend.options({}), 1).search(vectors[:2], 3)
    assert empty.tolist() == [[-1, -1, -1]] * 2


def test_plugins_by_dotted_path_end_to_end(tmp_path: Path) -> None:
    """A toy store, generator and reader, each one file outside medrag, chosen by name in settings/recipes."""
    toy = tmp_path / "notes.toy"
    toy.write_text("\n".join(json.dumps({"id": i, "title": f"Topic {i}", "body": body}) for i, body in enumerate([
        "High blood pressure often has no symptoms. It is found by measuring blood pressure.",
        "Anemia is a lack of healthy red blood cells. It can make you feel tired and weak.",
    ])) + "\n")
    recipe = tmp_path / "toy.toml"
    recipe.write_text(f'[[source]]\npath = "{toy}"\nformat = "tests.plugins:read_toy"\n'
                      f'[[source]]\npath = "{MEDQUAD / "4_MPlus_Health_Topics_QA" / "0000029.xml"}"\n')
    settings = Settings(threads=1, retrieval={"retriever": "dense"},
                        index={"backend": "tests.plugins:NumpyStore", "options": {"normalise": True}},
                        generation={"generator": "tests.plugins:EchoGenerator",
                                    "options": {"tests.plugins:EchoGenerator": {"prefix": "Toy:"}}})
    rag = MedRAG(settings)
    rag.ingest([recipe], save_to=tmp_path / "index", progress=False)
    saved = json.loads((tmp_path / "index" / "settings.json").read_text())
    assert saved["index"] == {"backend": "tests.plugins:NumpyStore", "options": {"normalise": True}}
    assert (tmp_path / "index" / "vectors.1.npz").is_file() or any(
        p.suffix == ".npz" for p in (tmp_path / "index").iterdir())
    loaded = MedRAG.load(tmp_path / "index", threads=1)
    assert {type(s.store).__name__ for s in loaded.vectors.sealed} == {"NumpyStore"}  # segments of the plugin store
    hits = loaded.retrieve("What is anemia and how does it feel?", 3)
    assert hits[0].chunk.doc_id == "toy:1" and hits[0].chunk.metadata["source_type"] == "toy"
    answer = loaded.ask("What is anemia and how does it feel?")
    assert answer.generator == "echoToy:" and answer.body.startswith("Toy: Anemia is a lack of healthy red blood cells")
    assert [c.n for c in answer.citations] == [1]
    with pytest.raises(MedRAGError, match="cannot import"):
        Settings(index={"backend": "tests.plugins:NoSuchStore"})
    with pytest.raises(MedRAGError, match="normalise"):
        Settings(index={"backend": "tests.plugins:NumpyStore", "options": {"normalise": "maybe"}})


# -- settings -------------------------------------------------------------------------------------------------
def test_settings_are_typed_nested_and_checked() -> None:
    s = Settings()
    assert s.retrieval.k == 5 and s.index.options["index_type"] == "Flat" and s.safety.strict is False
    with pytest.raises(MedRAGError, match="strict='ture'"):
        Settings.parse_assignments(["strict=ture"])
    with pytest.raises(MedRAGError, match="strict='ture'"):
        Settings.parse_assignments(["safety.strict=ture"])
    with pytest.raises(MedRAGError, match="nprobe='many'"):
        Settings().replace(**Settings.parse_assignments(["index.options.nprobe=many"]))
    with pytest.raises(MedRAGError, match="retrieval.k=0"):
        Settings(retrieval={"k": 0})
    with pytest.raises(MedRAGError, match="bad setting 'colour=red'"):
        Settings.parse_assignments(["colour=red"])
    with pytest.raises(MedRAGError, match="Extra inputs"):
        Settings(retrieval={"kk": 3})
    changed = Settings().replace(**Settings.parse_assignments(["safety.strict=true", "chunk_tokens=128", "k=7",
                                                                "index.options.nprobe=8"]))
    assert changed.safety.strict is True and changed.chunking.tokens == 128 and changed.retrieval.k == 7
    assert changed.index.options["nprobe"] == 8  # typed by the FAISS store's own options model
    assert Settings.preset("hnsw").index.options["index_type"] == "HNSW32"
    assert Settings.preset("dense").retrieval.retriever == "dense" and not Settings.preset("dense").lexical.enabled
    with pytest.raises(MedRAGError, match="unknown preset"):
        Settings.preset("turbo")


def test_flat_settings_of_old_indexes_migrate() -> None:
    flat = json.loads((LEGACY / "index" / "settings.json").read_text())
    assert "embedder" in flat and "index" not in flat  # written by the previous commit's code
    migrated = Settings.load(LEGACY / "index" / "settings.json")
    assert migrated.embedding.model == flat["embedder"] and migrated.retrieval.k == flat["k"]
    assert migrated.index.options["index_type"] == flat["index_type"] and migrated.threads == flat["threads"]
    assert migrated.safety.abstain_coverage_weight == flat["abstain_coverage_weight"]
    # flat names are accepted by the constructor too; an index saved before embedding paths was built with torch,
    # one saved before lexical backends with bm25s
    assert Settings(**flat).replace(**{"embedding.backend": "torch", "embedding.precision": "fp32",
                                       "lexical.backend": "bm25s"}) == migrated


# -- an index built by the previous commit ---------------------------------------------------------------------
def test_index_built_before_the_refactor_answers_the_same(tmp_path: Path) -> None:
    index = Path(shutil.copytree(LEGACY / "index", tmp_path / "legacy"))
    expected = json.loads((LEGACY / "expected.json").read_text())
    rag = MedRAG.load(index, threads=1)
    top = [[h.chunk.id, round(h.score, 6)] for h in rag.retrieve(expected["question"], 10)]
    assert [i for i, _ in top] == [i for i, _ in expected["top10"]]
    assert np.allclose([s for _, s in top], [s for _, s in expected["top10"]], atol=1e-5)
    answer = rag.ask(expected["question"]).to_dict()
    for key, value in expected["answer"].items():  # every key of the old JSON, with the same value
        assert key in answer, key
        if key in ("retrieved", "citations"):
            for new, old in zip(answer[key], value, strict=True):
                assert {k: new[k] for k in old if k != "score"} == {k: v for k, v in old.items() if k != "score"}
                assert new["score"] == pytest.approx(old["score"], abs=1e-4)
        elif key == "sentences":
            assert [s["text"] for s in answer[key]] == [s["text"] for s in value]
        else:
            assert answer[key] == value, key


# -- the Answer contract ---------------------------------------------------------------------------------------
def test_answer_parts_and_schema(rag: MedRAG) -> None:
    answer = rag.ask("My father has sudden crushing chest pain and is sweating heavily. What should we do?")
    assert answer.emergency and answer.notices and answer.text.startswith(answer.notices[0])
    assert answer.text == "\n\n".join([*answer.notices, answer.body, answer.disclaimer])
    data = answer.to_dict()
    old_keys = {"question", "text", "citations", "generator", "retrieved", "invalid_citations", "abstained",
                "emergency", "sentences", "notices", "removed_sentences"}
    new_keys = {"body", "disclaimer", "language", "query"}
    assert old_keys | new_keys <= set(data)
    schema = Answer.json_schema()
    assert set(schema["required"]) >= {"question", "body", "generator", "text"}
    assert Answer.model_validate({k: v for k, v in data.items() if k != "text"}) == answer  # round trip
    rendered = answer.render()
    assert rendered.startswith("!! ") and rendered.rstrip().endswith(answer.disclaimer)


# -- many threads, one loaded index ----------------------------------------------------------------------------
def test_loaded_index_serves_many_threads(rag: MedRAG) -> None:
    questions = [QUESTION, "What is anemia?", "How is type 2 diabetes treated?", "What causes high blood pressure?",
                 "Can diet lower blood pressure?", "What are the complications of diabetes?"] * 2
    sequential = [[h.chunk.id for h in rag.retrieve(q, 5)] for q in questions]
    answers = [rag.ask(q).body for q in questions[:6]]
    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(lambda q: [h.chunk.id for h in rag.retrieve(q, 5)], questions))
        parallel_answers = list(pool.map(lambda q: rag.ask(q).body, questions[:6]))
    assert parallel == sequential and parallel_answers == answers


def test_loaded_index_from_disk_in_another_thread(small_index: Path) -> None:
    """Loaded in one thread, queried from others: SQLite's same-thread check must not fire."""
    loaded = MedRAG.load(small_index, threads=1)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda q: loaded.retrieve(q, 3), [QUESTION] * 3))
    assert all([h.chunk.id for h in r] == [h.chunk.id for h in results[0]] for r in results)


# -- a light command line --------------------------------------------------------------------------------------
def test_help_imports_nothing_heavy() -> None:
    code = ("import sys; from medrag.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in ('torch', 'faiss', 'transformers', 'sentence_transformers', 'bm25s') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    assert medrag_cli("--help", check=True).stdout.startswith("usage: medrag")
