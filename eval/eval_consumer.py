"""Long consumer messages: abstention and ROUGE-L before and after searching their focus (``medrag.answering.focus``).

Split (fixed; no question in both halves):

- calibration: LiveQA ``TREC-2017-LiveQA-Medical-Train-1`` and MEDIQA 2019 ``TrainingSet1-LiveQAMed`` and
  ``TrainingSet2-Alexa``, less any question whose text is also in dev (``eval/calibrate_abstention.py`` reads
  it as its ``consumer`` in-scope set);
- dev (reported): LiveQA ``TREC-2017-LiveQA-Medical-Train-2`` and MEDIQA 2019 ``ValidationSet``.

Every dev question is asked with the index's own settings (``answer.focus`` off, so the pipeline adds
nothing): ``rag.ask(message)`` (before) and ``rag.ask(focus(message).text)`` (after: searched and gated on the
focus text). ``--gate T,C`` adds a column for the gate proposed for focused messages (``focus_gate``: the best
cosine of the searches of ``Focus.text`` and ``Focus.gate_text``, and the coverage of ``gate_text``, the named
conditions and drugs, in its passages), at threshold T and coverage weight C; the index's own threshold and
weight are always one such column. The answer there is ``rag.ask(focus.text)``'s (with abstention off where
the focus gate lets through what the index's gate refused).

Reported per set: the share abstained; ROUGE-L F1 against the references (the answer body without ``[n]``
markers, best reference, Porter-stemmed: ``medrag.evaluation.metrics.rouge``, as ``medrag eval liveqa`` scores
it; an abstention is scored as its refusal text, as there), also over the questions every column answered.
LiveQA questions are split by whether their annotated focus (``<FOCUS>``) occurs in the index's text at all:
a rare disease the index lacks is out of its scope, and refusing it is right. Out of scope, the lists of
``eval/calibrate_abstention.py`` (same ``--seed`` and ``--n``): ``eval/data/out_of_scope.txt`` (non-medical)
and GARD/NINDS questions whose focus is absent from the index (absent medical), each asked as is and through
``focus``.

    nice -n 10 python eval/eval_consumer.py --index indexes/quickstart --gate 0.457,0.35

(about 3 minutes on 2 cores; ``--limit N`` samples N dev questions per set). The last line of stdout is
``in-scope abstention: BEFORE -> AFTER`` (all dev questions; AFTER: the last ``--gate``, else the focus text
with the index's gate).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from medrag import MedRAG, safety
from medrag.answering.ask import gate_scores
from medrag.answering.focus import Focus, focus
from medrag.evaluation import metrics as M
from medrag.evaluation.datasets import Question, load
from medrag.generation.citations import clean_citations
from medrag.i18n.messages import message

log = logging.getLogger("eval_consumer")
HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "eval"
CALIBRATION = (("liveqa", "liveqa/TREC-2017-LiveQA-Medical-Train-1.xml"),
               ("mediqa", "mediqa2019/MEDIQA2019-Task3-QA-TrainingSet1-LiveQAMed-V2.xml"),
               ("mediqa", "mediqa2019/MEDIQA2019-Task3-QA-TrainingSet2-Alexa-V2.xml"))
DEV = (("liveqa", "liveqa/TREC-2017-LiveQA-Medical-Train-2.xml"),
       ("mediqa", "mediqa2019/MEDIQA2019-Task3-QA-ValidationSet.xml"))


def _key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def consumer_split(split: str, data: Path = DATA) -> list[Question]:
    """The ``calibration`` or ``dev`` questions (see the module docstring), each text once."""
    def read(files: tuple[tuple[str, str], ...]) -> list[Question]:
        out: list[Question] = []
        for name, path in files:
            out += load(name, data / path)
        return out

    dev = read(DEV)
    questions = dev if split == "dev" else read(CALIBRATION)
    banned = {_key(q.question) for q in dev} if split == "calibration" else set()
    seen: set[str] = set()
    kept = []
    for q in questions:
        key = _key(q.question)
        if key and key not in seen and key not in banned:
            seen.add(key)
            kept.append(q)
    log.info("%s split: %d questions (%d dropped as repeats or dev questions)", split, len(kept),
             len(questions) - len(kept))
    return kept


def index_text(rag: MedRAG) -> str:
    """Every chunk's title and text, lower-cased, as one string (the substring test of 'absent')."""
    rows = rag.chunks.db.execute("SELECT title, text FROM chunks")
    return "\n".join(f"{t or ''}\n{x}".lower() for t, x in rows)


def focus_in_index(q: Question, corpus: str) -> bool | None:
    """Whether a LiveQA question's annotated focus occurs in the index (None: no annotation)."""
    names = {n.lower().strip() for n in q.extra.get("focus") or [] if n and n.strip()}
    names |= {re.sub(r"\s*\(.*?\)", "", n).strip() for n in names}
    names = {n for n in names if len(n) > 2}
    return any(n in corpus for n in names) if names else None


@dataclass
class Asked:
    abstained: bool
    prediction: str


def ask(rag: MedRAG, text: str, k: int, *, open_gate: bool = False) -> Asked:
    """``rag.ask(text)``; ``open_gate``: with abstention off (the answer a gate that lets it through gets)."""
    saved = rag.settings
    if open_gate:
        rag.settings = saved.replace(**{"safety.abstain_threshold": -1e9})
    try:
        answer = rag.ask(text, k=k)
    finally:
        rag.settings = saved
    return Asked(answer.abstained, clean_citations(answer.body.strip(), set())[0])


def focus_gate(rag: MedRAG, f: Focus, gates: list[tuple[float, float]]) -> list[bool]:
    """Whether the focus gate abstains, for each (threshold, coverage weight) in ``gates``.

    The gate ``MedRAG.ask`` reads for a focused message (``answering.ask.gate_scores``): the top dense cosine
    of the searches of ``f.text`` and ``f.gate_text`` (its named conditions and drugs), minus ``coverage weight ×
    (1 − coverage)`` of ``f.gate_text`` in the latter's 5 best passages. For a plain question
    (``gate_text == text``) this is the gate as it was.
    """
    dense = rag.find(f.text, safety.MARGIN_DEPTH, retriever="dense", dense_k=safety.MARGIN_DEPTH).dense
    cosines, coverage = gate_scores(rag, f.text, dense, f)  # as MedRAG.ask computes them
    margin = rag.settings.safety.abstain_margin_weight
    return [not dense or safety.abstain(cosines, t, margin, coverage, c) for t, c in gates]


def out_of_scope(rag: MedRAG, seed: int, n: int) -> dict[str, list[str]]:
    """``eval/calibrate_abstention.py``'s out-of-scope lists for this index (non-medical, absent medical), the
    same questions its ``--seed`` and ``--n`` give."""
    sys.path.insert(0, str(HERE))
    import calibrate_abstention as cal  # noqa: PLC0415 (a script beside this one)

    sets = cal.question_sets(rag, seed, n)
    return {name: sets[name] for name in cal.OUT_OF_SCOPE}


def pct(values: list[bool]) -> str:
    return f"{100 * sum(values) / len(values):.1f}%" if values else "–"


def gate_spec(text: str) -> tuple[float, float]:
    threshold, _, weight = text.partition(",")
    return float(threshold), float(weight)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", required=True)
    parser.add_argument("--limit", type=int, default=None, help="dev questions per set at most (a seeded sample)")
    parser.add_argument("--ood-n", type=int, default=200, help="absent-medical questions (GARD + NINDS), as "
                                                                "eval/calibrate_abstention.py's --n")
    parser.add_argument("--gate", type=gate_spec, action="append", default=[], metavar="THRESHOLD,COVERAGE_WEIGHT",
                        help="also report the focus gate (see focus_gate) at these settings (repeatable); the "
                             "index's own settings are always reported")
    parser.add_argument("--k", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--records", type=Path, default=None, help="write per-question records here (JSONL)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    rag = MedRAG.load(args.index)
    rag.settings = rag.settings.replace(**{"answer.focus": False})  # before is the message as it is
    s = rag.settings.safety
    own = (s.abstain_threshold, s.abstain_coverage_weight)
    gates = [own, *[g for g in args.gate if g != own]]
    gate_names = [f"focus gate t={t:g}, c={c:g}" for t, c in gates]
    k = args.k or rag.settings.retrieval.k
    corpus = index_text(rag)
    refusal = message("abstain")
    by_set: dict[str, list[Question]] = {}
    for q in consumer_split("dev"):
        by_set.setdefault(q.dataset, []).append(q)
    if args.limit:
        rng = random.Random(args.seed)
        by_set = {n: sorted(rng.sample(qs, min(args.limit, len(qs))), key=lambda q: q.id) for n, qs in by_set.items()}
    records: list[dict[str, Any]] = []
    for name, qs in by_set.items():
        for q in qs:
            f = focus(q.question)
            before, after = ask(rag, q.question, k), ask(rag, f.text, k)
            opened = None
            runs = {"before": before, "after": after}
            for label, shut in zip(gate_names, focus_gate(rag, f, gates), strict=True):
                if shut:
                    runs[label] = Asked(True, refusal)
                elif not after.abstained:
                    runs[label] = after
                else:
                    opened = opened or ask(rag, f.text, k, open_gate=True)
                    runs[label] = Asked(False, opened.prediction)
            in_index = focus_in_index(q, corpus) if name == "liveqa" else None
            records.append({"id": q.id, "set": name, "in_index": in_index,
                            "words": len(q.question.split()), "focus_words": len(f.text.split()), "focus": f.text,
                            "gate_text": f.gate_text, "ideal": q.ideal,
                            **{label: run.__dict__ for label, run in runs.items()}})
        log.info("%s: %d questions asked (%.0f s)", name, len(qs), time.perf_counter() - started)
    columns = ["before", "after", *gate_names]
    ood_rows: dict[str, list[dict[str, bool]]] = {}
    for name, texts in out_of_scope(rag, args.seed, args.ood_n).items():
        rows = []
        for text in texts:
            f = focus(text)
            shut = focus_gate(rag, f, gates)
            rows.append({"before": ask(rag, text, k).abstained, "after": ask(rag, f.text, k).abstained,
                         "changed": f.text != " ".join(text.split()), **dict(zip(gate_names, shut, strict=True))})
        ood_rows[name] = rows
    if args.records:
        with args.records.open("w", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps({key: v for key, v in r.items() if key != "ideal"}, ensure_ascii=False) + "\n")

    def rouge_l(rows: list[dict[str, Any]], when: str) -> str:
        if not rows:
            return "–"
        value = M.rouge([r[when]["prediction"] for r in rows], [r["ideal"] for r in rows])["rougeL"]
        return f"{value:.3f}" if value is not None else "–"

    groups = [(f"{n} dev", [r for r in records if r["set"] == n]) for n in by_set]
    live = [r for r in records if r["set"] == "liveqa"]
    groups += [("liveqa, focus in index", [r for r in live if r["in_index"]]),
               ("liveqa, focus absent", [r for r in live if r["in_index"] is False]), ("all dev", records)]
    print(f"\nindex {args.index}: {rag.chunks.count()} chunks; k = {k}; generator {rag.settings.generation.generator}; "
          f"safety: threshold {s.abstain_threshold}, margin weight {s.abstain_margin_weight}, coverage weight "
          f"{s.abstain_coverage_weight}")
    print("before: rag.ask(message); after: rag.ask(focus(message).text), the index's gate on the focus text; "
          "focus gate: abstention by focus_gate (top cosine of the text's and gate_text's searches, coverage of "
          "gate_text), the answer rag.ask(focus.text)'s")
    head = " | ".join(columns)
    print(f"\n### Abstained\n\n| dev set | questions | median words (focus) | {head} |\n|---|---|---|"
          + "---|" * len(columns))
    for label, rows in groups:
        words, fwords = sorted(r["words"] for r in rows), sorted(r["focus_words"] for r in rows)
        med = f"{words[len(words) // 2]} ({fwords[len(fwords) // 2]})" if rows else "–"
        cells = [pct([r[c]["abstained"] for r in rows]) for c in columns]
        print(f"| {label} | {len(rows)} | {med} | " + " | ".join(cells) + " |")
    print(f"\n### ROUGE-L F1 (an abstention scores its refusal text)\n\n| dev set | {head} | answered by all "
          f"(n): {head} |\n|---|" + "---|" * (2 * len(columns)))
    for label, rows in groups:
        both = [r for r in rows if not any(r[c]["abstained"] for c in columns)]
        print(f"| {label} | " + " | ".join(rouge_l(rows, c) for c in columns) + f" | ({len(both)}) "
              + " | ".join(rouge_l(both, c) for c in columns) + " |")
    print(f"\n### Out of scope: refused\n\n| list | questions | focus changed the text | {head} |\n|---|---|---|"
          + "---|" * len(columns))
    pooled = [row for rows in ood_rows.values() for row in rows]
    for name, rows in [*ood_rows.items(), ("all out of scope", pooled)]:
        print(f"| {name} | {len(rows)} | {sum(r['changed'] for r in rows)} | "
              + " | ".join(pct([r[c] for r in rows]) for c in columns) + " |")
    print(f"\n{len(records)} dev questions, {len(pooled)} out of scope, {time.perf_counter() - started:.0f} s")
    print("abstained, all dev: " + ", ".join(f"{c} {pct([r[c]['abstained'] for r in records])}" for c in columns))
    final = columns[-1] if args.gate else "after"  # the last --gate given, else the focus text alone
    print(f"in-scope abstention: {pct([r['before']['abstained'] for r in records])} -> "
          f"{pct([r[final]['abstained'] for r in records])}")


if __name__ == "__main__":
    main()
