"""Answer latency against retrieval latency on one index, measured in one warm process.

For 12 consumer-health questions: p50/p95 of ``MedRAG.retrieve`` and of ``MedRAG.ask`` with the extractive
answerer, using the sentence vectors the index stores, and again with them ignored (every passage sentence
embedded at question time, as before they were stored); then ``ask`` with a tiny random GPT-2, whose
generation time is subtracted to show the language-model path's own overhead. Target: ask/retrieve p50 <= 3.
The last line is the headline ratio.

    .venv/bin/python eval/bench_ask.py [--index indexes/quickstart] [--threads 2] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from medrag import MedRAG  # noqa: E402
from medrag.sentences import SentenceVectors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY_GPT2 = ROOT.parent / "shared" / "models" / "tiny-gpt2"
QUESTIONS = [
    "What are the symptoms of high blood pressure?",
    "How is type 2 diabetes treated?",
    "What causes iron deficiency anemia?",
    "How can I lower my cholesterol?",
    "What are the warning signs of a stroke?",
    "Is the flu vaccine safe during pregnancy?",
    "What are the side effects of statins?",
    "How is asthma diagnosed?",
    "What should I do for a migraine headache?",
    "How is hepatitis C spread?",
    "What are the early signs of kidney disease?",
    "How much sleep do adults need?",
]


def timed(fn: Callable[[str], object], questions: list[str], rounds: int) -> list[float]:
    """Seconds of each call of ``fn`` over ``questions``, ``rounds`` times, after one warm-up pass."""
    for q in questions:
        fn(q)
    took = []
    for _ in range(rounds):
        for q in questions:
            start = time.perf_counter()
            fn(q)
            took.append(time.perf_counter() - start)
    return took


def ms(seconds: list[float]) -> str:
    a = np.asarray(seconds) * 1000
    return f"p50 {np.percentile(a, 50):7.1f} ms  p95 {np.percentile(a, 95):7.1f} ms"


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "quickstart")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rag = MedRAG.load(args.index, threads=args.threads)
    stored = rag.chunks.sentence_vectors(rag.chunks.ids()[:50], rag.embedder.dim)
    print(f"index {args.index}: {rag.chunks.count()} chunks, sentence vectors stored: {'yes' if stored else 'no'}; "
          f"CPU {cpu()}, {args.threads} threads; embedder {rag.embedder.path}")

    answered = [q for q in QUESTIONS if not rag.ask(q).abstained]  # an abstention skips the answerer: not timed
    print(f"{len(answered)} of {len(QUESTIONS)} questions answered; the others abstain and are left out")
    retrieve = timed(lambda q: rag.retrieve(q), answered, args.rounds)
    ask = timed(lambda q: rag.ask(q), answered, args.rounds)
    extractive = rag.generator()
    extractive.sentences = SentenceVectors(rag.embedder)  # no store: every sentence embedded when asked
    before = timed(lambda q: rag.ask(q), answered, 1)
    extractive.sentences = SentenceVectors(rag.embedder, rag.chunks)
    print(f"retrieve                          {ms(retrieve)}")
    print(f"ask, extractive                   {ms(ask)}")
    print(f"ask, extractive, sentences embedded when asked (the old path)  {ms(before)}")

    if TINY_GPT2.is_dir():
        lm = rag.generator(str(TINY_GPT2))
        generate, generating = lm.generate, [0.0]

        def timed_generate(*a: object, **k: object) -> object:
            start = time.perf_counter()
            try:
                return generate(*a, **k)
            finally:
                generating[0] += time.perf_counter() - start

        lm.generate = timed_generate
        lm_ask, generated = [], []
        for q in answered:
            generating[0] = 0.0
            start = time.perf_counter()
            rag.ask(q, generator=str(TINY_GPT2))
            lm_ask.append(time.perf_counter() - start)
            generated.append(generating[0])
        print(f"ask, tiny-gpt2 (noise weights)    {ms(lm_ask)}")
        print(f"  of which generation             {ms(generated)}")
        print(f"  ask minus generation            {ms([a - g for a, g in zip(lm_ask, generated)])}")
    ratio = float(np.percentile(ask, 50) / np.percentile(retrieve, 50))
    print(f"old-path ask/retrieve p50 ratio: {np.percentile(before, 50) / np.percentile(retrieve, 50):.1f}")
    print(f"ask/retrieve p50 ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
