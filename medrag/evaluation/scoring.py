"""Flat metrics of an evaluation run's records (pure: records in, numbers out)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medrag.evaluation import metrics as M
from medrag.evaluation.strategies import EXACT_TYPES
from medrag.generation.citations import clean_citations

if TYPE_CHECKING:
    from medrag.evaluation.datasets import Question


def runs(records: Sequence[tuple[Question, dict[str, Any]]]) -> tuple[list[list[str]], list[list[str]]]:
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
    ranked_runs, gold = runs(records)
    if ranked_runs:
        names = [f"recall@{k}", f"precision@{k}", f"mrr@{k}", f"ndcg@{k}"]
        found = M.retrieval_scores(ranked_runs, gold, names, index_pmids)
        result["n_retrieval_questions"] = found.pop("n_questions")
        result.update(found)
    seconds = sum(r.get("seconds", 0.0) for _, r in records)
    result["seconds_per_question"] = round(seconds / len(records), 4) if records else None
    return result


__all__ = ["runs", "score"]
