"""What encryption at rest costs: ingest, load and query time of an encrypted index against a plaintext one of
the same documents, measured in one run on the same machine.

The first ``--documents`` passages of the BioASQ snippet corpus are ingested into a plaintext index and into an
encrypted one (``MedRAG(key=...)``; one shared embedder, ``--threads`` threads), alternately, ``--repeats``
times each, best time kept. Load: ``MedRAG.load`` of each index (the encrypted one with scrypt's cache cleared,
so the key stretch is counted; and again with the key already stretched, as a server reloading a new
generation does). Query: ``retrieve`` (hybrid, k=10) for each of ``--questions`` BioASQ
questions, best of ``--repeats`` passes. Both loaded indexes must return the same passages.

The last line is the encrypted/plaintext ingest ratio.

    .venv/bin/python eval/bench_encrypt.py [--documents 300] [--questions 50] [--repeats 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from medrag import MedRAG, Settings
from medrag.embedding import Embedder
from medrag.evaluation.datasets import load as load_questions
from medrag.stores import sealed

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SNIPPETS = DATA / "corpora" / "pubmed" / "bioasq_snippets.jsonl"
QUESTIONS = DATA / "eval" / "bioasq" / "7B1_golden.json"
PASSPHRASE = "bench: a passphrase of the kind a person types"


def ingest(source: Path, index: Path, embedder: Embedder, threads: int, key: str | None) -> float:
    shutil.rmtree(index, ignore_errors=True)
    rag = MedRAG(Settings(threads=threads), key=key)
    rag.embedder = embedder
    start = time.perf_counter()
    rag.ingest([source], save_to=index, progress=False)
    return time.perf_counter() - start


def load(index: Path, threads: int, key: str | None, cold: bool = True) -> tuple[float, MedRAG]:
    """Seconds ``MedRAG.load`` takes (``cold``: the key stretched again, as a fresh process does) and the index."""
    if cold:
        sealed._stretch.cache_clear()
    start = time.perf_counter()
    rag = MedRAG.load(index, threads=threads, key=key)
    return time.perf_counter() - start, rag


def query(rag: MedRAG, questions: list[str]) -> tuple[float, list[list[int]]]:
    """Seconds per question (mean of one pass) and each question's passages."""
    start = time.perf_counter()
    found = [[h.chunk.id for h in rag.retrieve(q, k=10)] for q in questions]
    return (time.perf_counter() - start) / len(questions), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    questions = [q.question for q in load_questions("bioasq", QUESTIONS)][:args.questions]
    embedder = Embedder(threads=args.threads)
    embedder.embed_queries(["warm-up"])
    with tempfile.TemporaryDirectory(prefix="bench-encrypt-") as tmp:
        work = Path(tmp)
        source = work / "passages.jsonl"
        with SNIPPETS.open(encoding="utf-8") as f, source.open("w", encoding="utf-8") as out:
            for _, line in zip(range(args.documents), f):
                out.write(line)
        kinds = {"plaintext": None, "encrypted": PASSPHRASE}
        times: dict[str, dict[str, list[float]]] = {k: {"ingest": [], "load": [], "query": []} for k in kinds}
        results: dict[str, list[list[int]]] = {}
        for _ in range(args.repeats):  # alternate, so a slower moment of the machine hits both
            for kind, key in kinds.items():
                times[kind]["ingest"].append(ingest(source, work / kind, embedder, args.threads, key))
        sizes = {kind: sum(p.stat().st_size for p in (work / kind).rglob("*") if p.is_file()) for kind in kinds}
        loaded = {}
        for _ in range(args.repeats):
            for kind, key in kinds.items():
                seconds, loaded[kind] = load(work / kind, args.threads, key)
                loaded[kind].embedder = embedder
                times[kind]["load"].append(seconds)
                times[kind].setdefault("warm load", []).append(load(work / kind, args.threads, key, cold=False)[0])
        kdf = []
        for _ in range(args.repeats):
            sealed._stretch.cache_clear()
            start = time.perf_counter()
            sealed.IndexKey.new(PASSPHRASE)
            kdf.append(time.perf_counter() - start)
        for _ in range(args.repeats):
            for kind in kinds:
                seconds, results[kind] = query(loaded[kind], questions)
                times[kind]["query"].append(seconds)
        chunks = loaded["plaintext"].chunks.count()
    best = {kind: {what: min(values) for what, values in parts.items()} for kind, parts in times.items()}
    ratio = {what: best["encrypted"][what] / best["plaintext"][what] for what in ("ingest", "load", "warm load", "query")}
    same = results["encrypted"] == results["plaintext"]
    print(f"{args.documents} documents, {chunks} chunks, {len(questions)} questions, threads {args.threads}, "
          f"best of {args.repeats}")
    for kind in kinds:
        b = best[kind]
        print(f"{kind:<10} ingest {b['ingest']:7.2f} s  load {b['load'] * 1000:8.1f} ms  "
              f"query {b['query'] * 1000:7.2f} ms/question  on disk {sizes[kind] / 1e6:6.2f} MB  "
              f"(ingest runs: {', '.join(f'{t:.2f}' for t in times[kind]['ingest'])} s; "
              f"load median {statistics.median(times[kind]['load']) * 1000:.1f} ms; key already stretched "
              f"{b['warm load'] * 1000:.1f} ms)")
    print(f"scrypt key stretch (N=2^17, r=8, p=1): {min(kdf) * 1000:.0f} ms (best of {len(kdf)})")
    print(f"same passages for every question: {same}")
    print(f"encrypted/plaintext size ratio: {sizes['encrypted'] / sizes['plaintext']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"documents": args.documents, "chunks": chunks, "questions": len(questions),
                                         "threads": args.threads, "best": best, "ratio": ratio, "sizes": sizes,
                                         "same_passages": same, "kdf_s": min(kdf)}, indent=2) + "\n")
    print(f"encrypted/plaintext load ratio: {ratio['load']:.2f} (key already stretched: {ratio['warm load']:.2f})")
    print(f"encrypted/plaintext query ratio: {ratio['query']:.3f}")
    print(f"encrypted/plaintext ingest ratio: {ratio['ingest']:.3f}")


if __name__ == "__main__":
    main()
