"""Evaluation: dataset loaders on the real dev files, metrics (by hand and against pytrec_eval), the
harness end to end on the small index (tiny GPT-2 log-likelihood, extractive free text, retrieval), resume."""
from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from medrag import MedRAG
from medrag.embedding import Embedder
from medrag.errors import MedRAGError
from medrag.evaluation import metrics as M
from medrag.evaluation.cli import register
from medrag.evaluation.datasets import DATASETS, load
from medrag.evaluation.harness import choice_prompt, evaluate, evaluate_retrieval, parse_choice
from medrag.generation.hf import HFGenerator
from medrag.generation.prompt import PackedPrompt
from tests.conftest import DATA, TINY_GPT2

EVAL = DATA / "eval"
RETRIEVAL_KEYS = ["n_questions", "recall@10", "recall@32", "recall@100", "mrr@10", "ndcg@10", "precision@10"]


@pytest.fixture(scope="module")
def rag(small_index: Path, embedder: Embedder) -> MedRAG:
    loaded = MedRAG.load(small_index)
    loaded.embedder = embedder
    return loaded


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- loaders -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "path", "count", "types"), [
    ("mirage", "mirage_dev.json", 2216, {"mc": 2216}),
    ("pubmedqa", "pubmedqa_dev.json", 500, {"yesno": 500}),
    ("bioasq", "bioasq", 1497, {"factoid": 476, "yesno": 409, "summary": 352, "list": 260}),
    ("liveqa", "liveqa", 446, {"free": 446}),
    ("mediqa", "mediqa2019", 233, {"free": 233}),
    ("medication_qa", "medication_qa", 651, {"free": 651}),  # 690 rows: repeated questions are grouped
    ("covid_qa", "covid_qa", 1380, {"free": 1380}),
])
def test_loaders_read_the_dev_files(name: str, path: str, count: int, types: dict[str, int]) -> None:
    questions = load(name, EVAL / path)
    assert len(questions) == count and len({q.id for q in questions}) == count
    found: dict[str, int] = {}
    for q in questions:
        found[q.type] = found.get(q.type, 0) + 1
        assert q.question and q.dataset
        assert (q.answer in q.options) if q.options else (q.ideal or name == "mediqa")
    assert found == types


def test_loader_details() -> None:
    mirage = load("mirage", EVAL / "mirage_dev.json")
    sizes = {d: sum(q.dataset == d for q in mirage) for d in ("medqa", "medmcqa", "mmlu", "bioasq", "pubmedqa")}
    assert sizes == {"medqa": 254, "medmcqa": 836, "mmlu": 217, "bioasq": 409, "pubmedqa": 500}
    assert mirage[0].id == "medqa:0012" and mirage[0].answer == "B" and mirage[0].options["B"] == "Meningioma"
    assert next(q for q in mirage if q.dataset == "pubmedqa").gold_pmids == ["10808977"]

    pubmedqa = load("pubmedqa", EVAL / "pubmedqa_dev.json")
    assert pubmedqa[0].gold_pmids == ["10808977"] and pubmedqa[0].answer == "yes"
    assert set(pubmedqa[0].options or {}) == {"yes", "no", "maybe"} and pubmedqa[0].ideal[0].startswith("The effects")

    one = load("bioasq", EVAL / "bioasq" / "7B1_golden.json")  # one file as well as a folder
    assert len(one) == 100
    factoid = one[0]
    assert factoid.gold_pmids == ["28293123"] and factoid.exact == [["PD-L1 status"]]
    assert factoid.snippets[0]["pmid"] == "28293123" and factoid.ideal
    listed = next(q for q in one if q.type == "list")
    assert len(listed.exact) == 6 and listed.exact[0] == ["inflammation"]
    assert {q.answer for q in load("bioasq", EVAL / "bioasq") if q.type == "yesno"} == {"yes", "no"}

    mediqa = load("mediqa", EVAL / "mediqa2019")
    assert sum(not q.ideal for q in mediqa) == 34  # no answer judged correct (ReferenceScore 3 or 4)
    assert sum(len(q.ideal) for q in mediqa) == 91 + 138 + 256 + 149 + 59 + 35
    assert sum(len(q.ideal) for q in load("medication_qa", EVAL / "medication_qa")) == 690
    live = load("liveqa", EVAL / "liveqa")
    assert live[0].id.endswith(":Q1") and live[0].question.startswith("Literature on Cardiac amyloidosis")
    assert len(live[0].ideal) == 2 and live[0].extra["focus"] == ["cardiac amyloidosis"]


def test_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(MedRAGError, match="unknown dataset"):
        load("medqa-usmle", EVAL)
    with pytest.raises(MedRAGError, match="no such file"):
        load("bioasq", tmp_path / "missing")
    with pytest.raises(MedRAGError, match="not a BioASQ file"):
        load("bioasq", EVAL / "covid_qa")
    with pytest.raises(MedRAGError, match="holds no .xlsx"):
        load("medication_qa", EVAL / "liveqa")
    assert set(DATASETS) == {"mirage", "pubmedqa", "bioasq", "liveqa", "mediqa", "medication_qa", "covid_qa"}


# -- metrics -------------------------------------------------------------------------------------
def test_answer_metrics_by_hand() -> None:
    assert M.accuracy(["A", "B", None], ["A", "C", "C"]) == pytest.approx(1 / 3)
    assert M.accuracy([], []) is None
    # yes: tp 1, 2 predicted, 2 gold -> 0.5; no: tp 1, 1 predicted, 1 gold -> 1; maybe: 0 predicted, 1 gold -> 0
    pred, gold = ["yes", "yes", "no", None], ["yes", "maybe", "no", "yes"]
    assert M.macro_f1(pred, gold, ["yes", "no", "maybe"]) == pytest.approx((0.5 + 1 + 0) / 3)
    assert M.macro_f1(pred, gold) == pytest.approx((0.5 + 1 + 0) / 3)  # labels from gold and predictions

    scores = M.factoid_scores([["x", "PD-L1 Status"], ["pd-l1 status"], [], ["a", "b", "c", "d", "e", "f"]],
                              [["PD-L1 status"], ["PD-L1 status"], ["y"], ["f"]])
    assert scores == pytest.approx({"strict": 1 / 4, "lenient": 2 / 4, "mrr": (0.5 + 1) / 4})
    # q1: 2 of 3 predictions right, 2 of 2 gold found; q2: nothing predicted
    lists = M.list_scores([["Warts", "hypogammaglobulinemia", "fever"], []], [[["warts"], ["Hypogammaglobulinemia",
                                                                              "HG"]], [["a"]]])
    assert lists == pytest.approx({"precision": (2 / 3) / 2, "recall": 1 / 2, "f1": (0.8 + 0) / 2})
    assert M.mention_recall("Lead poisoning causes Burton's line.", [["lead"], ["mercury", "Hg"]]) == 0.5
    assert M.mention_recall("misleading", [["lead"]]) == 0.0


def test_answer_metrics_match_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")  # installed with sentence-transformers
    rng = random.Random(11)
    labels = ["yes", "no", "maybe"]
    for _ in range(20):
        n = rng.randint(1, 40)
        gold = [rng.choice(labels) for _ in range(n)]
        pred = [rng.choice([*labels, None]) for _ in range(n)]  # None: unparsed, always wrong
        shown = ["unparsed" if p is None else p for p in pred]
        assert M.accuracy(pred, gold) == pytest.approx(metrics.accuracy_score(gold, shown))
        expected = metrics.f1_score(gold, shown, labels=labels, average="macro", zero_division=0)
        assert M.macro_f1(pred, gold, labels) == pytest.approx(expected)


def test_rouge() -> None:
    assert M.rouge(["the cat sat on the mat"], [["a dog", "the cat sat on the mat"]]) == pytest.approx(
        {"rouge2": 1.0, "rougeL": 1.0})  # best reference
    assert M.rouge([""], [["anything"]]) == {"rouge2": 0.0, "rougeL": 0.0}
    # stemmed: "treats"/"treating" -> "treat"; LCS 3 of 4 tokens each side -> F1 0.75; bigrams 1 of 3 each -> 1/3
    got = M.rouge(["metformin treats type diabetes"], [["metformin treating diabetes type"]])
    assert got == pytest.approx({"rouge2": 1 / 3, "rougeL": 0.75})


def test_retrieval_metrics_by_hand() -> None:
    ranked, relevant = ["a", "b", "c", "d"], {"b", "d", "x"}
    assert M.recall_at_k(ranked, relevant, 3) == pytest.approx(1 / 3)
    assert M.precision_at_k(ranked, relevant, 3) == pytest.approx(1 / 3)
    assert M.precision_at_k(ranked, relevant, 10) == pytest.approx(2 / 10)  # divided by k, as trec_eval
    assert M.mrr_at_k(ranked, relevant, 3) == 0.5 and M.mrr_at_k(ranked, relevant, 1) == 0.0
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg_at_k(ranked, relevant, 4) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    # only gold ids in the index count: "x" is dropped, and the query whose gold is all outside is left out
    scores = M.retrieval_scores([ranked, ["z"]], [relevant, {"y"}], ["recall@2", "mrr@10"], index_ids={"a", "b", "d"})
    assert scores == pytest.approx({"n_questions": 1, "recall@2": 0.5, "mrr@10": 0.5})
    assert M.retrieval_scores([["a"]], [{"q"}], ["recall@10"], index_ids=set()) == {"n_questions": 0,
                                                                                    "recall@10": None}
    assert M.recall_curve([ranked], [relevant], 4, {"a", "b", "d"}) == pytest.approx([0, 0.5, 0.5, 1])


def test_retrieval_metrics_match_pytrec_eval() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(60)]
    runs = [rng.sample(docs, rng.randint(3, 40)) for _ in range(30)]
    qrels = [set(rng.sample(docs, rng.randint(1, 8))) for _ in range(30)]
    ours = M.retrieval_scores(runs, qrels, ["recall@10", "precision@10", "ndcg@10", "mrr@10"])
    judged = {f"q{i}": {d: 1 for d in rel} for i, rel in enumerate(qrels)}
    scored = {f"q{i}": {d: float(100 - r) for r, d in enumerate(run)} for i, run in enumerate(runs)}
    top10 = {q: {d: s for d, s in run.items() if s > 90} for q, run in scored.items()}  # MRR@10: cut the run
    theirs = pytrec_eval.RelevanceEvaluator(judged, {"recall_10", "P_10", "ndcg_cut_10"}).evaluate(scored)
    rr = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(top10)
    for ours_key, key, source in (("recall@10", "recall_10", theirs), ("precision@10", "P_10", theirs),
                                  ("ndcg@10", "ndcg_cut_10", theirs), ("mrr@10", "recip_rank", rr)):
        expected = sum(source[q][key] for q in judged) / len(judged)
        assert ours[ours_key] == pytest.approx(expected, abs=1e-9), ours_key


def test_parse_choice() -> None:
    letters = {"A": "Renal cell carcinoma", "B": "Meningioma", "C": "Astrocytoma"}
    assert parse_choice("B. Meningioma, because of NF2", letters) == "B"
    assert parse_choice("The answer is (C).", letters) == "C"
    assert parse_choice("It is most likely a meningioma [1].", letters) == "B"
    assert parse_choice("I cannot tell from these passages.", letters) is None  # never a default "A"
    labels = {"yes": "yes", "no": "no", "maybe": "maybe"}
    assert parse_choice("Yes, statins reduce the risk [2].", labels) == "yes"
    assert parse_choice("The trials found no clear benefit; maybe in the elderly.", labels) == "no"
    assert parse_choice("Statins lower cholesterol.", labels) is None
    assert choice_prompt(load("pubmedqa", EVAL / "pubmedqa_dev.json")[0]).endswith("(yes, no, maybe)")


# -- HF option log-likelihoods -------------------------------------------------------------------
def test_option_logprobs_match_a_plain_forward_pass(rag: MedRAG) -> None:
    import torch

    gen = HFGenerator(str(TINY_GPT2))
    options = ["Renal cell carcinoma", "Meningioma", "yes", "Vascular malformations of the brain"]
    prompt = "Question: Which tumour does NF2 predispose to? Answer:"
    got = gen.option_logprobs(prompt, options)
    prefix = gen._input_ids(PackedPrompt(prompt, gen._encode(prompt), []))
    continuations = [gen._encode(" " + o) for o in options]
    expected = []
    for c in continuations:
        with torch.inference_mode():
            logits = gen.model(torch.tensor([prefix + c])).logits[0].log_softmax(-1)
        expected.append(float(sum(logits[len(prefix) - 1 + j, t] for j, t in enumerate(c))))
    assert got == pytest.approx(expected, abs=1e-4)
    assert gen._continuation_logprobs(prefix, continuations, reuse_prefix=False) == pytest.approx(expected, abs=1e-4)
    per_token = gen.option_logprobs(prompt, options, per_token=True)
    assert per_token == pytest.approx([e / len(c) for e, c in zip(expected, continuations)], abs=1e-4)
    # with passages: packed into the 1,024-token window, passages cut first, one token per yes/no option
    chunks = [h.chunk for h in rag.retrieve("high blood pressure treatment", k=10)] * 3
    assert len(gen.option_logprobs("Does exercise lower blood pressure?", ["yes", "no", "maybe"], chunks)) == 3
    assert gen._fit("Does exercise lower blood pressure?", chunks, 1)[1]  # some passages made it in
    assert len(gen._fit("Does exercise lower blood pressure?", chunks, 1)[0]) <= gen.context_window - 1


# -- harness end to end --------------------------------------------------------------------------
def test_mirage_loglik_resumes_and_survives_a_torn_line(rag: MedRAG, tmp_path: Path) -> None:
    out = tmp_path / "mirage"
    kwargs: dict[str, Any] = {"generator": str(TINY_GPT2), "progress": False}
    first = evaluate(rag, "mirage", EVAL / "mirage_dev.json", out, limit=3, **kwargs)
    assert first["n_questions"] == 3 and len(lines(out / "predictions.jsonl")) == 3
    before = (out / "predictions.jsonl").read_text()

    metrics = evaluate(rag, "mirage", EVAL / "mirage_dev.json", out, limit=5, **kwargs)
    records = lines(out / "predictions.jsonl")
    assert len(records) == 5 and (out / "predictions.jsonl").read_text().startswith(before)  # only 2 new lines
    assert [r["id"] for r in records] == ["medqa:0012", "medqa:0018", "medqa:0020", "medqa:0022", "medqa:0029"]
    for r in records:
        assert r["prediction"] in "ABCD" and r["gold"] in "ABCD" and set(r["scores"]) == set("ABCD")
        assert r["pmids"] is not None and r["seconds"] > 0
    assert metrics["n_questions"] == 5 and metrics["n_unparsed"] == 0
    assert metrics["accuracy"] == metrics["accuracy.medqa"] == sum(r["prediction"] == r["gold"] for r in records) / 5
    assert json.loads((out / "metrics.json").read_text()) == metrics

    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "loglik" and config["model"] == {"hidden_size": 2, "layers": 2, "toy": True}
    assert config["versions"]["torch"] and "commit" in config["git"] and config["settings"]["embedding"]["model"]
    report = (out / "report.md").read_text()
    assert "random-weight test model" in report and "0.295" in report and (out / "accuracy.png").stat().st_size

    # a kill in the middle of a write leaves a partial line: it is dropped and that question answered again
    with (out / "predictions.jsonl").open("a") as f:
        f.write('{"id": "medqa:0031", "predic')
    evaluate(rag, "mirage", EVAL / "mirage_dev.json", out, limit=6, **kwargs)
    records = lines(out / "predictions.jsonl")
    assert len(records) == 6 and records[-1]["id"] == "medqa:0031" and records[-1]["prediction"] in "ABCD"

    with pytest.raises(MedRAGError, match="other settings"):  # resuming with another generator would mix runs
        evaluate(rag, "mirage", EVAL / "mirage_dev.json", out, limit=6, generator="extractive", progress=False)

    # generate mode: the letter is parsed from generated text, and noise that names no option is wrong
    generated = evaluate(rag, "mirage", EVAL / "mirage_dev.json", tmp_path / "gen", limit=2, mode="generate",
                         **kwargs)
    records = lines(tmp_path / "gen" / "predictions.jsonl")
    assert all("generated" in r for r in records)
    assert generated["n_unparsed"] == sum(r["prediction"] is None for r in records)
    assert generated["accuracy"] == sum(r["prediction"] == r["gold"] for r in records) / 2


@pytest.mark.parametrize(("name", "path"), [
    ("mirage", "mirage_dev.json"), ("pubmedqa", "pubmedqa_dev.json"), ("bioasq", "bioasq/9B1_golden.json"),
    ("liveqa", "liveqa"), ("mediqa", "mediqa2019"), ("medication_qa", "medication_qa"), ("covid_qa", "covid_qa"),
])
def test_every_dataset_runs_with_the_tiny_gpt2(name: str, path: str, small_index: Path, embedder: Embedder,
                                               tmp_path: Path) -> None:
    """Each set end to end on its real dev file through the LM path: options by log-likelihood, free text
    generated (abstention off, so the model writes every answer) and support-checked."""
    rag = MedRAG.load(small_index, abstain_threshold=-2.0)  # the gate never closes: confidence >= -1.15
    rag.embedder = embedder
    out = tmp_path / name
    metrics = evaluate(rag, name, EVAL / path, out, generator=str(TINY_GPT2), limit=4, k=2, progress=False)
    records = lines(out / "predictions.jsonl")
    assert metrics["n_questions"] == len(records) >= 2  # mediqa: some questions have no judged-correct answer
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["toy"] and config["k"] == 2
    for r in records:
        assert r["seconds"] > 0 and r["pmids"] is not None
        if "scores" in r:  # multiple choice or yes/no: the most likely option, never unparsed
            assert r["prediction"] in r["scores"]
        else:  # free text: the model's own words, checked sentence by sentence, never an abstention
            assert r["abstained"] is False and r["prediction"] and r["invalid_citations"] >= 0
    if records[0].get("scores"):
        assert 0 <= metrics["accuracy"] <= 1 and metrics["n_unparsed"] == 0
    if any("scores" not in r for r in records):
        assert 0 <= metrics["rougeL"] < 1 and metrics["abstention_rate"] == 0
    if name == "bioasq":
        assert (out / "bioasq_submission.json").exists() and "factoid.strict" in metrics
    assert "random-weight test model" in (out / "report.md").read_text()


def test_liveqa_extractive_through_the_command(small_index: Path, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="medrag")
    register(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "liveqa"
    args = parser.parse_args(["eval", "liveqa", "--data", str(EVAL / "liveqa" / "TREC-2017-LiveQA-Medical-Train-1.xml"),
                              "--index", str(small_index), "--out", str(out), "--limit", "3", "--quiet"])
    assert args.run(args) == 0
    records = lines(out / "predictions.jsonl")
    assert len(records) == 3 and all(r["prediction"] and "not medical advice" not in r["prediction"] for r in records)
    assert all(c["n"] >= 1 for r in records for c in r["citations"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_questions"] == 3 and 0 < metrics["rougeL"] < 1
    # abstention is reported only where the pipeline's Answer says whether it abstained
    assert ("abstention_rate" in metrics) == any(r["abstained"] is not None for r in records)
    assert "accuracy" not in metrics and "ROUGE-L" in (out / "report.md").read_text()
    with pytest.raises(SystemExit):  # retrieval evaluation needs a set with gold PMIDs
        parser.parse_args(["eval", "retrieval", "--dataset", "liveqa", "--data", "x", "--index", "x", "--out", "x"])


def _bioasq_from_index(rag: MedRAG, path: Path) -> Path:
    """A BioASQ-format file whose 5 questions are titles of PubMed records in the index (gold: that PMID)."""
    rows = rag.chunks.db.execute("SELECT doc_id, metadata FROM documents WHERE doc_id LIKE 'pmid:%' "
                                 "ORDER BY doc_id LIMIT 5").fetchall()
    questions = []
    for n, (doc_id, meta) in enumerate(rows):
        pmid, title = doc_id.split(":", 1)[1], json.loads(meta)["title"]
        url = f"http://www.ncbi.nlm.nih.gov/pubmed/{pmid}"
        kind = "yesno" if n < 2 else "factoid" if n == 2 else "summary"
        exact = "yes" if n < 2 else [["an entity no passage names"]] if n == 2 else None
        questions.append({"id": f"q{n}", "type": kind, "body": title,
                          "documents": [url, "http://www.ncbi.nlm.nih.gov/pubmed/1"],  # PMID 1: not in the index
                          "ideal_answer": [title], "exact_answer": exact,
                          "snippets": [{"document": url, "text": title, "beginSection": "title"}]})
    path.write_text(json.dumps({"questions": questions}))
    return path


def test_retrieval_evaluation(rag: MedRAG, tmp_path: Path) -> None:
    real = evaluate_retrieval(rag, "bioasq", EVAL / "bioasq" / "7B1_golden.json", tmp_path / "real", limit=5,
                              progress=False)
    assert list(real) == RETRIEVAL_KEYS and len(lines(tmp_path / "real" / "predictions.jsonl")) == 5
    pmids = rag.chunks.pmids()
    gold = [q.gold_pmids for q in load("bioasq", EVAL / "bioasq" / "7B1_golden.json")[:5]]
    assert real["n_questions"] == sum(bool(set(g) & pmids) for g in gold)  # gold outside the index does not count

    data = _bioasq_from_index(rag, tmp_path / "titles.json")
    metrics = evaluate_retrieval(rag, "bioasq", data, tmp_path / "titles", progress=False)
    assert list(metrics) == RETRIEVAL_KEYS and metrics["n_questions"] == 5
    assert metrics["recall@10"] >= 0.8 and metrics["mrr@10"] >= 0.6 and metrics["precision@10"] <= 0.1
    records = lines(tmp_path / "titles" / "predictions.jsonl")
    assert all(len(r["pmids"]) == len(set(r["pmids"])) for r in records)  # distinct, first rank kept
    assert (tmp_path / "titles" / "recall_curve.png").exists()

    # the QA harness on the same file: yes/no by similarity, summaries through ask, and the submission JSON
    qa = evaluate(rag, "bioasq", data, tmp_path / "qa", k=3, progress=False)
    assert qa["n_questions"] == 5 and qa["n.bioasq"] == 2 and "rougeL" in qa and qa["recall@3"] >= 0.8
    assert qa["factoid.strict"] == qa["factoid.mrr"] == 0.0  # the gold entity is in no passage
    submission = json.loads((tmp_path / "qa" / "bioasq_submission.json").read_text())["questions"]
    assert [q["id"] for q in submission] == [f"q{n}" for n in range(5)]
    for item in submission:
        assert 1 <= len(item["documents"]) <= 10 and item["documents"][0].startswith("http://www.ncbi.nlm.nih.gov/")
        assert item["snippets"] and all(s["document"] in item["documents"] for s in item["snippets"])
        if item["type"] == "factoid":  # ranked phrases of the retrieved passages, as BioASQ wants them
            assert 1 <= len(item["exact_answer"]) <= 5 and all(len(e) == 1 for e in item["exact_answer"])
        else:
            assert item.get("exact_answer") in (("yes", "no") if item["type"] == "yesno" else (None,))
    assert "[1]" not in submission[-1]["ideal_answer"]
    assert "similarity" in (tmp_path / "qa" / "report.md").read_text()


def test_exact_answer_candidates_are_ranked_passage_phrases() -> None:
    from medrag.evaluation.exact import candidates

    question = "Which gene is mutated in cystic fibrosis?"
    passages = ["Cystic fibrosis is caused by mutations in the CFTR gene, a chloride channel.",
                "The CFTR protein (cystic fibrosis transmembrane conductance regulator) is mutated in patients.",
                "Sweat chloride testing remains the diagnostic standard."]
    found = candidates(question, passages, 5)
    assert found[0] == "CFTR" and len(found) == len({c.lower() for c in found}) <= 5
    assert not {"gene", "cystic", "fibrosis", "mutated"} & {w.lower() for c in found for w in c.split()}
    assert M.factoid_scores([found], [["CFTR", "cystic fibrosis transmembrane conductance regulator"]])["strict"] == 1.0
    assert candidates(question, []) == []
