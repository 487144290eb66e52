"""Calibrate abstention on the quick-start index: in-scope questions should be answered, out-of-scope ones not.

In scope: MedQuAD questions whose documents are in the index (MedlinePlus, NIDDK: verbatim document
titles, an easy case), PubMedQA dev questions (their abstracts are in the index), and MedQuAD questions
from other collections (SeniorHealth, CancerGov, GHR) on a focus the index has a document on ("other
wording"). Out of scope: ``eval/data/out_of_scope.txt`` (non-medical) and GARD / NINDS questions whose
focus appears nowhere in the index's text ("absent medical"). Every list is split in halves by a fixed
seed: thresholds are chosen on one half, rates reported on the other.

    nice -n 10 python eval/calibrate_abstention.py [--index /tmp/mr/qs]
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from medrag import MedRAG, readers

log = logging.getLogger("calibrate_abstention")
HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
MEDQUAD = DATA / "corpora" / "guidelines" / "medquad"
QTYPES = {"information", "symptoms", "treatment", "causes", "prevention", "exams and tests"}
#: statistic name -> function of the top-k cosine scores (best first)
STATS: dict[str, Callable[[np.ndarray], float]] = {
    "top1": lambda s: float(s[0]),
    "mean top-3": lambda s: float(s[:3].mean()),
    "mean top-5": lambda s: float(s[:5].mean()),
    "margin top1-top5": lambda s: float(s[0] - s[-1]),
}
IN_SCOPE, OUT_OF_SCOPE = ("medquad in index", "pubmedqa dev", "other wording"), ("non-medical", "absent medical")


def medquad_questions(collection: str, keep: Callable[[dict], bool], rng: random.Random, n: int) -> list[str]:
    """One random question (of a kept type) per MedQuAD file whose documents pass ``keep``, ``n`` files at most."""
    files = sorted((MEDQUAD / collection).glob("*.xml"))
    rng.shuffle(files)
    out = []
    for path in files:
        docs = [d for d in readers.read(path) if d.metadata.get("qtype") in QTYPES and keep(d.metadata | {"id": d.id})]
        if docs:
            out.append(rng.choice(docs).title)
        if len(out) == n:
            break
    return out


def question_sets(rag: MedRAG, seed: int, n: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    rows = rag.chunks.db.execute("SELECT d.doc_id, d.metadata, c.title, c.text FROM chunks c "
                                 "JOIN documents d ON d.doc_id = c.doc_id")
    doc_ids, focuses, texts = set(), set(), []
    for doc_id, meta, title, text in rows:
        doc_ids.add(doc_id)
        focuses.add(str(json.loads(meta).get("focus", "")).lower())
        texts.append(f"{title}\n{text}".lower())
    corpus = "\n".join(texts)

    def absent(meta: dict) -> bool:
        focus = meta.get("focus", "").lower()
        names = {focus, re.sub(r"\s*\(.*?\)", "", focus).strip()}
        return bool(focus) and not any(name and name in corpus for name in names)

    pmids = rag.chunks.pmids()
    dev = json.loads((DATA / "eval" / "pubmedqa_dev.json").read_text(encoding="utf-8"))
    pubmedqa = [v["QUESTION"] for k, v in dev.items() if k in pmids]
    other = [q for c in ("7_SeniorHealth_QA", "1_CancerGov_QA", "3_GHR_QA")
             for q in medquad_questions(c, lambda m: m.get("focus", "").lower() in focuses, rng, n)]
    lines = (HERE / "data" / "out_of_scope.txt").read_text(encoding="utf-8").splitlines()
    non_medical = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return {
        "medquad in index": [q for c in ("4_MPlus_Health_Topics_QA", "5_NIDDK_QA")
                             for q in medquad_questions(c, lambda m: m["id"] in doc_ids, rng, n // 2)],
        "pubmedqa dev": rng.sample(pubmedqa, min(n, len(pubmedqa))),
        "other wording": other,
        "non-medical": non_medical,
        "absent medical": [q for c in ("2_GARD_QA", "6_NINDS_QA") for q in medquad_questions(c, absent, rng, n // 2)],
    }


def halves(values: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(values))
    return values[order[: len(values) // 2]], values[order[len(values) // 2:]]


def threshold_for(out_cal: np.ndarray, target: float) -> float:
    """The lowest threshold abstaining (value < threshold) on at least ``target`` of ``out_cal``."""
    ordered = np.sort(out_cal)
    i = min(math.ceil(target * len(ordered)), len(ordered) - 1)
    return float(ordered[i] + (1e-6 if i == len(ordered) - 1 else 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="/tmp/mr/qs")
    parser.add_argument("--n", type=int, default=200, help="questions per in-scope / absent-medical source")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rag = MedRAG.load(args.index)
    sets = question_sets(rag, args.seed, args.n)
    for name, qs in sets.items():
        log.info("%s: %d questions, e.g. %r", name, len(qs), qs[:2])
    questions = [q for qs in sets.values() for q in qs]
    hits = rag.retrieve_batch(questions, k=args.k)
    scores = {}
    i = 0
    for name, qs in sets.items():
        scores[name] = [np.asarray([h.score for h in row]) for row in hits[i:i + len(qs)]]
        i += len(qs)
    print("| set | questions | " + " | ".join(f"{s} median" for s in STATS) + " |\n|---|---|" + "---|" * len(STATS))
    for name, rows in scores.items():
        medians = [f"{np.median([f(r) for r in rows]):.3f}" for f in STATS.values()]
        print(f"| {name} | {len(rows)} | " + " | ".join(medians) + " |")
    print("\nabstain when statistic < threshold; threshold = the lowest abstaining on ≥ 90% of the calibration "
          "half of the out-of-scope questions; rates on the held-out halves\n")
    print("| statistic | out-of-scope used | threshold | " + " | ".join(f"held-out {n} abstained" for n in sets)
          + " |\n|---|---|---|" + "---|" * len(sets))
    for stat, f in STATS.items():
        split = {name: halves(np.asarray([f(r) for r in rows]), args.seed) for name, rows in scores.items()}
        for used in (("non-medical",), OUT_OF_SCOPE):
            t = threshold_for(np.concatenate([split[n][0] for n in used]), 0.9)
            rates = [f"{np.mean(split[n][1] < t):.0%}" for n in sets]
            print(f"| {stat} | {' + '.join(used)} | {t:.3f} | " + " | ".join(rates) + " |")
    print("\nthreshold = the highest keeping in-scope abstention ≤ 10% on the calibration half (all in-scope sets):\n")
    print("| statistic | threshold | " + " | ".join(f"held-out {n} abstained" for n in sets)
          + " |\n|---|---|" + "---|" * len(sets))
    for stat, f in STATS.items():
        split = {name: halves(np.asarray([f(r) for r in rows]), args.seed) for name, rows in scores.items()}
        t = float(np.quantile(np.concatenate([split[n][0] for n in IN_SCOPE]), 0.1))
        print(f"| {stat} | {t:.3f} | " + " | ".join(f"{np.mean(split[n][1] < t):.0%}" for n in sets) + " |")


if __name__ == "__main__":
    main()
