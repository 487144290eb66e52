"""Tune domain adaptation: train the embedder (and reranker) under several configurations, score each on dev
questions.

Two steps, so the training can run on a machine without FAISS or the index (a rented GPU, say):

    # where the index is: the dev questions, their BM25 top-100 and the index's passages, in one file
    python eval/sweep_embedder.py prepare --index indexes/bench-bioasq --dataset bioasq \\
        --data /tmp/bioasq9b --out .devrun/bundle.json.gz
    # anywhere with torch and sentence-transformers: train each configuration, score dense and hybrid
    python eval/sweep_embedder.py run --bundle .devrun/bundle.json.gz --train DATA... \\
        --configs '[{"epochs": 1}, {"epochs": 2, "hard_negatives": 1}]' --out .devrun/sweep

Scores are those of ``medrag eval retrieval`` (PMID level, repeats dropped, only gold PMIDs the index holds):
dense search here is exact (numpy), as with a Flat index, and hybrid fuses it with the bundle's BM25 lists the
way ``Retriever`` does. Each configuration's figures are appended to ``OUT/sweep.jsonl``; the best model is kept
as ``OUT/best``. Never give it test questions: the sweep picks hyper-parameters on what it scores.
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from medrag import fusion
from medrag.embedding import Embedder
from medrag.settings import Settings
from medrag.evaluation import metrics as M
from medrag.evaluation.harness import RETRIEVAL_METRICS, _ranked
from medrag.reranking import Reranker
from medrag.training import TrainConfig, train_embedder, train_reranker, training_pairs

log = logging.getLogger("sweep_embedder")
DEPTH = 100  # each retriever's candidates, as fusion_candidates and the eval's k


def prepare(index: Path, dataset: str, data: Path, out: Path) -> None:
    """Write the dev questions, each with its BM25 top ``DEPTH``, and the index's passages to ``out``."""
    from medrag import MedRAG
    from medrag.evaluation.datasets import load

    rag = MedRAG.load(index)
    questions = [q for q in load(dataset, data) if q.gold_pmids]
    if rag.lexical is None:
        sys.exit(f"{index} has no BM25 index")
    scores, ids = rag.lexical.search([q.question for q in questions], DEPTH)
    chunks = rag.chunks.get(rag.chunks.ids())
    bundle = {
        "index": str(index), "dataset": dataset, "data": str(data), "settings": rag.settings.to_dict(),
        "chunks": [[i, c.doc_id, c.pmid, c.embed_text] for i, c in sorted(chunks.items())],
        "questions": [{"id": q.id, "question": q.question, "gold": q.gold_pmids, "bm25_ids": row_ids.tolist(),
                       "bm25_scores": [round(float(s), 5) for s in row_scores]}
                      for q, row_ids, row_scores in zip(questions, ids, scores)],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as f:
        json.dump(bundle, f)
    print(f"{out}: {len(questions)} questions, {len(chunks)} passages")


def rank(bundle: dict[str, Any], model: str) -> dict[str, list[list[tuple[int, float]]]]:
    """Each question's ranked (chunk id, score) lists: dense with ``model``, and fused with the bundle's BM25
    (RRF; min-max score fusion with the dense side weighted 0.5 to 0.8)."""
    settings = Settings(**bundle["settings"])  # nested, or the flat form of bundles made before the groups
    embedder = Embedder(model, query_prompt=settings.embedding.query_prompt,
                        document_prompt=settings.embedding.document_prompt, batch_size=128)
    chunk_ids = np.array([c[0] for c in bundle["chunks"]], dtype=np.int64)
    docs = embedder.embed_documents([c[3] for c in bundle["chunks"]])
    questions = bundle["questions"]
    sims = embedder.embed_queries([q["question"] for q in questions]) @ docs.T
    top = np.argsort(-sims, axis=1)[:, :DEPTH]
    dense = (chunk_ids[top], np.take_along_axis(sims, top, axis=1))
    bm25 = (np.array([q["bm25_ids"] for q in questions]), np.array([q["bm25_scores"] for q in questions]))
    rankings = {"dense": [list(zip(i.tolist(), s.tolist())) for i, s in zip(*dense)],
                "hybrid-rrf": fusion.rrf_batch([dense[0], bm25[0]], k=settings.retrieval.rrf_k, limit=DEPTH),
                "hybrid-rrf-k20": fusion.rrf_batch([dense[0], bm25[0]], k=20, limit=DEPTH),
                "hybrid-rrf-w0.6": fusion.rrf_batch([dense[0], bm25[0]], k=settings.retrieval.rrf_k,
                                                    weights=[0.6, 0.4], limit=DEPTH)}
    for w in (0.5, 0.6, 0.7, 0.8):
        name = "hybrid-minmax" if w == 0.5 else f"hybrid-minmax-w{w}"
        rankings[name] = fusion.score_fusion_batch([dense, bm25], [w, 1 - w], normalize="minmax", limit=DEPTH)
    return rankings


def rerank(bundle: dict[str, Any], rankings: list[list[tuple[int, float]]], model: str,
           depth: int) -> list[list[tuple[int, float]]]:
    """Each ranking's top ``depth`` re-ordered by the cross-encoder ``model`` (as ``Retriever`` does)."""
    text = {c[0]: c[3] for c in bundle["chunks"]}
    pairs = [(q["question"], text[i]) for q, row in zip(bundle["questions"], rankings) for i, _ in row[:depth]]
    scores = iter(Reranker(model, batch_size=128).score(pairs).tolist())
    out = []
    for row in rankings:
        top = sorted(((i, next(scores)) for i, _ in row[:depth]), key=lambda hit: -hit[1])
        out.append(top + row[depth:])
    return out


def figures(bundle: dict[str, Any], rankings: dict[str, list[list[tuple[int, float]]]]) -> dict[str, Any]:
    """``medrag eval retrieval``'s metrics of each ranking, flat (``hybrid-rrf.recall@10``, ...)."""
    pmid_of = {c[0]: (c[1], c[2]) for c in bundle["chunks"]}
    index_pmids = {c[2] for c in bundle["chunks"] if c[2]}
    gold = [q["gold"] for q in bundle["questions"]]
    out: dict[str, Any] = {}
    for name, ranked in rankings.items():
        runs = [_ranked(pmid_of[i] for i, _ in row if i >= 0)["pmids"] for row in ranked]
        for metric, value in M.retrieval_scores(runs, gold, RETRIEVAL_METRICS, index_pmids).items():
            if value is not None and metric != "n_questions":
                out[f"{name}.{metric}"] = round(value, 4)
    out["n_questions"] = len(gold)
    return out


def run(bundle_path: Path, train: list[Path], configs: list[dict[str, Any]], out: Path, base: str) -> None:
    """Train each configuration and score it; keep the best embedder (hybrid-RRF recall@10 + MRR@10) as
    ``OUT/best``. A configuration with ``"kind": "reranker"`` trains a cross-encoder and re-ranks the top
    ``depths`` (default 20 and 50) of the best embedder's hybrid lists; ``"base": "best"`` starts a model
    from the best embedder so far."""
    with gzip.open(bundle_path, "rt", encoding="utf-8") as f:
        bundle = json.load(f)
    pairs = training_pairs(train)
    out.mkdir(parents=True, exist_ok=True)
    best, best_model = -1.0, base
    rankings = rank(bundle, base)
    _report(out, {"config": "unadapted", "base": base, **figures(bundle, rankings)})
    for overrides in configs:
        overrides = dict(overrides)
        kind, depths = overrides.pop("kind", "embedder"), overrides.pop("depths", [20, 50])
        if overrides.get("base") == "best":  # e.g. a reranker started from the adapted embedder's weights
            overrides["base"] = best_model
        config = replace(TrainConfig(base=base), **overrides)
        started = time.perf_counter()
        trainer = train_embedder if kind == "embedder" else train_reranker
        model = str(trainer(pairs, out / "candidate", config))
        row: dict[str, Any] = {"kind": kind, "config": overrides, "train_seconds": round(time.perf_counter() - started, 1)}
        if kind == "reranker":
            row["embedder"] = best_model
            row.update(figures(bundle, {f"{name}+rerank{depth}": rerank(bundle, rankings[name], model, depth)
                                        for name in ("hybrid-rrf", "hybrid-minmax") for depth in depths}))
            shutil.rmtree(out / "candidate")
            _report(out, row)
            continue
        candidate = rank(bundle, model)
        row.update(figures(bundle, candidate))
        _report(out, row)
        merit = row["hybrid-rrf.recall@10"] + row["hybrid-rrf.mrr@10"]
        if merit > best:
            best, rankings = merit, candidate
            shutil.rmtree(out / "best", ignore_errors=True)
            (out / "candidate").rename(out / "best")
            best_model = str(out / "best")
    shutil.rmtree(out / "candidate", ignore_errors=True)


def _report(out: Path, row: dict[str, Any]) -> None:
    with (out / "sweep.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--dataset", default="bioasq")
    p.add_argument("--data", type=Path, required=True, help="dev questions (never a test split)")
    p.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--bundle", type=Path, required=True)
    r.add_argument("--train", type=Path, nargs="+", required=True, help="training files (as train-embedder --data)")
    r.add_argument("--configs", required=True, help="JSON list of TrainConfig overrides")
    r.add_argument("--base", default="all-MiniLM-L6-v2")
    r.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.step == "prepare":
        prepare(args.index, args.dataset, args.data, args.out)
    else:
        run(args.bundle, args.train, json.loads(args.configs), args.out, args.base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
