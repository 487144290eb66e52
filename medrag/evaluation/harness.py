"""``evaluate`` and ``evaluate_retrieval``: run a MedRAG pipeline over an evaluation set, resumably.

Every answered question is appended to ``predictions.jsonl`` at once (one ``write`` of one line), so
an interrupted run loses at most the question it was on; re-running the same command skips the
ids already there. Metrics, the report and the BioASQ submission are computed from that file.
"""
from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from medrag.answer import DISCLAIMER
from medrag.errors import MedRAGError
from medrag.evaluation import metrics as M
from medrag.evaluation.datasets import RETRIEVAL_DATASETS, Question, load
from medrag.evaluation.exact import candidates
from medrag.generation import clean_citations

if TYPE_CHECKING:
    from medrag.documents import Chunk
    from medrag.generation import Generator
    from medrag.pipeline import MedRAG

log = logging.getLogger(__name__)

PREDICTIONS, METRICS, CONFIG, REPORT, SUBMISSION = ("predictions.jsonl", "metrics.json", "config.json", "report.md",
                                                   "bioasq_submission.json")
MODES = ("loglik", "generate")
BATCH = 32  # questions per retrieve_batch call
RETRIEVAL_METRICS = ("recall@10", "recall@32", "recall@100", "mrr@10", "ndcg@10", "precision@10")
EXACT_TYPES = ("factoid", "list")  # BioASQ questions answered with entities besides the ideal answer
EXACT_CANDIDATES = 5  # BioASQ scores the first 5 factoid candidates
SUBMISSION_DOCUMENTS = 10  # BioASQ accepts at most 10 documents and 10 snippets per question
PUBMED_URL = "http://www.ncbi.nlm.nih.gov/pubmed/{}"
TOY_HIDDEN_SIZE = 64  # a causal LM narrower than this is a test model: its scores are noise
VERSIONED = ("medrag", "torch", "transformers", "sentence-transformers", "faiss-cpu", "numpy", "rouge-score")
#: keys of config.json that must match for a run to resume into an existing output folder
RESUME_KEYS = ("kind", "dataset", "data", "generator", "method", "k", "no_retrieval", "embedder", "retriever",
               "index_chunks")


class PredictionLog:
    """``predictions.jsonl``: records appended one line at a time; a torn last line is dropped on open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        if path.exists():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):  # killed in the middle of a write: drop the partial line
                keep = data.rfind(b"\n") + 1
                log.warning("%s: dropping a partial last line (%d bytes)", path, len(data) - keep)
                with path.open("r+b") as f:
                    f.truncate(keep)
                data = data[:keep]
            for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
                try:
                    record = json.loads(line)
                    self.records[str(record["id"])] = record
                except (ValueError, KeyError, TypeError):
                    log.warning("%s:%d: unreadable line skipped", path, n)

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.records[str(record["id"])] = record


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _git() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _start(out_dir: str | Path, config: dict[str, Any]) -> tuple[Path, PredictionLog]:
    """Create ``out_dir``, refuse to mix runs made with other settings, write config.json, open the log."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    previous = out / CONFIG
    if previous.exists() and (out / PREDICTIONS).exists():
        try:
            old = json.loads(previous.read_text())
        except ValueError:
            old = {}
        changed = [f"{key}: {old.get(key)!r} -> {config.get(key)!r}" for key in RESUME_KEYS
                   if key in old and old.get(key) != config.get(key)]
        if changed:
            raise MedRAGError(f"{out} holds a run made with other settings ({'; '.join(changed)}); "
                              "choose another --out or delete it")
    _write_json(previous, config)
    return out, PredictionLog(out / PREDICTIONS)


def _rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _base_config(rag: MedRAG, kind: str, dataset: str, data_path: str | Path, **fields: Any) -> dict[str, Any]:
    settings = rag.settings.to_dict()
    return {"kind": kind, "dataset": dataset, "data": str(Path(data_path).resolve()), **fields,
            "embedder": settings.get("embedder"), "retriever": settings.get("retriever", "dense"),
            "index_chunks": rag.chunks.count(), "index_documents": rag.chunks.count_documents(),
            "settings": settings, "versions": _versions(), "git": _git(),
            "started": datetime.now(UTC).isoformat(timespec="seconds")}


def _run(questions: Sequence[Question], plog: PredictionLog, answer: Callable[[list[Question]], Iterable[dict]],
         desc: str, progress: bool) -> None:
    """Answer the questions not yet in ``plog`` in batches, appending each record as it comes."""
    todo = [q for q in questions if q.id not in plog.records]
    if len(todo) < len(questions):
        log.info("%s: %d of %d questions already answered; resuming", desc, len(questions) - len(todo),
                 len(questions))
    with tqdm(total=len(questions), initial=len(questions) - len(todo), desc=desc, unit="q",
              disable=not progress) as bar:
        for start in range(0, len(todo), BATCH):
            for record in answer(todo[start:start + BATCH]):
                plog.append(record)
                bar.update()


def _ranked(pairs: Iterable[tuple[str | None, str | None]]) -> dict[str, list[str]]:
    """Distinct document ids and PMIDs in rank order from (doc id, pmid) pairs."""
    pairs = list(pairs)
    return {"docs": list(dict.fromkeys(d for d, _ in pairs if d)), "pmids": list(dict.fromkeys(p for _, p in pairs if p))}


def _snippets(chunks: Iterable[Chunk]) -> list[dict[str, str]]:
    """PubMed passages for a BioASQ submission (at most ``SUBMISSION_DOCUMENTS``)."""
    return [{"pmid": c.pmid, "text": c.text} for c in chunks if c.pmid][:SUBMISSION_DOCUMENTS]


def choice_prompt(q: Question) -> str:
    """The question followed by its options, as one line for the prompt."""
    assert q.options is not None
    if all(k == v for k, v in q.options.items()):
        return f"{q.question} ({', '.join(q.options)})"
    return f"{q.question} Options: " + " ".join(f"{k}. {v}" for k, v in q.options.items())


def parse_choice(text: str, options: dict[str, str]) -> str | None:
    """The option a generated answer names: a letter (``B``, ``(B)``, ``answer is B``), else the option
    text that appears first (whole words, any case); None when it names none."""
    if all(len(k) == 1 and k.isalpha() and k.isupper() for k in options):
        match = (re.search(r"\b(?:answer|option)\s*(?:is|:)?\s*\(?([A-Z])\b", text, re.IGNORECASE)
                 or re.match(r"\s*\(?([A-Z])(?:[).:,]|\s|$)", text))
        if match and match.group(1).upper() in options:
            return match.group(1).upper()
    found = [(m.start(), k) for k, v in options.items() if v
             for m in [re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text, re.IGNORECASE)] if m]
    return min(found)[1] if found else None


class _QA:
    """Answers one batch of questions: multiple choice by ``method``, free text through ``rag.ask``."""

    def __init__(self, rag: MedRAG, gen: Generator, spec: str, method: str, k: int, no_retrieval: bool,
                 snippets: bool) -> None:
        self.rag, self.gen, self.spec, self.method, self.k = rag, gen, spec, method, k
        self.no_retrieval, self.snippets = no_retrieval, snippets  # snippets: kept for the BioASQ submission

    def __call__(self, batch: list[Question]) -> Iterator[dict[str, Any]]:
        choice = [q for q in batch if q.options]
        started = time.perf_counter()
        hits = (self.rag.retrieve_batch([q.question for q in choice], self.k) if choice and not self.no_retrieval
                else [[] for _ in choice])
        share = (time.perf_counter() - started) / max(len(choice), 1)
        for q, found in zip(choice, hits):
            yield self.choose(q, [h.chunk for h in found], share)
        for q in batch:
            if not q.options:
                yield self.free_text(q)

    def choose(self, q: Question, chunks: list[Chunk], seconds: float) -> dict[str, Any]:
        assert q.options is not None
        started = time.perf_counter()
        keys, texts = list(q.options), list(q.options.values())
        record: dict[str, Any] = {"id": q.id, "dataset": q.dataset, "type": q.type}
        if self.method == "loglik":
            scores = self.gen.option_logprobs(choice_prompt(q), texts, chunks, per_token=True)  # type: ignore[attr-defined]
            record["prediction"] = keys[int(np.argmax(scores))]
            record["scores"] = {k: round(s, 4) for k, s in zip(keys, scores)}
        elif self.method == "generate":
            letters = "the letter of the correct option" if keys != texts else " or ".join(keys)
            result = self.gen.generate(f"{choice_prompt(q)} Answer with {letters}.", chunks)
            record["generated"] = result.text
            record["prediction"] = parse_choice(result.text, q.options)
        else:  # similarity: the option closest to the extractive answer (MiniLM cosine)
            result = self.gen.generate(q.question, chunks) if chunks else None
            text = clean_citations(result.text, set())[0] if result else ""
            record["generated"] = text
            record["prediction"] = None
            if text:
                vectors = self.rag.embedder.embed_documents([text, *texts])
                similarity = vectors[1:] @ vectors[0]
                record["prediction"] = keys[int(np.argmax(similarity))]
                record["scores"] = {k: round(float(s), 4) for k, s in zip(keys, similarity)}
        record.update(gold=q.answer, **_ranked((c.doc_id, c.pmid) for c in chunks), citations=[],
                      seconds=round(seconds + time.perf_counter() - started, 4))
        if self.snippets:
            record["snippets"] = _snippets(chunks)
        return record

    def free_text(self, q: Question) -> dict[str, Any]:
        started = time.perf_counter()
        answer = self.rag.ask(q.question, k=self.k, generator=self.spec)
        supports = [s.get("support") if isinstance(s, dict) else getattr(s, "support", None)
                    for s in getattr(answer, "sentences", None) or []]
        supports = [float(s) for s in supports if isinstance(s, (int, float))]
        body = answer.text.removesuffix(DISCLAIMER)
        for notice in getattr(answer, "notices", None) or []:  # emergency or language notices: not the answer
            body = body.replace(notice, "", 1)
        record = {"id": q.id, "dataset": q.dataset, "type": q.type, "prediction": body.strip(),
                  "gold": None, "n_references": len(q.ideal),  # reference texts stay in the dataset
                  **_ranked((r.get("doc_id"), r.get("pmid")) for r in answer.retrieved),
                  "citations": [{"n": c.n, "pmid": c.pmid, "url": c.url} for c in answer.citations],
                  "abstained": getattr(answer, "abstained", None), "support": M.mean(supports),
                  "invalid_citations": answer.invalid_citations}
        ids = [int(r["chunk_id"]) for r in answer.retrieved if r.get("chunk_id") is not None]
        found = self.rag.chunks.get(ids) if self.snippets or q.type in EXACT_TYPES else {}
        if self.snippets:
            record["snippets"] = _snippets(found[i] for i in ids if i in found)
        if q.type in EXACT_TYPES:  # BioASQ factoid/list: phrases of the retrieved passages (medrag.evaluation.exact)
            record["exact"] = candidates(q.question, [found[i].text for i in ids if i in found], EXACT_CANDIDATES)
        record["seconds"] = round(time.perf_counter() - started, 4)
        return record


def _method(gen: Generator, mode: str) -> str:
    if mode not in MODES:
        raise MedRAGError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if hasattr(gen, "option_logprobs"):
        return mode
    return "similarity" if gen.name == "extractive" else "generate"


def _model_info(gen: Generator) -> dict[str, Any] | None:
    """Size of a Hugging Face generator's network, and whether it is a toy test model."""
    config = getattr(getattr(gen, "model", None), "config", None) if hasattr(gen, "option_logprobs") else None
    if config is None:
        return None
    hidden = next((getattr(config, a) for a in ("hidden_size", "n_embd", "d_model") if getattr(config, a, None)), None)
    layers = next((getattr(config, a) for a in ("num_hidden_layers", "n_layer") if getattr(config, a, None)), None)
    return {"hidden_size": hidden, "layers": layers, "toy": bool(hidden and hidden < TOY_HIDDEN_SIZE)}


def scorable(q: Question, no_retrieval: bool) -> bool:
    """Whether a question can be scored: a gold option, or references for a retrieved free-text answer."""
    return q.answer is not None if q.options else bool(q.ideal) and not no_retrieval


def evaluate(rag: MedRAG, dataset: str, data_path: str | Path, out_dir: str | Path, *, generator: str | None = None,
             k: int | None = None, limit: int | None = None, no_retrieval: bool = False, mode: str = "loglik",
             progress: bool = True, extra_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Answer ``dataset`` (read from ``data_path``) with ``rag`` and write predictions, metrics and a report.

    Multiple-choice questions are answered by ``mode``: ``loglik`` (a Hugging Face LM's most likely
    option text), ``generate`` (a letter or yes/no parsed from generated text; unparseable is wrong),
    and, with the extractive generator, the option most similar to the extracted sentences. Free-text
    questions go through ``rag.ask`` and are scored with ROUGE against the references.
    """
    loaded = load(dataset, data_path)[:limit]
    questions = [q for q in loaded if scorable(q, no_retrieval)]
    if not questions:
        raise MedRAGError(f"no question in {data_path} has a gold answer or references to score against")
    if len(questions) < len(loaded):
        log.warning("%d of %d questions cannot be scored (no gold answer or references%s) and are skipped",
                    len(loaded) - len(questions), len(loaded), ", or free text without retrieval" * no_retrieval)
    k = k or rag.settings.k
    spec = generator or rag.settings.generator
    gen = rag.generator(spec)
    method = _method(gen, mode)
    config = _base_config(rag, "qa", dataset, data_path, generator=gen.name, method=method, mode=mode, k=k,
                          no_retrieval=no_retrieval, limit=limit, **(extra_config or {}))
    out, plog = _start(out_dir, config)
    started = time.perf_counter()
    _run(questions, plog, _QA(rag, gen, spec, method, k, no_retrieval, dataset == "bioasq"), f"eval {dataset}", progress)
    config.update(model=_model_info(gen), finished=datetime.now(UTC).isoformat(timespec="seconds"))
    _write_json(out / CONFIG, config)

    records = [(q, plog.records[q.id]) for q in questions]
    index_pmids = rag.chunks.pmids()
    result = score(records, index_pmids, k)
    result["n_skipped"] = len(loaded) - len(questions)
    result["run_seconds"] = round(time.perf_counter() - started, 2)
    result = _rounded(result)
    _write_json(out / METRICS, result)
    if dataset == "bioasq":
        _write_json(out / SUBMISSION, bioasq_submission(records))
    from medrag.evaluation.report import write_report

    curve = M.recall_curve(*_runs(records), k, index_pmids)
    write_report(out, config, result, [(q, r) for q, r in records], curve)
    return result


def _runs(records: Sequence[tuple[Question, dict[str, Any]]]) -> tuple[list[list[str]], list[list[str]]]:
    """(ranked PMIDs, gold PMIDs) of the records whose question has gold PMIDs."""
    pairs = [(r.get("pmids", []), q.gold_pmids) for q, r in records if q.gold_pmids]
    return [p for p, _ in pairs], [g for _, g in pairs]


def score(records: Sequence[tuple[Question, dict[str, Any]]], index_pmids: set[str] | None,
          k: int) -> dict[str, Any]:
    """Flat metrics of (question, prediction record) pairs."""
    result: dict[str, Any] = {"n_questions": len(records)}
    choice = [(q, r) for q, r in records if q.options]
    if choice:
        result["accuracy"] = M.accuracy([r["prediction"] for _, r in choice], [q.answer for q, _ in choice])
        result["n_unparsed"] = sum(r["prediction"] is None for _, r in choice)
        yes_no: dict[str, float | None] = {}
        for name in sorted({q.dataset for q, _ in choice}):
            part = [(q, r) for q, r in choice if q.dataset == name]
            result[f"accuracy.{name}"] = M.accuracy([r["prediction"] for _, r in part], [q.answer for q, _ in part])
            result[f"n.{name}"] = len(part)
            texts = [q.options or {} for q, _ in part]
            labels = sorted({v.lower() for t in texts for v in t.values()})
            if set(labels) <= {"yes", "no", "maybe"}:
                yes_no[name] = M.macro_f1([t.get(r["prediction"], "").lower() or None for t, (_, r) in zip(texts, part)],
                                          [t[q.answer].lower() for t, (q, _) in zip(texts, part)], labels)
        result.update({f"macro_f1.{name}": value for name, value in yes_no.items()})
        if len(yes_no) == 1:
            result["macro_f1"] = next(iter(yes_no.values()))
    free = [(q, r) for q, r in records if not q.options]
    if free:
        texts = {q.id: clean_citations(r["prediction"], set())[0] for q, r in free}  # scored without [n] markers
        result.update(M.rouge([texts[q.id] for q, _ in free], [q.ideal for q, _ in free]))
        types = sorted({q.type for q, _ in free})
        for name in types if len(types) > 1 else []:
            part = [q for q, _ in free if q.type == name]
            scores = M.rouge([texts[q.id] for q in part], [q.ideal for q in part])
            result.update({f"{metric}.{name}": value for metric, value in scores.items()})
        if any(r.get("abstained") is not None for _, r in free):  # the Answer says whether it abstained
            result["abstention_rate"] = M.mean([float(bool(r.get("abstained"))) for _, r in free])
            answered = [q for q, r in free if not r.get("abstained")]
            result["n_answered"] = len(answered)
            scores = M.rouge([texts[q.id] for q in answered], [q.ideal for q in answered])
            result.update({f"{metric}.answered": value for metric, value in scores.items()})
        supports = [r["support"] for _, r in free if r.get("support") is not None]
        if supports:
            result["citation_support"] = M.mean(supports)
        for name in EXACT_TYPES:
            part = [(q, r) for q, r in free if q.type == name and q.exact]
            if part:
                result[f"mention.{name}"] = M.mean([M.mention_recall(r["prediction"], q.exact) for q, r in part])
        factoid = [(q, r) for q, r in free if q.type == "factoid" and q.exact and "exact" in r]
        if factoid:
            scores = M.factoid_scores([r["exact"] for _, r in factoid], [[s for e in q.exact for s in e] for q, _ in factoid])
            result.update({f"factoid.{metric}": value for metric, value in scores.items()})
        listed = [(q, r) for q, r in free if q.type == "list" and q.exact and "exact" in r]
        if listed:
            scores = M.list_scores([r["exact"] for _, r in listed], [q.exact for q, _ in listed])
            result.update({f"list.{metric}": value for metric, value in scores.items()})
    runs, gold = _runs(records)
    if runs:
        names = [f"recall@{k}", f"precision@{k}", f"mrr@{k}", f"ndcg@{k}"]
        found = M.retrieval_scores(runs, gold, names, index_pmids)
        result["n_retrieval_questions"] = found.pop("n_questions")
        result.update(found)
    seconds = sum(r.get("seconds", 0.0) for _, r in records)
    result["seconds_per_question"] = round(seconds / len(records), 4) if records else None
    return result


def bioasq_submission(records: Sequence[tuple[Question, dict[str, Any]]]) -> dict[str, Any]:
    """BioASQ's submission JSON: up to 10 documents and snippets per question, ideal and yes/no exact answers.

    Snippet offsets span the passage text itself: chunks do not keep their offsets in the abstract.
    """
    questions = []
    for q, r in records:
        item: dict[str, Any] = {"id": q.id, "type": q.type, "body": q.question,
                                "documents": [PUBMED_URL.format(p) for p in r.get("pmids", [])[:SUBMISSION_DOCUMENTS]],
                                "snippets": [{"document": PUBMED_URL.format(s["pmid"]), "text": s["text"],
                                              "offsetInBeginSection": 0, "offsetInEndSection": len(s["text"]),
                                              "beginSection": "abstract", "endSection": "abstract"}
                                             for s in r.get("snippets", [])[:SUBMISSION_DOCUMENTS]]}
        text = r["prediction"] if not q.options else r.get("generated")
        if text:
            item["ideal_answer"] = clean_citations(text, set())[0]
        if q.type == "yesno" and r["prediction"] is not None:
            item["exact_answer"] = r["prediction"]
        elif q.type in EXACT_TYPES and r.get("exact"):  # factoid: up to 5 ranked entities; list: the items
            item["exact_answer"] = [[c] for c in r["exact"]]
        questions.append(item)
    return {"questions": questions}


def evaluate_retrieval(rag: MedRAG, dataset: str, data_path: str | Path, out_dir: str | Path, k: int = 100, *,
                       limit: int | None = None, progress: bool = True,
                       extra_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rank PMIDs for each question (the top ``k`` passages, repeats dropped) and score them against the
    gold PMIDs (PubMedQA: the question's own abstract) that the index holds."""
    if dataset not in RETRIEVAL_DATASETS:
        raise MedRAGError(f"retrieval evaluation needs gold PMIDs: choose from {', '.join(RETRIEVAL_DATASETS)}")
    questions = [q for q in load(dataset, data_path) if q.gold_pmids][:limit]
    config = _base_config(rag, "retrieval", dataset, data_path, k=k, limit=limit, **(extra_config or {}))
    out, plog = _start(out_dir, config)

    def answer(batch: list[Question]) -> Iterator[dict[str, Any]]:
        started = time.perf_counter()
        hits = rag.retrieve_batch([q.question for q in batch], k)
        share = round((time.perf_counter() - started) / len(batch), 4)
        for q, found in zip(batch, hits):
            yield {"id": q.id, "pmids": _ranked((h.chunk.doc_id, h.chunk.pmid) for h in found)["pmids"],
                   "gold": q.gold_pmids, "seconds": share}

    _run(questions, plog, answer, f"retrieval {dataset}", progress)
    records = [(q, plog.records[q.id]) for q in questions]
    index_pmids = rag.chunks.pmids()
    runs, gold = _runs(records)
    result = _rounded(M.retrieval_scores(runs, gold, RETRIEVAL_METRICS, index_pmids))
    _write_json(out / METRICS, result)
    config.update(n_loaded=len(questions), n_without_gold_in_index=len(questions) - result["n_questions"],
                  finished=datetime.now(UTC).isoformat(timespec="seconds"))
    _write_json(out / CONFIG, config)
    from medrag.evaluation.report import write_report

    curve = M.recall_curve(runs, gold, k, index_pmids)
    _write_json(out / "recall_curve.json", [round(x, 6) for x in curve])
    write_report(out, config, result, records, curve)
    return result
