"""Calibrate abstention on the quick-start index: in-scope questions should be answered, out-of-scope ones not.

In scope: MedQuAD questions whose documents are in the index (MedlinePlus, NIDDK: verbatim document
titles, an easy case), PubMedQA dev questions (their abstracts are in the index), and MedQuAD questions
from other collections (SeniorHealth, CancerGov, GHR) on a focus the index has a document on ("other
wording"). Out of scope: ``eval/data/out_of_scope.txt`` (non-medical) and GARD / NINDS questions whose
focus appears nowhere in the index's text ("absent medical"). Every list is split in halves by a fixed
seed: thresholds (and the margin weight of ``medrag.safety.confidence``) are chosen on one half, rates are
reported on the other (held-out) half; the figures are the fractions of questions abstained.

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
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from medrag import MedRAG, readers
from medrag.safety import confidence

log = logging.getLogger("calibrate_abstention")
HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
MEDQUAD = DATA / "corpora" / "guidelines" / "medquad"
QTYPES = {"information", "symptoms", "treatment", "causes", "prevention", "exams and tests"}
MARGIN_WEIGHTS = np.round(np.arange(0.0, 2.01, 0.125), 3)  # candidates for confidence()'s margin weight
IN_SCOPE, OUT_OF_SCOPE = ("medquad in index", "pubmedqa dev", "other wording"), ("non-medical", "absent medical")


def open_dense(index: str) -> MedRAG:
    """The index with dense retrieval, so hit scores are cosines.

    An index saved before the BM25 index existed has no ``lexical`` in its settings.json, and the current
    ``MedRAG.load`` then looks for a BM25 file it does not have; such an index is opened through a temporary
    directory of links to its files with ``lexical=false`` written into the settings (the index is not touched).
    """
    saved = json.loads((Path(index) / "settings.json").read_text(encoding="utf-8"))
    if "lexical" in saved:
        return MedRAG.load(index, retriever="dense")
    log.info("%s predates the BM25 index: opening it with lexical=false", index)
    with tempfile.TemporaryDirectory(prefix="medrag-dense-") as tmp:  # everything is read into memory
        links = Path(tmp)
        for path in Path(index).iterdir():
            if path.name != "settings.json":
                (links / path.name).symlink_to(path.resolve())
        (links / "settings.json").write_text(json.dumps({**saved, "lexical": False, "retriever": "dense"}))
        return MedRAG.load(links)


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


def rate(split: dict[str, tuple[np.ndarray, np.ndarray]], names: tuple[str, ...], t: float, half: int) -> float:
    """Fraction abstained (statistic < t) over the pooled ``half`` (0: calibration, 1: held-out) of ``names``."""
    return float(np.mean(np.concatenate([split[n][half] for n in names]) < t))


def at_out_target(split: dict[str, tuple[np.ndarray, np.ndarray]], target: float = 0.9) -> float:
    """The lowest threshold abstaining on at least ``target`` of the calibration out-of-scope questions."""
    ordered = np.sort(np.concatenate([split[n][0] for n in OUT_OF_SCOPE]))
    i = math.ceil(target * len(ordered))
    return float(ordered[i]) if i < len(ordered) else float(ordered[-1]) + 1e-6


def at_in_target(split: dict[str, tuple[np.ndarray, np.ndarray]], target: float = 0.1) -> float:
    """The highest threshold abstaining on at most ``target`` of the calibration in-scope questions."""
    ordered = np.sort(np.concatenate([split[n][0] for n in IN_SCOPE]))
    return float(ordered[math.floor(target * len(ordered))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="/tmp/mr/qs")
    parser.add_argument("--n", type=int, default=200, help="questions per in-scope / absent-medical source")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rag = open_dense(args.index)
    sets = question_sets(rag, args.seed, args.n)
    for name, qs in sets.items():
        log.info("%s: %d questions, e.g. %r", name, len(qs), qs[:2])
    hits = rag.retrieve_batch([q for qs in sets.values() for q in qs], k=args.k)
    scores, i = {}, 0
    for name, qs in sets.items():
        scores[name] = [[h.score for h in row] for row in hits[i:i + len(qs)]]
        i += len(qs)

    def split_by(weight: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {n: halves(np.asarray([confidence(r, weight) for r in rows]), args.seed) for n, rows in scores.items()}

    # the margin weight maximising calibration out-of-scope abstention at <= 10% calibration in-scope abstention
    best = max(MARGIN_WEIGHTS, key=lambda w: (rate(s := split_by(w), OUT_OF_SCOPE, at_in_target(s), 0), -w))
    stats = {"top1": 0.0, f"top1 + {best:g}·(top1 − top5)": float(best)}
    print("| set | questions | top1 median | top1 − top5 median |\n|---|---|---|---|")
    for name, rows in scores.items():
        print(f"| {name} | {len(rows)} | {np.median([max(r) for r in rows]):.3f} | "
              f"{np.median([confidence(r, 1) - confidence(r) for r in rows]):.3f} |")
    held = [f"{n} ({len(scores[n]) - len(scores[n]) // 2})" for n in sets]
    print("\n| statistic | rule (on the calibration halves) | threshold | " + " | ".join(held)
          + " | all in-scope | all out-of-scope |\n|---|---|---|" + "---|" * (len(sets) + 2))
    for stat, weight in stats.items():
        split = split_by(weight)
        for rule, t in (("≥ 90% out-of-scope abstained", at_out_target(split)),
                        ("≤ 10% in-scope abstained", at_in_target(split))):
            cells = [f"{rate(split, (n,), t, 1):.0%}" for n in sets]
            pooled = [f"{rate(split, names, t, 1):.1%}" for names in (IN_SCOPE, OUT_OF_SCOPE)]
            print(f"| {stat} | {rule} | {t:.3f} | " + " | ".join(cells + pooled) + " |")


if __name__ == "__main__":
    main()
