"""Calibrate abstention: in-scope questions should be answered, out-of-scope ones not.

In scope: MedQuAD questions whose documents are in the index (MedlinePlus, NIDDK: verbatim document
titles, an easy case), PubMedQA dev questions (their abstracts are in the index), BioASQ 7B/8B questions
with a gold PMID in the index (expert wording against short snippets), and MedQuAD questions
from other collections (SeniorHealth, CancerGov, GHR) on a focus the index has a document on ("other
wording"), and long consumer messages: the calibration split of ``eval/eval_consumer.py`` (LiveQA
Train-1, MEDIQA TrainingSet1/2, less any dev question; "consumer"). Out of scope: ``eval/data/out_of_scope.txt``
(non-medical) and GARD / NINDS questions whose focus appears nowhere in the index's text ("absent medical").
Every list is split in halves by a fixed seed: thresholds (and the margin weight of
``medrag.safety.confidence``) are chosen on one half, rates are reported on the other (held-out) half; the
figures are the fractions of questions abstained.

Every question is gated as ``MedRAG.ask`` gates it with ``answer.focus`` on (``medrag.answering.focus``): a
plain question as it is; a long message by its focus, the top cosine being the best of the searches of
``Focus.text`` and ``Focus.gate_text`` (its named conditions and drugs) and the coverage that of
``gate_text`` in the latter's passages. ``--no-focus``: every question as it is (the gate before focus).

    nice -n 10 python eval/calibrate_abstention.py --index indexes/shared-all --index indexes/quickstart
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
from medrag.answering.focus import focus
from medrag.answering.kinds import topic_words
from medrag.evaluation.datasets import load
from medrag.safety import confidence

log = logging.getLogger("calibrate_abstention")
HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
MEDQUAD = DATA / "corpora" / "guidelines" / "medquad"
QTYPES = {"information", "symptoms", "treatment", "causes", "prevention", "exams and tests"}
MARGIN_WEIGHTS = np.round(np.arange(0.0, 2.01, 0.125), 3)  # candidates for confidence()'s margin weight
COVERAGE_WEIGHTS = np.round(np.arange(0.0, 1.01, 0.05), 3)  # ... and for its coverage weight
IN_SCOPE = ("medquad in index", "pubmedqa dev", "bioasq dev", "other wording", "consumer")
OUT_OF_SCOPE = ("non-medical", "absent medical")


def open_dense(index: str) -> MedRAG:
    """The index with dense retrieval, so hit scores are cosines.

    An index saved before the BM25 index existed has no ``lexical`` in its settings.json, and the current
    ``MedRAG.load`` then looks for a BM25 file it does not have; such an index is opened through a temporary
    directory of links to its files with ``lexical=true`` written into the settings, so the BM25 index that
    coverage needs is built from the stored chunk texts (the index is not touched).
    """
    saved = json.loads((Path(index) / "settings.json").read_text(encoding="utf-8"))
    if "lexical" in saved:
        return MedRAG.load(index, retriever="dense")
    log.info("%s predates the BM25 index: building one from its chunks", index)
    with tempfile.TemporaryDirectory(prefix="medrag-dense-") as tmp:  # everything is read into memory
        links = Path(tmp)
        for path in Path(index).iterdir():
            if path.name != "settings.json":
                (links / path.name).symlink_to(path.resolve())
        (links / "settings.json").write_text(json.dumps({**saved, "lexical": True, "retriever": "dense"}))
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
    bioasq = [q.question for path in sorted((DATA / "eval" / "bioasq").glob("[78]B*_golden.json"))
              for q in load("bioasq", path) if set(q.gold_pmids) & pmids]  # 9B stays out: retrieval is scored there
    other = [q for c in ("7_SeniorHealth_QA", "1_CancerGov_QA", "3_GHR_QA")
             for q in medquad_questions(c, lambda m: m.get("focus", "").lower() in focuses, rng, n)]
    lines = (HERE / "data" / "out_of_scope.txt").read_text(encoding="utf-8").splitlines()
    non_medical = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    from eval_consumer import consumer_split  # a script beside this one (its directory is on sys.path)

    return {
        "medquad in index": [q for c in ("4_MPlus_Health_Topics_QA", "5_NIDDK_QA")
                             for q in medquad_questions(c, lambda m: m["id"] in doc_ids, rng, n // 2)],
        "pubmedqa dev": rng.sample(pubmedqa, min(n, len(pubmedqa))),
        "bioasq dev": rng.sample(sorted(set(bioasq)), min(n, len(set(bioasq)))),
        "other wording": other,
        "consumer": [q.question for q in consumer_split("calibration", DATA / "eval")],
        "non-medical": non_medical,
        "absent medical": [q for c in ("2_GARD_QA", "6_NINDS_QA") for q in medquad_questions(c, absent, rng, n // 2)],
    }


def halves(values: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(values))
    return values[order[: len(values) // 2]], values[order[len(values) // 2:]]


def rate(split: dict[str, tuple[np.ndarray, np.ndarray]], names: tuple[str, ...], t: float, half: int) -> float:
    """Fraction abstained (statistic < t) over the pooled ``half`` (0: calibration, 1: held-out) of ``names``."""
    return float(np.mean(np.concatenate([split[n][half] for n in names if n in split]) < t))


def at_out_target(split: dict[str, tuple[np.ndarray, np.ndarray]], target: float = 0.9, both: bool = False) -> float:
    """The lowest threshold abstaining on at least ``target`` of the calibration out-of-scope questions
    (``both``: of every out-of-scope question, both halves)."""
    ordered = np.sort(np.concatenate([v for n in OUT_OF_SCOPE if n in split for v in split[n][:2 if both else 1]]))
    i = math.ceil(target * len(ordered))
    return float(ordered[i]) if i < len(ordered) else float(ordered[-1]) + 1e-6


def at_in_target(split: dict[str, tuple[np.ndarray, np.ndarray]], target: float = 0.1) -> float:
    """The highest threshold abstaining on at most ``target`` of the calibration in-scope questions."""
    ordered = np.sort(np.concatenate([split[n][0] for n in IN_SCOPE if n in split]))
    return float(ordered[math.floor(target * len(ordered))])


def balanced(split: dict[str, tuple[np.ndarray, np.ndarray]]) -> float:
    """The threshold maximising (out-of-scope abstained − in-scope abstained) on the calibration halves."""
    grid = np.unique(np.concatenate([split[n][0] for n in split]))
    return float(max(grid, key=lambda t: rate(split, OUT_OF_SCOPE, t, 0) - rate(split, IN_SCOPE, t, 0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", action="append", required=True,
                        help="an index (repeatable): each set is taken from the first index that has questions for it")
    parser.add_argument("--n", type=int, default=200, help="questions per in-scope / absent-medical source")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out-all", action="store_true",
                        help="choose the weights at >= 90%% of every out-of-scope question (both halves) abstained, "
                             "not of the calibration halves (then the out-of-scope rates are not held out)")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="take the smallest weights whose calibration in-scope abstention is at most this much "
                             "above the lowest (0: the lowest; ties go to the smaller weights)")
    parser.add_argument("--no-focus", dest="focus", action="store_false",
                        help="gate every question as it is, not by its focus (the gate before focus)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sets: dict[str, list[str]] = {}
    scores: dict[str, list[tuple[list[float], float | None]]] = {}  # per question: top-k cosines, coverage
    source: dict[str, str] = {}
    for index in args.index:
        rag = open_dense(index)
        found = {k: v for k, v in question_sets(rag, args.seed, args.n).items() if v and k not in sets}
        for name, qs in found.items():
            log.info("%s (%s): %d questions, e.g. %r", name, index, len(qs), qs[:2])
        asked = [q for qs in found.values() for q in qs]
        focused = [focus(q) if args.focus else None for q in asked]
        texts = [f.text if f else q for q, f in zip(asked, focused)]
        gates = [f.gate_text if f else q for q, f in zip(asked, focused)]
        hits = rag.retrieve_batch(texts, k=args.k)
        changed = [i for i, (t, g) in enumerate(zip(texts, gates)) if g != t]
        gate_hits = dict(zip(changed, rag.retrieve_batch([gates[i] for i in changed], k=args.k))) if changed else {}
        i = 0
        for name, qs in found.items():
            sets[name], source[name] = qs, Path(index).name
            rows = []
            for j in range(i, i + len(qs)):  # a focused message: both searches' cosines, the gate text's coverage
                row = gate_hits.get(j, hits[j])
                cosines = [h.score for h in hits[j]] + ([h.score for h in row] if j in gate_hits else [])
                rows.append((cosines, rag.lexical.coverage(topic_words(gates[j]), [h.chunk.id for h in row])))
            scores[name] = rows
            i += len(qs)
    sets = {n: sets[n] for n in (*IN_SCOPE, *OUT_OF_SCOPE) if n in sets}

    def split_by(weights: tuple[float, float]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {n: halves(np.asarray([confidence(r, weights[0], c, weights[1]) for r, c in rows]), args.seed)
                for n, rows in scores.items()}

    def cost(weights: tuple[float, float]) -> tuple[float, float, float]:
        s = split_by(weights)  # calibration in-scope abstained where >= 90% of out-of-scope is; then small weights
        return rate(s, IN_SCOPE, at_out_target(s, both=args.out_all), 0), weights[1], weights[0]

    def choose(candidates: list[tuple[float, float]]) -> tuple[float, float]:
        """The smallest weights whose calibration in-scope abstention is within ``--tolerance`` of the best."""
        costs = {w: cost(w) for w in candidates}
        best = min(c[0] for c in costs.values())
        return min((w for w, c in costs.items() if c[0] <= best + args.tolerance + 1e-12), key=lambda w: costs[w][1:])

    margin = choose([(float(w), 0.0) for w in MARGIN_WEIGHTS])
    both = choose([(float(w), float(c)) for w in MARGIN_WEIGHTS for c in COVERAGE_WEIGHTS])
    stats = {"top1": (0.0, 0.0), f"top1 + {margin[0]:g}·(top1 − top5)": margin,
             f"top1 + {both[0]:g}·(top1 − top5) − {both[1]:g}·(1 − coverage)": both}
    print("| set | index | questions | top1 median | top1 − top5 median | coverage median |\n|---|---|---|---|---|---|")
    for name in sets:
        rows = scores[name]
        print(f"| {name} | {source[name]} | {len(rows)} | {np.median([max(r) for r, _ in rows]):.3f} | "
              f"{np.median([confidence(r, 1) - confidence(r) for r, _ in rows]):.3f} | "
              f"{np.median([1.0 if c is None else c for _, c in rows]):.3f} |")
    held = [f"{n} ({len(scores[n]) - len(scores[n]) // 2})" for n in sets]
    print("\n| statistic | rule (on the calibration halves) | threshold | " + " | ".join(held)
          + " | all in-scope | all out-of-scope |\n|---|---|---|" + "---|" * (len(sets) + 2))
    for stat, weights in stats.items():
        split = split_by(weights)
        for rule, t in (("≥ 90% out-of-scope abstained", at_out_target(split)),
                        ("≥ 90% of all out-of-scope abstained (both halves)", at_out_target(split, both=True)),
                        ("≤ 10% in-scope abstained", at_in_target(split)),
                        ("max(out − in abstained)", balanced(split))):
            cells = [f"{rate(split, (n,), t, 1):.0%}" for n in sets]
            pooled = [f"{rate(split, names, t, 1):.1%}" for names in (IN_SCOPE, OUT_OF_SCOPE)]
            print(f"| {stat} | {rule} | {t:.3f} | " + " | ".join(cells + pooled) + " |")


if __name__ == "__main__":
    main()
