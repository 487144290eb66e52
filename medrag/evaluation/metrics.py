"""Evaluation metrics as pure functions over lists: answers, retrieval rankings, BioASQ exact answers, ROUGE."""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Hashable, Sequence
from functools import lru_cache
from typing import Any


def mean(values: Sequence[float]) -> float | None:
    """The average, or None for no values (JSON ``null``, never NaN)."""
    return sum(values) / len(values) if values else None


def accuracy(predictions: Sequence[Hashable | None], gold: Sequence[Hashable]) -> float | None:
    """Share of predictions equal to the gold; a missing prediction (None) is wrong."""
    return mean([float(p is not None and p == g) for p, g in zip(predictions, gold, strict=True)])


def macro_f1(predictions: Sequence[Hashable | None], gold: Sequence[Hashable],
             labels: Sequence[Hashable] | None = None) -> float | None:
    """Unweighted mean of per-label F1 (default labels: those in gold or predicted); None counts as wrong."""
    if not gold:
        return None
    labels = list(labels) if labels is not None else sorted({*gold, *(p for p in predictions if p is not None)},
                                                            key=str)
    scores = []
    for label in labels:
        tp = sum(p == label and g == label for p, g in zip(predictions, gold, strict=True))
        predicted, actual = sum(p == label for p in predictions), sum(g == label for g in gold)
        scores.append(2 * tp / (predicted + actual) if predicted + actual else 0.0)
    return mean(scores)


# -- retrieval (binary relevance, document level) ------------------------------------------------
def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant ids in the first ``k``."""
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def precision_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Relevant ids in the first ``k`` divided by ``k`` (also when fewer were retrieved, as trec_eval)."""
    return len(set(ranked[:k]) & set(relevant)) / k


def mrr_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1 / rank of the first relevant id within the first ``k``, else 0."""
    return next((1.0 / rank for rank, i in enumerate(ranked[:k], 1) if i in relevant), 0.0)


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Binary-gain nDCG with a log2(rank + 1) discount over the first ``k``."""
    dcg = sum(1.0 / math.log2(rank + 1) for rank, i in enumerate(ranked[:k], 1) if i in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


RANKING: dict[str, Callable[[Sequence[str], Collection[str], int], float]] = {
    "recall": recall_at_k, "precision": precision_at_k, "mrr": mrr_at_k, "ndcg": ndcg_at_k}


def judged(qrels: Sequence[Collection[str]], index_ids: Collection[str] | None) -> list[set[str]]:
    """Each query's relevant ids that the index holds (all of them when ``index_ids`` is None)."""
    return [set(r) & set(index_ids) if index_ids is not None else set(r) for r in qrels]


def retrieval_scores(runs: Sequence[Sequence[str]], qrels: Sequence[Collection[str]],
                     names: Sequence[str] = ("recall@10", "precision@10", "mrr@10", "ndcg@10"),
                     index_ids: Collection[str] | None = None) -> dict[str, Any]:
    """Mean ``metric@k`` for each name over the queries with a relevant id in the index, plus ``n_questions``.

    Relevant ids absent from ``index_ids`` are dropped first: no retriever can find them.
    """
    pairs = [(run, rel) for run, rel in zip(runs, judged(qrels, index_ids), strict=True) if rel]
    scores: dict[str, Any] = {"n_questions": len(pairs)}
    for name in names:
        metric, _, k = name.partition("@")
        scores[name] = mean([RANKING[metric](run, rel, int(k)) for run, rel in pairs])
    return scores


def recall_curve(runs: Sequence[Sequence[str]], qrels: Sequence[Collection[str]], max_k: int,
                 index_ids: Collection[str] | None = None) -> list[float]:
    """Mean recall@k for k = 1 .. ``max_k`` over the queries with a relevant id in the index."""
    pairs = [(run, rel) for run, rel in zip(runs, judged(qrels, index_ids), strict=True) if rel]
    return [mean([recall_at_k(run, rel, k) for run, rel in pairs]) or 0.0 for k in range(1, max_k + 1)] if pairs \
        else []


# -- BioASQ exact answers ------------------------------------------------------------------------
def normalize(text: str) -> str:
    """Lower case, single spaces: how BioASQ compares exact answers."""
    return " ".join(text.lower().split())


def factoid_scores(candidates: Sequence[Sequence[str]], gold: Sequence[Sequence[str]],
                   n: int = 5) -> dict[str, float | None]:
    """BioASQ factoid strict accuracy (first candidate right), lenient accuracy (any of the first ``n``)
    and MRR; ``gold`` holds each question's accepted synonyms."""
    ranks = []
    for cands, synonyms in zip(candidates, gold, strict=True):
        accepted = {normalize(s) for s in synonyms}
        ranks.append(next((r for r, c in enumerate(cands[:n], 1) if normalize(c) in accepted), None))
    return {"strict": mean([float(r == 1) for r in ranks]), "lenient": mean([float(r is not None) for r in ranks]),
            "mrr": mean([1.0 / r if r else 0.0 for r in ranks])}


def list_scores(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[Sequence[str]]]) -> dict[str, float | None]:
    """BioASQ list mean precision, recall and F1; each gold item is a list of synonyms, matched once."""
    precision, recall, f1 = [], [], []
    for items, entities in zip(predicted, gold, strict=True):
        unmatched = [{normalize(s) for s in e} for e in entities]
        correct = 0
        for item in dict.fromkeys(normalize(i) for i in items):
            hit = next((e for e in unmatched if item in e), None)
            if hit is not None:
                unmatched.remove(hit)
                correct += 1
        p = correct / len(set(map(normalize, items))) if items else 0.0
        r = correct / len(entities) if entities else 0.0
        precision.append(p)
        recall.append(r)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    return {"precision": mean(precision), "recall": mean(recall), "f1": mean(f1)}


def mention_recall(text: str, entities: Sequence[Sequence[str]]) -> float:
    """Share of the entities (lists of synonyms) that ``text`` names, as whole words, ignoring case."""
    if not entities:
        return 0.0
    low = normalize(text)
    found = sum(any(re.search(rf"(?<!\w){re.escape(normalize(s))}(?!\w)", low) for s in e if s) for e in entities)
    return found / len(entities)


# -- free text -----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge2", "rougeL"], use_stemmer=True)


def rouge(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float | None]:
    """Mean ROUGE-2 and ROUGE-L F1 (Porter-stemmed), each prediction scored against its best reference."""
    scorer = _rouge_scorer()
    best: dict[str, list[float]] = {"rouge2": [], "rougeL": []}
    for prediction, refs in zip(predictions, references, strict=True):
        scores = [scorer.score(ref, prediction) for ref in refs] if prediction.strip() else []
        for name, values in best.items():
            values.append(max((s[name].fmeasure for s in scores), default=0.0))
    return {name: mean(values) for name, values in best.items()}


# -- nuggets (key facts of an ideal answer) ------------------------------------------------------
@lru_cache(maxsize=4096)
def _nugget_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def nugget_matches(text: str, nuggets: Sequence[Sequence[str]]) -> list[bool]:
    """For each nugget (a list of regex alternatives), whether any of its patterns occurs in ``text``,
    ignoring case; word boundaries are the patterns' business."""
    return [any(_nugget_regex(p).search(text) for p in patterns) for patterns in nuggets]


def nugget_recall(text: str, nuggets: Sequence[Sequence[str]]) -> float:
    """Share of the nuggets that ``text`` matches (``nugget_matches``); 0 for no nuggets."""
    found = nugget_matches(text, nuggets)
    return sum(found) / len(found) if found else 0.0
