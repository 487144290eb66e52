"""Domain adaptation: train-embedder and train-reranker on real BioASQ pairs, used by the pipeline."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medrag import MedRAG, MedRAGError
from medrag.embedding import Embedder
from medrag.training import PROVENANCE, TrainConfig, mine_negatives, train_embedder, training_pairs

from .conftest import DATA, QUESTION, medrag_cli, tree_digest

BIOASQ = DATA / "eval" / "bioasq"


def test_pairs_come_from_bioasq_snippets_and_pubmedqa_abstracts() -> None:
    pairs = training_pairs([BIOASQ / "7B1_golden.json", DATA / "eval" / "pubmedqa_dev.json"])
    questions = json.loads((BIOASQ / "7B1_golden.json").read_text())["questions"]
    bioasq = [p for p in pairs if p.source == "7B1_golden.json"]
    assert len(bioasq) == len({(" ".join(q["body"].split()), " ".join(s["text"].split()))
                                for q in questions for s in q["snippets"]})
    pubmedqa = [p for p in pairs if p.source == "pubmedqa_dev.json"]
    assert len(pubmedqa) == 500 and all(len(p.passage) > 200 for p in pubmedqa)


def test_test_splits_and_foreign_files_are_refused(tmp_path: Path) -> None:
    test_file = tmp_path / "pubmedqa_test.json"
    shutil.copy(DATA / "eval" / "pubmedqa_dev.json", test_file)
    with pytest.raises(MedRAGError, match="test split"):
        training_pairs([test_file])
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}')
    with pytest.raises(MedRAGError, match="neither a BioASQ"):
        training_pairs([other])


def test_mined_negatives_are_never_gold_for_their_question() -> None:
    pairs = training_pairs([BIOASQ / "7B1_golden.json"])[:300]
    gold = {(p.question, p.passage) for p in pairs}
    negatives = mine_negatives(pairs, 2)
    assert len(negatives) >= len(pairs)
    assert not set(negatives) & gold


def _margin(embedder: Embedder, pairs: list) -> float:
    """Mean cosine of each question to its passage minus to the other passages."""
    q = embedder.embed_queries([p.question for p in pairs])
    d = embedder.embed_documents([p.passage for p in pairs])
    sims = q @ d.T
    return float(np.mean(np.diag(sims)) - np.mean(sims[~np.eye(len(pairs), dtype=bool)]))


def test_train_embedder_pulls_questions_to_their_passages(tmp_path: Path, embedder: Embedder) -> None:
    pairs = training_pairs([BIOASQ / "7B1_golden.json"])
    seen = {p.question: p for p in pairs}
    pairs = list(seen.values())[:48]  # one passage per question
    out = train_embedder(pairs, tmp_path / "adapted", TrainConfig(epochs=2, batch_size=16, learning_rate=1e-4))
    provenance = json.loads((out / PROVENANCE).read_text())
    assert provenance["kind"] == "embedder" and provenance["pairs"] == 48
    assert not (tmp_path / ".adapted.partial").exists() and not (tmp_path / ".adapted.checkpoints").exists()
    adapted = Embedder(str(out))
    assert adapted.dim == embedder.dim
    assert _margin(adapted, pairs) > _margin(embedder, pairs) + 0.02
    # an asymmetric pair: questions through the adapted model, passages through the original one
    pair = Embedder(embedder.name, query_model=str(out))
    questions = [p.question for p in pairs[:4]]
    assert np.allclose(pair.embed_queries(questions), adapted.embed_queries(questions), atol=1e-5)
    assert np.allclose(pair.embed_documents(questions), Embedder(embedder.name).embed_documents(questions), atol=1e-5)


def test_train_reranker_cli_and_reranked_retrieval(small_index: Path, tmp_path: Path) -> None:
    result = medrag_cli("train-reranker", "--data", BIOASQ / "7B1_golden.json", "--out", tmp_path / "rr",
                        "--max-pairs", "48", "--batch-size", "16", check=True)
    assert "--set reranker=" in result.stdout
    before = tree_digest(small_index)
    rag = MedRAG.load(small_index, reranker=str(tmp_path / "rr"), rerank_depth=8)
    plain = MedRAG.load(small_index)
    hits = rag.retrieve(QUESTION, k=8)
    baseline = plain.retrieve(QUESTION, k=8)
    assert {h.chunk.id for h in hits} == {h.chunk.id for h in baseline}  # the same top 8, re-ordered
    scores = rag.reranker.score([(QUESTION, h.chunk.embed_text) for h in hits])
    assert np.allclose([h.score for h in hits], scores, atol=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # abstention still reads the dense cosines, not reranker scores
    assert rag.ask(QUESTION).abstained == plain.ask(QUESTION).abstained
    assert tree_digest(small_index) == before


def test_train_cli_errors_are_one_line(tmp_path: Path) -> None:
    result = medrag_cli("train-embedder", "--data", tmp_path / "missing.json", "--out", tmp_path / "m")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no such training data" in result.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("loss", ["mnrl", "gist"])
def test_hard_negatives_train_with_either_loss(tmp_path: Path, embedder: Embedder, loss: str) -> None:
    pairs = list({p.question: p for p in training_pairs([BIOASQ / "7B2_golden.json"])}.values())[:40]
    negatives = 2 if loss == "mnrl" else 1  # GISTEmbed takes one
    config = TrainConfig(epochs=2, batch_size=8, learning_rate=1e-4, hard_negatives=negatives, loss=loss, device="cpu")
    out = train_embedder(pairs, tmp_path / "adapted", config)
    assert json.loads((out / PROVENANCE).read_text())["config"]["hard_negatives"] == negatives
    gain = 0.02 if loss == "mnrl" else 0.005  # GISTEmbed's sharp temperature moves slower on 40 pairs
    assert _margin(Embedder(str(out)), pairs) > _margin(embedder, pairs) + gain


def test_unknown_loss_is_refused(tmp_path: Path) -> None:
    pairs = training_pairs([BIOASQ / "7B1_golden.json"])[:8]
    with pytest.raises(MedRAGError, match="unknown training loss"):
        train_embedder(pairs, tmp_path / "x", TrainConfig(loss="triplet", batch_size=4))
    with pytest.raises(MedRAGError, match="one hard negative"):
        train_embedder(pairs, tmp_path / "x", TrainConfig(loss="gist", hard_negatives=2, batch_size=4))
    assert not (tmp_path / "x").exists()
