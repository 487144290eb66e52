"""Nugget recall of answers: how many of the key facts of an ideal answer ``MedRAG.ask`` says.

Each question of the dev set (``eval/data/nuggets.jsonl``: ``id``, ``question``, ``kind``, ``topic``, ``nuggets``
(each a ``name`` and regex ``patterns``, any of which credits it, ignoring case), optional ``lang``) is scored
four ways in one run:

- ``answer``: the body of ``rag.ask(question)``, citation markers removed;
- ``reachable``: the top-10 passages of ``rag.retrieve`` concatenated, the ceiling for any answer built from
  them (a Chinese question is searched as ``ask`` searched it: ``Answer.query`` when set);
- ``lead3``: the first three sentences of the top passage, an extractive baseline;
- ``top``: the whole top passage.

    python eval/eval_nuggets.py --index indexes/quickstart [--limit N] [--out eval/reports/nuggets.json] \\
        [--set KEY=VALUE ...]

Prints a Markdown table (mean recall, median words, abstentions per method; answer recall per kind) and, as
the last line, ``nugget recall: X`` (the answers' mean recall); writes per-question results to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tqdm import tqdm  # noqa: E402

from medrag import MedRAG, Settings  # noqa: E402
from medrag.errors import MedRAGError  # noqa: E402
from medrag.evaluation.datasets import jsonl_rows  # noqa: E402
from medrag.evaluation.metrics import mean, nugget_matches  # noqa: E402
from medrag.generation.citations import clean_citations, split_sentences  # noqa: E402

log = logging.getLogger("eval_nuggets")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "eval" / "data" / "nuggets.jsonl"
METHODS = ("answer", "reachable", "lead3", "top")
DEPTH = 10  # passages whose text counts as reachable
LEAD = 3  # sentences of the top passage in the lead baseline


def load_nuggets(path: Path) -> list[dict[str, Any]]:
    """The dev set; each line needs id, question, kind and 3 or more nuggets with patterns."""
    rows = []
    for n, row in jsonl_rows(path, ("id", "question", "kind", "nuggets")):
        if not row["nuggets"] or any(not nug.get("patterns") for nug in row["nuggets"]):
            raise MedRAGError(f"{path}:{n}: every nugget needs patterns")
        rows.append(row)
    return rows


def words(text: str) -> int:
    """Whitespace-separated words."""
    return len(text.split())


def lead(text: str, n: int = LEAD) -> str:
    """The first ``n`` sentences of ``text``."""
    return " ".join(s.strip() for s in split_sentences(text)[:n])


def score(text: str, row: dict[str, Any]) -> dict[str, Any]:
    """Recall and the names of the nuggets ``text`` matches."""
    found = nugget_matches(text, [nug["patterns"] for nug in row["nuggets"]])
    return {"recall": sum(found) / len(found),
            "matched": [nug["name"] for nug, hit in zip(row["nuggets"], found, strict=True) if hit]}


def evaluate_one(rag: MedRAG, row: dict[str, Any]) -> dict[str, Any]:
    """All four methods on one question."""
    start = time.perf_counter()
    answer = rag.ask(row["question"])
    seconds = time.perf_counter() - start
    body = clean_citations(answer.body, set())[0]
    hits = rag.retrieve(answer.query or row["question"], DEPTH)
    top = hits[0].chunk.text if hits else ""
    texts = {"answer": body, "reachable": "\n".join(h.chunk.text for h in hits), "lead3": lead(top), "top": top}
    scored = {m: score(t, row) for m, t in texts.items()}
    return {
        "id": row["id"], "question": row["question"], "kind": row["kind"], "topic": row.get("topic", ""),
        "lang": row.get("lang", "en"), "n_nuggets": len(row["nuggets"]),
        "recall": {m: round(s["recall"], 4) for m, s in scored.items()},
        "words": {m: words(t) for m, t in texts.items() if m != "reachable"},
        "matched": {m: s["matched"] for m, s in scored.items()},
        "abstained": bool(answer.abstained), "seconds": round(seconds, 3), "query": answer.query,
        "top_doc": hits[0].chunk.doc_id if hits else None, "answer": body,
    }


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method: mean recall, median words; abstentions; answer recall per kind and language."""
    answered = [r for r in results if not r["abstained"]]
    summary: dict[str, Any] = {"n_questions": len(results), "abstentions": len(results) - len(answered),
                               "answer_recall_when_answered": mean([r["recall"]["answer"] for r in answered]),
                               "median_seconds_ask": median([r["seconds"] for r in results]), "methods": {}}
    for m in METHODS:
        summary["methods"][m] = {"recall": mean([r["recall"][m] for r in results]),
                                 "median_words": median([r["words"][m] for r in results]) if m != "reachable" else None}
    groups: dict[str, dict[str, list[float]]] = {"kind": defaultdict(list), "lang": defaultdict(list)}
    for r in results:
        for field in groups:
            groups[field][r[field]].append(r["recall"]["answer"])
    for field, by in groups.items():
        summary[f"answer_recall_by_{field}"] = {k: {"n": len(v), "recall": mean(v)} for k, v in sorted(by.items())}
    return summary


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(summary: dict[str, Any]) -> str:
    """The tables printed at the end."""
    n = summary["n_questions"]
    lines = [f"Nugget recall over {n} questions", "", "| method | recall | median words | abstentions |",
             "|---|---|---|---|"]
    for m, s in summary["methods"].items():
        words_ = fmt(s["median_words"], 1) if s["median_words"] is not None else "–"
        lines.append(f"| {m} | {fmt(s['recall'])} | {words_} | {summary['abstentions'] if m == 'answer' else '–'} |")
    lines += ["", f"answer recall when answered: {fmt(summary['answer_recall_when_answered'])}", "",
              "| kind | n | answer recall |", "|---|---|---|"]
    lines += [f"| {k} | {v['n']} | {fmt(v['recall'])} |" for k, v in summary["answer_recall_by_kind"].items()]
    lines += ["", "| lang | n | answer recall |", "|---|---|---|"]
    lines += [f"| {k} | {v['n']} | {fmt(v['recall'])} |" for k, v in summary["answer_recall_by_lang"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", required=True, type=Path, help="index directory")
    parser.add_argument("--data", type=Path, default=DATA, help="nugget dev set (JSONL)")
    parser.add_argument("--limit", type=int, help="first N questions only")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "nuggets.json",
                        help="per-question results (JSON)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="change one query-time setting (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    rows = load_nuggets(args.data)[: args.limit]
    changes = Settings.parse_assignments(args.assignments)
    rag = MedRAG.load(args.index, **changes)
    log.info("%d questions, index %s, changes %s", len(rows), args.index, changes or "none")
    results = [evaluate_one(rag, row) for row in tqdm(rows, desc="nuggets", unit="q", file=sys.stderr)]
    summary = summarise(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"index": str(args.index), "data": str(args.data), "changes": changes,
              "settings": rag.settings.model_dump(mode="json") if hasattr(rag.settings, "model_dump") else None,
              "summary": summary, "questions": results}
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s", args.out)
    print(markdown(summary))
    print(f"nugget recall: {summary['methods']['answer']['recall'] or 0.0:.3f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MedRAGError as e:
        log.error("%s", e)
        sys.exit(2)
