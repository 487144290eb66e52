"""Calibrate ``SupportChecker``'s threshold on BioASQ dev data and measure a generator's citations.

Pairs: positive = (ideal-answer sentence, its question's gold snippets); negative = the same sentence with
the snippets of another question, either a random one or the most similar other question ("hard": the
realistic case of a sentence citing a passage on a neighbouring topic). Support is the max cosine between
the sentence and any snippet sentence, as ``SupportChecker`` computes it. The threshold is chosen on 7B
(F1-optimal, and the lowest reaching a target precision) and reported on 8B.

    nice -n 10 python eval/calibrate_support.py [--index /tmp/mr/qs --questions 40]
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import random
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from medrag.embedding import Embedder
from medrag.generation.citations import split_sentences
from medrag.safety import SupportChecker, passage_sentences, split_answer

log = logging.getLogger("calibrate_support")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "eval"
MAX_SENTENCES, MAX_SNIPPETS, MIN_WORDS = 3, 10, 4


def load(prefix: str, exclude: set[str] = frozenset()) -> list[dict]:
    """BioASQ questions (not in ``exclude``) with capped ideal-answer sentences and gold snippet sentences."""
    out, seen = [], set(exclude)
    for path in sorted(glob.glob(str(DATA / "bioasq" / f"{prefix}*_golden.json"))):
        for q in json.loads(Path(path).read_text(encoding="utf-8"))["questions"]:
            if q["body"] in seen or not q.get("snippets") or not q.get("ideal_answer"):
                continue
            seen.add(q["body"])
            answers = list(dict.fromkeys(s for a in q["ideal_answer"] for s in split_sentences(a)
                                         if len(s.split()) >= MIN_WORDS))[:MAX_SENTENCES]
            snippets = list(dict.fromkeys(s["text"] for s in q["snippets"]))[:MAX_SNIPPETS]
            evidence = list(dict.fromkeys(x for s in snippets for x in passage_sentences(s)))
            if answers:
                out.append({"body": q["body"], "answers": answers, "evidence": evidence})
    return out


def scores(questions: list[dict], embedder: Embedder, seed: int) -> dict[str, np.ndarray]:
    """Support of every answer sentence against its own, a random other and the nearest other question's snippets."""
    texts = list(dict.fromkeys(t for q in questions for t in [q["body"], *q["answers"], *q["evidence"]]))
    index = {t: i for i, t in enumerate(texts)}
    log.info("embedding %d texts", len(texts))
    vectors = embedder.embed_documents(texts, progress=True)
    bodies = vectors[[index[q["body"]] for q in questions]]
    near = bodies @ bodies.T
    np.fill_diagonal(near, -1)
    rng = random.Random(seed)
    out: dict[str, list[float]] = {"positive": [], "random": [], "hard": []}

    def support(answer: str, q: dict) -> float:
        return float(np.max(vectors[[index[e] for e in q["evidence"]]] @ vectors[index[answer]]))

    for i, q in enumerate(questions):
        other = rng.choice([j for j in range(len(questions)) if j != i])
        hard = int(np.argmax(np.where(near[i] < 0.95, near[i], -1)))  # most similar, not a near-duplicate
        for a in q["answers"]:
            out["positive"].append(support(a, q))
            out["random"].append(support(a, questions[other]))
            out["hard"].append(support(a, questions[hard]))
    return {k: np.asarray(v) for k, v in out.items()}


def prf(pos: np.ndarray, neg: np.ndarray, t: float) -> tuple[float, float, float]:
    """Precision, recall and F1 of "supported" (score >= t) on positives vs negatives."""
    tp, fp = float((pos >= t).sum()), float((neg >= t).sum())
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / len(pos)
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def choose(pos: np.ndarray, neg: np.ndarray, target: float) -> tuple[float, float]:
    """(F1-optimal threshold, lowest threshold with precision >= target) over a 0.005 grid."""
    grid = np.round(np.arange(0.2, 1.0, 0.005), 3)
    best = max(grid, key=lambda t: prf(pos, neg, t)[2])
    precise = next((t for t in grid if prf(pos, neg, t)[0] >= target), 1.0)
    return float(best), float(precise)


def answer_citations(index: str, n: int, threshold: float, seed: int, generator: str = "extractive") -> dict[str, float]:
    """Citation precision and recall of a generator's raw answers on PubMedQA dev questions (dense top 5), and
    how often a citation moved to another document's passage is flagged.

    Precision: share of the sentences that cite something whose cited passages support them. Recall: share of
    the sentences some retrieved passage supports that cite something. Invalid markers ([7] of 5) are counted.
    """
    from calibrate_abstention import open_dense

    from medrag.generation import clean_citations

    questions = [v["QUESTION"] for v in json.loads((DATA / "pubmedqa_dev.json").read_text(encoding="utf-8")).values()]
    questions = random.Random(seed).sample(questions, n)
    rag = open_dense(index)
    checker = SupportChecker(rag.embedder, threshold)
    gen = rag.generator(generator)
    right, wrong, raw_cited, invalid = [], [], [], 0
    for q, hits in zip(questions, rag.retrieve_batch(questions, k=5), strict=True):
        passages = [h.chunk.text for h in hits]
        text, _, removed = clean_citations(gen.generate(q, [h.chunk for h in hits]).text, set(range(1, len(hits) + 1)))
        invalid += removed
        sentences = split_answer(text)
        docs = [h.chunk.doc_id for h in hits]
        # each citation moved to the next retrieved passage from another document (a wrong, on-topic citation)
        moved = [(s, [next((m for m in [*range(c + 1, len(docs) + 1), *range(1, c)] if docs[m - 1] != docs[c - 1]), 0)
                      for c in cited]) for s, cited in sentences]
        shifted = [(s, cited) for s, cited in moved if cited and all(cited)]
        right += checker.check(sentences, passages)
        raw_cited += [bool(cited) for _, cited in sentences]
        wrong += checker.check(shifted, passages)
    cited = [s for s, c in zip(right, raw_cited) if c]
    supported = [c for s, c in zip(right, raw_cited) if s.supported]
    share = lambda xs: float(np.mean(xs)) if len(xs) else None  # noqa: E731
    return {"generator": generator, "questions": n, "sentences": len(right), "invalid_markers": invalid,
            "cited": share(raw_cited), "citation_precision": share([s.supported for s in cited]),
            "citation_recall": share(supported), "supported": share([s.supported for s in right]),
            "mean_support": share([s.support for s in right]), "shifted_sentences": len(wrong),
            "shifted_flagged": share([not s.supported for s in wrong]),
            "shifted_mean_support": share([s.support for s in wrong])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-precision", type=float, default=0.9)
    parser.add_argument("--index", help="an index to measure the extractive answerer's citations on")
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threshold", type=float, help="skip the BioASQ calibration; measure --index at this")
    parser.add_argument("--generator", default="extractive", help="whose answers to measure (a model name or dir)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threshold is not None:
        if not args.index:
            parser.error("--threshold measures an index: give --index too")
        result = answer_citations(args.index, args.questions, args.threshold, args.seed, args.generator)
        print(f"{args.generator} answers at threshold {args.threshold:.3f}: {json.dumps(result)}")
        return
    embedder = Embedder()
    dev_questions = load("7B")
    dev = scores(dev_questions, embedder, args.seed)
    test = scores(load("8B", {q["body"] for q in dev_questions}), embedder, args.seed)
    print(f"pairs: 7B {len(dev['positive'])} sentences, 8B {len(test['positive'])} sentences "
          f"(each with one positive, one random and one hard negative)\n")
    print("| support (max cosine) | positive | random negative | hard negative |\n|---|---|---|---|")
    for name, s in (("7B", dev), ("8B", test)):
        print(f"| {name} median (IQR) | " + " | ".join(
            f"{np.median(s[k]):.3f} ({np.percentile(s[k], 25):.3f}–{np.percentile(s[k], 75):.3f})"
            for k in ("positive", "random", "hard")) + " |")
    print("\n| negatives | threshold (chosen on 7B) | 8B precision | 8B recall | 8B F1 |\n|---|---|---|---|---|")
    chosen = {}
    for kind in ("random", "hard"):
        f1_t, p_t = choose(dev["positive"], dev[kind], args.target_precision)
        chosen[kind] = (f1_t, p_t)
        for label, t in ((f"F1-optimal {f1_t:.3f}", f1_t), (f"precision ≥ {args.target_precision} {p_t:.3f}", p_t)):
            p, r, f = prf(test["positive"], test[kind], t)
            print(f"| {kind} | {label} | {p:.3f} | {r:.3f} | {f:.3f} |")
    if args.index:
        threshold = chosen["hard"][0]
        result = answer_citations(args.index, args.questions, threshold, args.seed, args.generator)
        print(f"\n{args.generator} answers at threshold {threshold:.3f}: {json.dumps(result)}")


if __name__ == "__main__":
    main()
