"""``evaluate`` and ``evaluate_retrieval``: run a MedRAG pipeline over an evaluation set, resumably.

Every answered question is appended to ``predictions.jsonl`` at once (``runlog``), so an interrupted run
loses at most the question it was on; re-running the same command skips the ids already there. Questions
are answered by ``strategies``, scored by ``scoring``; BioASQ runs also write ``submission``'s JSON.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medrag.errors import MedRAGError
from medrag.evaluation import metrics as M
from medrag.evaluation.datasets import RETRIEVAL_DATASETS, Question, load
from medrag.evaluation.runlog import CONFIG, METRICS, base_config, rounded, run, start
from medrag.evaluation.scoring import runs, score
from medrag.evaluation.strategies import QA, choice_prompt, method, model_info, parse_choice, ranked, scorable
from medrag.evaluation.submission import SUBMISSION, bioasq_submission
from medrag.fileio import write_json

if TYPE_CHECKING:
    from medrag.pipeline import MedRAG

log = logging.getLogger(__name__)

RETRIEVAL_METRICS = ("recall@10", "recall@32", "recall@100", "mrr@10", "ndcg@10", "precision@10")
_ranked = ranked  # the name eval/sweep_embedder.py imports


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
    k = k or rag.settings.retrieval.k
    spec = generator or rag.settings.generation.generator
    gen = rag.generator(spec)
    how = method(gen, mode)
    config = base_config(rag, "qa", dataset, data_path, generator=gen.name, method=how, mode=mode, k=k,
                          no_retrieval=no_retrieval, limit=limit, **(extra_config or {}))
    out, plog = start(out_dir, config)
    started = time.perf_counter()
    run(questions, plog, QA(rag, gen, spec, how, k, no_retrieval, dataset == "bioasq"), f"eval {dataset}", progress)
    config.update(model=model_info(gen), finished=datetime.now(UTC).isoformat(timespec="seconds"))
    write_json(out / CONFIG, config)

    records = [(q, plog.records[q.id]) for q in questions]
    index_pmids = rag.chunks.pmids()
    result = score(records, index_pmids, k)
    result["n_skipped"] = len(loaded) - len(questions)
    result["run_seconds"] = round(time.perf_counter() - started, 2)
    result = rounded(result)
    write_json(out / METRICS, result)
    if dataset == "bioasq":
        write_json(out / SUBMISSION, bioasq_submission(records))
    from medrag.evaluation.report import write_report

    curve = M.recall_curve(*runs(records), k, index_pmids)
    write_report(out, config, result, [(q, r) for q, r in records], curve)
    return result


def evaluate_retrieval(rag: MedRAG, dataset: str, data_path: str | Path, out_dir: str | Path, k: int = 100, *,
                       limit: int | None = None, progress: bool = True,
                       extra_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rank PMIDs for each question (the top ``k`` passages, repeats dropped) and score them against the
    gold PMIDs (PubMedQA: the question's own abstract) that the index holds."""
    if dataset not in RETRIEVAL_DATASETS:
        raise MedRAGError(f"retrieval evaluation needs gold PMIDs: choose from {', '.join(RETRIEVAL_DATASETS)}")
    questions = [q for q in load(dataset, data_path) if q.gold_pmids][:limit]
    config = base_config(rag, "retrieval", dataset, data_path, k=k, limit=limit, **(extra_config or {}))
    out, plog = start(out_dir, config)

    def answer(batch: list[Question]) -> Iterator[dict[str, Any]]:
        started = time.perf_counter()
        hits = rag.retrieve_batch([q.question for q in batch], k)
        share = round((time.perf_counter() - started) / len(batch), 4)
        for q, found in zip(batch, hits):
            yield {"id": q.id, "pmids": ranked((h.chunk.doc_id, h.chunk.pmid) for h in found)["pmids"],
                   "gold": q.gold_pmids, "seconds": share}

    run(questions, plog, answer, f"retrieval {dataset}", progress)
    records = [(q, plog.records[q.id]) for q in questions]
    index_pmids = rag.chunks.pmids()
    ranked_runs, gold = runs(records)
    result = rounded(M.retrieval_scores(ranked_runs, gold, RETRIEVAL_METRICS, index_pmids))
    write_json(out / METRICS, result)
    config.update(n_loaded=len(questions), n_without_gold_in_index=len(questions) - result["n_questions"],
                  finished=datetime.now(UTC).isoformat(timespec="seconds"))
    write_json(out / CONFIG, config)
    from medrag.evaluation.report import write_report

    curve = M.recall_curve(ranked_runs, gold, k, index_pmids)
    write_json(out / "recall_curve.json", [round(x, 6) for x in curve])
    write_report(out, config, result, records, curve)
    return result


__all__ = ["RETRIEVAL_METRICS", "choice_prompt", "evaluate", "evaluate_retrieval", "parse_choice", "scorable"]
