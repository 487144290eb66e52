"""train-generator and eval generator on a small real index: cited examples, training, saving, resuming."""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import math
import shutil
from pathlib import Path

import pytest

from medrag import MedRAG, MedRAGError, Settings
from medrag.embedding import Embedder
from medrag.evaluation.datasets import load_bioasq
from medrag.evaluation.generator import abstains, gold_nll, score
from medrag.generation.citations import split_answer
from medrag.training.generator import (
    ExampleSet,
    GeneratorConfig,
    build_examples,
    featurize,
    init_from_scratch,
    load_generator,
    train_generator,
)

from .conftest import DATA, MEDQUAD, QUESTION, TINY_GPT2

BIOASQ = DATA / "eval" / "bioasq" / "7B1_golden.json"
SCRATCH = "n_layer=2,n_embd=64,n_head=2,n_positions=256"  # a 256-token window keeps CPU steps short


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Dev questions (BioASQ 7B1, PubMedQA dev, MedQuAD pages) and the documents that answer them."""
    folder = tmp_path_factory.mktemp("gendata")
    dev = json.loads((DATA / "eval" / "pubmedqa_dev.json").read_text())
    abstracts = json.loads((DATA / "corpora" / "pubmed" / "pubmedqa_abstracts.json").read_text())
    pmids = [p for p in dev if p in abstracts][:16]
    (folder / "pubmedqa_dev.json").write_text(json.dumps({p: dev[p] for p in pmids}))
    (folder / "abstracts.json").write_text(json.dumps({p: abstracts[p] for p in pmids}))
    questions = [q for q in json.loads(BIOASQ.read_text())["questions"] if q.get("snippets") and q.get("ideal_answer")]
    questions = questions[:10]
    (folder / "7B1_golden.json").write_text(json.dumps({"questions": questions}))
    wanted = {s["document"].rstrip("/").rsplit("/", 1)[-1] for q in questions for s in q["snippets"]}
    with open(DATA / "corpora" / "pubmed" / "bioasq_snippets.jsonl", encoding="utf-8") as fh:
        lines = [line for line in fh if json.loads(line)["pmid"] in wanted]
    (folder / "snippets.jsonl").write_text("".join(lines))
    medquad = [MEDQUAD / "4_MPlus_Health_Topics_QA" / "0000029.xml", MEDQUAD / "8_NHLBI_QA_XML" / "0000071.xml",
               MEDQUAD / "9_CDC_QA" / "0000001.xml"]
    return {"questions": [folder / "7B1_golden.json", folder / "pubmedqa_dev.json", *medquad],
            "documents": [folder / "abstracts.json", folder / "snippets.jsonl", *medquad]}


@pytest.fixture(scope="module")
def gen_index(tmp_path_factory: pytest.TempPathFactory, data: dict[str, list[Path]], embedder: Embedder) -> Path:
    directory = tmp_path_factory.mktemp("genindex") / "index"
    rag = MedRAG(Settings(threads=1))
    rag.embedder = embedder
    rag.ingest(data["documents"], save_to=directory, progress=False)
    return directory


@pytest.fixture(scope="module")
def examples(gen_index: Path, data: dict[str, list[Path]], embedder: Embedder) -> ExampleSet:
    rag = MedRAG.load(gen_index, threads=1)
    rag.embedder = embedder
    return build_examples(rag, data["questions"], heldout_share=0.3, index=gen_index)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 64-wide GPT-2 with random weights on the real GPT-2 tokenizer."""
    return init_from_scratch(str(TINY_GPT2), SCRATCH, tmp_path_factory.mktemp("scratch") / "init")


def _markers(text: str) -> set[int]:
    return {n for _, cited in split_answer(text) for n in cited}


def test_examples_cite_packed_passages_that_hold_their_answers(examples: ExampleSet, scratch: Path) -> None:
    from medrag.answer import ABSTAIN

    assert set(examples.sources("train")) == {"bioasq", "pubmedqa", "medquad", "abstain"}
    assert examples.heldout and not {e.id for e in examples.train} & {e.id for e in examples.heldout}
    gold = {f"bioasq:{q.id}": {s["pmid"] for s in q.snippets} for q in load_bioasq(BIOASQ)}
    for spec in (str(TINY_GPT2), str(scratch)):  # a 1,024- and a 256-token window pack different passages
        gen = load_generator(spec, examples.max_new_tokens, threads=1)
        built = 0
        for example in examples.train:
            features = featurize(gen, example)
            if features is None:
                continue
            built += 1
            ids, in_prompt, new_tokens = gen.prompt(example.question, example.chunks())
            assert features.input_ids[:len(ids)] == ids  # the prompt medrag ask would send
            assert set(features.labels[:len(ids)]) == {-100} and -100 not in features.labels[len(ids):]
            assert len(features.input_ids) - len(ids) <= new_tokens <= gen.context_window - len(ids)
            cited = _markers(features.target)
            if example.source == "abstain":
                assert features.target == ABSTAIN and not cited
                continue
            assert cited and cited <= set(in_prompt), (example.id, features.target, in_prompt)
            for n in cited:  # each cited passage is the one the gold answer came from
                passage = example.passages[n - 1]
                if example.source == "pubmedqa":
                    assert passage["pmid"] == example.id.split(":", 1)[1]
                elif example.source == "medquad":
                    assert passage["doc_id"] == example.id.split(":", 1)[1]
                else:
                    assert passage["pmid"] in gold[example.id]
        assert built >= 0.6 * len(examples.train)


def test_abstention_examples_show_another_questions_passages(examples: ExampleSet) -> None:
    answers = {e.id: e for e in examples.train + examples.heldout}
    abstaining = [e for e in examples.train + examples.heldout if e.source == "abstain"]
    assert abstaining
    for example in abstaining:
        own = answers[example.id.removeprefix("abstain:")]
        assert example.question == own.question
        assert not {p["doc_id"] for p in example.passages} & {p["doc_id"] for p in own.passages}
        assert abstains(example.sentences[0].text, example.sentences[0].text)


def test_examples_file_round_trips_and_holds_no_patient_context(examples: ExampleSet, tmp_path: Path) -> None:
    path = examples.save(tmp_path / "examples.json.gz")
    again = ExampleSet.load(path)
    assert [e.to_dict() for e in again.train] == [e.to_dict() for e in examples.train]
    raw = json.loads(gzip.decompress(path.read_bytes()))
    for example in raw["train"] + raw["heldout"]:
        assert "context" not in example and "(patient:" not in example["question"]
    assert "context" not in raw


def test_test_splits_are_refused(tmp_path: Path, gen_index: Path) -> None:
    test_file = tmp_path / "bioasq_test.json"
    shutil.copy(BIOASQ, test_file)
    with pytest.raises(MedRAGError, match="test split"):
        build_examples(MedRAG.load(gen_index, threads=1), [test_file])
    with pytest.raises(MedRAGError, match="test split"):
        _cli(["train-generator", "--base", str(TINY_GPT2), "--index", str(gen_index), "--data", str(test_file),
              "--out", str(tmp_path / "m")])


def _perplexity(spec: str, examples: ExampleSet) -> float:
    gen = load_generator(spec, examples.max_new_tokens, threads=1)
    scored = [gold_nll(gen, e, "cpu") for e in examples.heldout]
    return math.exp(sum(n for n, _ in scored if n is not None) / sum(t for _, t in scored))


def test_training_lowers_heldout_perplexity(examples: ExampleSet, scratch: Path, tmp_path: Path) -> None:
    before = _perplexity(str(scratch), examples)
    config = GeneratorConfig(base=str(scratch), max_steps=6, batch_size=8, learning_rate=3e-3, eval_examples=4,
                             threads=1, device="cpu", progress=False)
    out = train_generator(tmp_path / "sft", config, examples)
    after = _perplexity(str(out), examples)
    print(f"held-out perplexity of the gold cited answers: {before:.0f} before, {after:.0f} after")
    assert after < 0.8 * before, (before, after)
    record = json.loads((out / "medrag-training.json").read_text())
    assert record["examples"]["sources"]["abstain"] > 0 and record["eval_loss"] < record["eval_loss_before"]
    assert record["seeds"]["seed"] == 13 and record["base"] == str(scratch) and record["data"]["files"]
    assert not (tmp_path / ".sft.checkpoints").exists() and not (tmp_path / ".sft.partial").exists()


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_saved_generator_answers_through_ask(examples: ExampleSet, gen_index: Path, embedder: Embedder,
                                             tmp_path: Path, lora: bool) -> None:
    from transformers import AutoModelForCausalLM

    config = GeneratorConfig(base=str(TINY_GPT2), lora=lora, max_steps=2, batch_size=2, learning_rate=1e-3,
                             eval_examples=2, threads=1, device="cpu", progress=False)
    out = train_generator(tmp_path / "gen", config, examples)
    assert not (out / "adapter_config.json").exists()  # LoRA merged: a plain model directory
    AutoModelForCausalLM.from_pretrained(out)
    rag = MedRAG.load(gen_index, threads=1)
    rag.embedder = embedder
    answer = rag.ask(QUESTION, generator=str(out))
    assert answer.generator == f"hf:{out}" and answer.retrieved
    assert json.loads((out / "medrag-training.json").read_text())["lora"] is lora


def test_resume_continues_from_the_last_checkpoint(examples: ExampleSet, tmp_path: Path) -> None:
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt("power cut")

    config = GeneratorConfig(base=str(TINY_GPT2), max_steps=4, save_steps=2, batch_size=2, eval_examples=1,
                             threads=1, device="cpu", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_generator(tmp_path / "gen", config, examples, callbacks=[Crash()])
    assert (tmp_path / ".gen.checkpoints" / "checkpoint-2").is_dir() and not (tmp_path / "gen").exists()
    with pytest.raises(MedRAGError, match="other data"):
        train_generator(tmp_path / "gen", dataclasses.replace(config, resume=True, lora=True),
                        examples)
    out = train_generator(tmp_path / "gen", dataclasses.replace(config, resume=True), examples)
    record = json.loads((out / "medrag-training.json").read_text())
    assert record["resumed_from"] == "checkpoint-2" and record["global_step"] == 4


def _cli(argv: list[str]) -> int:
    """``medrag``'s own argument handling for the two subcommands of this feature."""
    from medrag.evaluation.generator_cli import register_generator
    from medrag.training.generator_cli import register

    parser = argparse.ArgumentParser(prog="medrag")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    sets = sub.add_parser("eval").add_subparsers(dest="eval_target", required=True)
    register_generator(sets)
    args = parser.parse_args(argv)
    return args.run(args)


def test_cli_pretrains_on_the_index_then_evaluates_against_the_base(gen_index: Path, data: dict[str, list[Path]],
                                                                    tmp_path: Path) -> None:
    model = tmp_path / "clm"
    assert _cli(["train-generator", "--objective", "clm", "--base", str(TINY_GPT2), "--index", str(gen_index),
                 "--out", str(model), "--max-steps", "2", "--batch-size", "1", "--max-examples", "60", "--threads", "1",
                 "--quiet"]) == 0
    record = json.loads((model / "medrag-training.json").read_text())
    assert record["objective"] == "clm" and record["examples"]["texts"] == 60 and record["global_step"] == 2
    out = tmp_path / "eval"
    argv = ["eval", "generator", "--generator", str(model), "--base", str(TINY_GPT2), "--index", str(gen_index),
            "--data", *map(str, data["questions"]), "--heldout-share", "0.3", "--out", str(out), "--limit", "3",
            "--threads", "1", "--quiet"]
    assert _cli(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("perplexity", "valid_citation_share", "citation_precision", "citation_recall", "abstention_rate",
                "rouge2_summary", "rouge2"):
        assert key in metrics and f"base_{key}" in metrics
    assert metrics["examples"] == 3 and metrics["perplexity"] > 1
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3
    assert _cli(argv) == 0  # a re-run resumes: nothing is generated again
    assert len((out / "base_predictions.jsonl").read_text().splitlines()) == 3


def test_scores_count_invalid_citations_and_abstentions(examples: ExampleSet) -> None:
    from medrag.answer import ABSTAIN

    chosen = [next(e for e in examples.heldout if e.source != "abstain"),
              next(e for e in examples.train + examples.heldout if e.source == "abstain")]
    predictions = [{"text": "An answer [1].", "cited": [1], "invalid": 1, "nll": 2.0, "tokens": 2},
                   {"text": ABSTAIN, "cited": [], "invalid": 0, "nll": 2.0, "tokens": 2}]
    metrics = score(chosen, predictions, prefix="base_")
    assert metrics["base_valid_citation_share"] == 0.5 and metrics["base_abstention_rate"] == 1.0
    assert metrics["base_false_abstention_rate"] == 0.0
    assert metrics["base_perplexity"] == pytest.approx(math.e, rel=1e-3)
