"""The BioASQ submission JSON of an evaluation run."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medrag.evaluation.strategies import EXACT_TYPES, SUBMISSION_DOCUMENTS
from medrag.generation.citations import clean_citations

if TYPE_CHECKING:
    from medrag.evaluation.datasets import Question

SUBMISSION = "bioasq_submission.json"
PUBMED_URL = "http://www.ncbi.nlm.nih.gov/pubmed/{}"


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


__all__ = ["SUBMISSION", "bioasq_submission"]
