"""Search latency and ANN recall on real embeddings, each figure a ratio to bare FAISS in the same run.

1. Retrievers: p50/p95 of one question's ``MedRAG.retrieve`` (dense, bm25, hybrid, k=10) on a real index,
   each against a bare ``faiss.IndexFlatIP.search`` of one query over the same vectors; and batched search.
2. Index types on the index's real chunk vectors (cached under indexes/bench-search/): Flat, HNSW32 at
   several efSearch, IVF-PQ, IVF-PQ with exact refinement, IVF-SQ8: build seconds, bytes per vector,
   p50/p95 latency as a ratio to Flat, recall@10 of Flat's neighbours (queries: BioASQ dev questions).
3. The same at 1M vectors: the real vectors each copied with small Gaussian noise (random vectors have no
   neighbourhood structure, so ANN recall on them means nothing). Target: recall@10 >= 0.95 of Flat at
   <= 1/10 of Flat's latency. The last line is that configuration's latency ratio to Flat.

    .venv/bin/python eval/bench_search.py [--index indexes/shared-all] [--million 1000000] [--queries 200]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from medrag import MedRAG
from medrag.evaluation.datasets import load as load_questions
from medrag.stores.faiss_store import FaissStore

ROOT = Path(__file__).resolve().parents[1]
BIOASQ = ROOT.parent / "shared" / "data" / "eval" / "bioasq"
CACHE = ROOT / "indexes" / "bench-search"


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def time_each(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    """p50/p95 (ms) of ``fn(i)`` for i in range(n), after one warm-up call."""
    fn(0)
    took = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        took.append(time.perf_counter() - start)
    return percentiles(took)


def real_vectors(index: Path, questions: list[str], rag: MedRAG) -> tuple[np.ndarray, np.ndarray]:
    """The index's chunk vectors and the questions' vectors, cached as .npy under indexes/bench-search."""
    CACHE.mkdir(parents=True, exist_ok=True)
    meta_path, corpus_path, query_path = CACHE / "source.json", CACHE / "corpus.npy", CACHE / "queries.npy"
    source = {"index": str(index.resolve()), "chunks": rag.vectors.count(), "questions": len(questions),
              "embedder": rag.settings.embedding.model}
    if meta_path.exists() and json.loads(meta_path.read_text()) == source:
        return np.load(corpus_path, allow_pickle=False), np.load(query_path, allow_pickle=False)
    if rag.vectors.factory != "Flat":
        raise SystemExit(f"{index} is not a Flat index: its exact vectors cannot be read back")
    corpus = rag.vectors.vectors_of(np.asarray(rag.chunks.ids(), dtype=np.int64))
    queries = rag.embedder.embed_queries(questions)
    np.save(corpus_path, corpus)
    np.save(query_path, queries)
    meta_path.write_text(json.dumps(source))
    return corpus, queries


def noisy_copies(corpus: np.ndarray, total: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """``total`` unit vectors: the corpus, then copies of it with Gaussian noise, renormalised.

    The noise is scaled so that a copy is as close to its original as a real vector is to its nearest real
    neighbour (median), which keeps the 1M set's neighbourhoods about as dense as real ones.
    """
    sample = corpus[np.random.default_rng(seed).choice(len(corpus), min(2000, len(corpus)), replace=False)]
    flat = faiss.IndexFlatIP(corpus.shape[1])
    flat.add(corpus)
    nearest = np.median(flat.search(sample, 2)[0][:, 1])  # cosine to the nearest other vector
    sigma = float(np.sqrt(2 * (1 - nearest) / corpus.shape[1]))  # E|noise|^2 = |x - nn|^2 = 2 (1 - cos)
    rng = np.random.default_rng(seed)
    out = np.empty((total, corpus.shape[1]), np.float32)
    out[: len(corpus)] = corpus
    for start in range(len(corpus), total, len(corpus)):
        end = min(total, start + len(corpus))
        block = corpus[: end - start] + rng.normal(0, sigma, (end - start, corpus.shape[1])).astype(np.float32)
        out[start:end] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out, sigma


def rss() -> int:
    """This process's resident memory in bytes."""
    import psutil

    return psutil.Process().memory_info().rss


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:10]) & set(t[:10])) / 10 for f, t in zip(found, truth)]))


def bench_types(vectors: np.ndarray, queries: np.ndarray, configs: list[tuple[str, dict[str, int]]], n: int,
                label: str) -> list[dict[str, object]]:
    """Build each FAISS type over ``vectors`` through medrag's store; time single queries against Flat."""
    ids = np.arange(len(vectors), dtype=np.int64)
    rows: list[dict[str, object]] = []
    truth = flat_p = None
    built: dict[str, tuple[FaissStore, float, int]] = {}
    for factory, params in configs:
        if factory not in built:
            for old in built.values():  # measured: free their memory before the next one is built
                old[0].index = None
            before = rss()
            start = time.perf_counter()
            store = FaissStore(vectors.shape[1], factory, **params)
            store.add(ids, vectors)
            if store.staged:
                raise SystemExit(f"{factory} needs more than {len(vectors)} vectors to train")
            seconds = time.perf_counter() - start
            built[factory] = (store, seconds, faiss.serialize_index(store.index).nbytes, rss() - before)
        store, seconds, size, ram = built[factory]
        store.params.update({"efSearch": params.get("ef_search", 64), "nprobe": params.get("nprobe", 16),
                             "k_factor": params.get("k_factor", 4)})
        store._tune()
        p50, p95 = time_each(lambda i: store.search(queries[i : i + 1], 10), n)
        found = store.search(queries, 10)[1]
        if truth is None:  # the first configuration is Flat: exact neighbours and the latency baseline
            truth, flat_p = found, (p50, p95)
        row = {"set": label, "type": factory, "params": ",".join(f"{k}={v}" for k, v in params.items()) or "-",
               "build_s": round(seconds, 1), "bytes_per_vector": round(size / len(vectors), 1),
               "ram_bytes_per_vector": round(ram / len(vectors), 1),
               "gb_per_million": round(size / len(vectors) * 1e6 / 1e9, 3), "p50_ms": round(p50, 3),
               "p95_ms": round(p95, 3), "p50_ratio": round(p50 / flat_p[0], 4),
               "p95_ratio": round(p95 / flat_p[1], 4), "recall@10": round(recall_at_10(found, truth), 4)}
        rows.append(row)
        print(f"{label:>6} {factory:<22} {row['params']:<22} build {seconds:7.1f} s  "
              f"{row['bytes_per_vector']:7.1f} B/vector on disk, {row['ram_bytes_per_vector']:7.1f} in RAM  p50 {p50:8.3f} ms ({row['p50_ratio']:.3f}x Flat)  "
              f"p95 {p95:8.3f} ms ({row['p95_ratio']:.3f}x)  recall@10 {row['recall@10']:.3f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = next((p for p in (ROOT / "indexes" / "shared-all", ROOT / "indexes" / "bench-bioasq",
                                ROOT / "indexes" / "quickstart") if (p / "manifest.json").exists()), None)
    parser.add_argument("--index", type=Path, default=default, help="a Flat medrag index with BM25 (real vectors)")
    parser.add_argument("--million", type=int, default=1_000_000, help="size of the noisy-copy set (0: skip)")
    parser.add_argument("--queries", type=int, default=200, help="single queries timed per configuration")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "bench_search.json")
    args = parser.parse_args()
    if args.index is None:
        raise SystemExit("no index: build one first, e.g. make demo or medrag ingest corpora/shared-all.toml "
                         "--index indexes/shared-all")
    threads = os.cpu_count() or 1
    faiss.omp_set_num_threads(threads)
    rag = MedRAG.load(args.index)
    questions = [q.question for q in load_questions("bioasq", BIOASQ)]
    corpus, queries = real_vectors(args.index, questions, rag)
    n = min(args.queries, len(queries))
    print(f"real vectors: {len(corpus)} chunks of {args.index}; queries: {len(queries)} BioASQ dev questions; "
          f"{threads} threads", flush=True)

    # 1. retrievers against bare FAISS over the same vectors
    bare = faiss.IndexFlatIP(corpus.shape[1])
    bare.add(corpus)
    bare_p = time_each(lambda i: bare.search(queries[i : i + 1], 10), n)
    print(f"bare FAISS Flat, one query: p50 {bare_p[0]:.3f} ms, p95 {bare_p[1]:.3f} ms")
    rows: list[dict[str, object]] = []
    for mode in ("dense", "bm25", "hybrid"):
        p50, p95 = time_each(lambda i: rag.retrieve(questions[i], k=10, retriever=mode), n)
        start = time.perf_counter()
        rag.retrieve_batch(questions[:n], k=10, retriever=mode)
        batch_ms = (time.perf_counter() - start) * 1000 / n
        rows.append({"set": "retriever", "type": mode, "p50_ms": round(p50, 3), "p95_ms": round(p95, 3),
                     "p50_ratio": round(p50 / bare_p[0], 2), "p95_ratio": round(p95 / bare_p[1], 2),
                     "batched_ms_per_query": round(batch_ms, 3)})
        print(f"retriever {mode:<7} p50 {p50:8.2f} ms ({p50 / bare_p[0]:6.2f}x bare FAISS)  "
              f"p95 {p95:8.2f} ms ({p95 / bare_p[1]:6.2f}x)  batched {batch_ms:.2f} ms/question "
              "(question embedding included)", flush=True)
    query_only = rag.embedder.embed_queries  # what a dense question costs before FAISS
    p50, _ = time_each(lambda i: query_only([questions[i]]), n)
    print(f"question embedding alone: p50 {p50:.2f} ms")

    # 2. index types on the real vectors
    nlist = 256 if len(corpus) < 100_000 else 1024
    real = [("Flat", {}), ("HNSW32", {"ef_search": 16}), ("HNSW32", {"ef_search": 64}),
            ("HNSW32", {"ef_search": 128}), (f"IVF{nlist},PQ48", {"nprobe": 16}),
            (f"IVF{nlist},PQ48,RFlat", {"nprobe": 16, "k_factor": 8}), (f"IVF{nlist},SQ8", {"nprobe": 16}),
            (f"IVF{nlist},SQ8", {"nprobe": 64})]
    rows += bench_types(corpus, queries, real, n, "real")

    # 3. a million noisy copies
    best = None
    if args.million:
        start = time.perf_counter()
        million, sigma = noisy_copies(corpus, args.million)
        print(f"{len(million)} vectors: {len(corpus)} real + noisy copies (sigma {sigma:.4f} per dimension, "
              f"{time.perf_counter() - start:.1f} s)", flush=True)
        big = [("Flat", {}), ("IVF1024,PQ48", {"nprobe": 16}), ("IVF1024,PQ48", {"nprobe": 128}),
               ("IVF1024,PQ48,Refine(SQ8)", {"nprobe": 64, "k_factor": 8}),
               ("IVF1024,PQ48,Refine(SQ8)", {"nprobe": 128, "k_factor": 8}),
               ("IVF1024,SQ8", {"nprobe": 32}), ("IVF1024,SQ8", {"nprobe": 128}),
               ("HNSW32", {"ef_search": 64}), ("HNSW32", {"ef_search": 128})]
        million_rows = bench_types(million, queries, big, n, "1M")
        rows += million_rows
        good = [r for r in million_rows if r["recall@10"] >= 0.95 and r["type"] != "Flat"]
        best = min(good, key=lambda r: r["p50_ratio"]) if good else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"index": str(args.index), "threads": threads, "queries": n, "rows": rows},
                                   indent=2) + "\n")
    print(f"wrote {args.out}")
    if best is None:
        print("no 1M configuration reached recall@10 >= 0.95 of Flat")
        print("1M latency ratio to Flat at recall@10 >= 0.95: none")
    else:
        print(f"best at 1M with recall@10 >= 0.95: {best['type']} {best['params']} "
              f"(recall@10 {best['recall@10']}, {best['bytes_per_vector']} B/vector)")
        print(f"1M latency ratio to Flat at recall@10 >= 0.95: {best['p50_ratio']:.3f}")


if __name__ == "__main__":
    main()
