"""Scale: ingest throughput of the local engine against Ray, the compressed index at millions of vectors, and
BM25's memory at a million chunks — each against a baseline measured in the same run.

1. Ingest: the same passages (the first ``--passages`` lines of the BioASQ snippet corpus) into a fresh index
   with the local engine, then with ``--engine ray`` at 1 worker (2 threads) and 2 workers (1 thread each);
   chunks/s, and whether the Ray index's Flat neighbours equal the local one's.
2. Vectors: 1M and 5M noisy copies of the real chunk embeddings (as ``bench_search.py`` makes them) in the
   recommended IVF-SQ8 index: build time, RAM, disk, p50/p95 latency against exact search over the same
   vectors, recall@10 of the exact neighbours.
3. BM25: the real chunk texts of ``--index`` repeated to ``--bm25-chunks``: disk size, resident memory and
   query latency when loaded into RAM and when memory-mapped (each in a fresh process).
4. Metadata: ``--index``'s SQLite chunk store opened on disk (how ``MedRAG.load`` opens it) against copied
   into memory: resident memory and the time to fetch a question's 10 chunks.

The last line is the Ray (2 workers) / local ingest throughput ratio.

    .venv/bin/python eval/bench_scale.py [--passages 20000] [--sizes 1000000 5000000] [--bm25-chunks 1000000]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from bench_search import CACHE, noisy_copies, recall_at_10, rss, time_each
from medrag import MedRAG, Settings
from medrag.distributed import ingest_ray
from medrag.lexical import BM25Store
from medrag.stores import layout
from medrag.stores.chunks import ChunkStore
from medrag.stores.faiss_store import FaissStore

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = ROOT.parent / "shared" / "data" / "corpora" / "pubmed" / "bioasq_snippets.jsonl"
QUESTIONS = ["What is the mechanism of action of metformin?", "Which genes are mutated in cystic fibrosis?",
             "Is hypertension a risk factor for dementia?", "What causes iron deficiency anemia?"]
#: the recommended compressed index per size (bench_search: IVF-SQ8 keeps recall@10 >= 0.95 where PQ48 cannot)
RECOMMENDED = {1_000_000: ("IVF1024,SQ8", 128), 5_000_000: ("IVF4096,SQ8", 256)}


def anon() -> int:
    """This process's anonymous resident memory in bytes (RssAnon): what the OS cannot drop the way it drops
    the pages of a memory-mapped or cached file."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return rss()


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_ingest(passages: int, work: Path) -> list[dict[str, object]]:
    source = work / "passages.jsonl"
    with SNIPPETS.open(encoding="utf-8") as f, source.open("w", encoding="utf-8") as out:
        for _, line in zip(range(passages), f):
            out.write(line)
    rows, neighbours = [], {}
    for name, workers, threads in (("local", 0, 2), ("ray, 1 worker x 2 threads", 1, 2),
                                   ("ray, 2 workers x 1 thread", 2, 1)):
        index = work / name.split(",")[0].replace(" ", "") / str(workers)
        shutil.rmtree(index, ignore_errors=True)
        rag = MedRAG(Settings(threads=threads))
        start = time.perf_counter()
        if workers:
            report = ingest_ray(rag, [source], index, workers=workers, threads=threads, progress=False)
        else:
            report = rag.ingest([source], save_to=index, progress=False)
        seconds = time.perf_counter() - start
        loaded = MedRAG.load(index)
        neighbours[name] = [[h.chunk.id for h in hits] for hits in loaded.retrieve_batch(QUESTIONS, 10, retriever="dense")]
        row = {"engine": name, "passages": passages, "chunks": report.chunks, "seconds": round(seconds, 1),
               "chunks_per_s": round(report.chunks / seconds, 2), "ray_embed_s": round(report.shard_seconds, 1),
               "merge_s": round(report.seconds, 1) if workers else None,
               "same_flat_neighbours_as_local": neighbours[name] == neighbours["local"]}
        rows.append(row)
        print(f"ingest {name:<28} {report.chunks:6d} chunks in {seconds:7.1f} s = {row['chunks_per_s']:6.1f} chunks/s"
              f"  same Flat neighbours as local: {row['same_flat_neighbours_as_local']}", flush=True)
    return rows


def bench_vectors(total: int, corpus: np.ndarray, queries: np.ndarray, n: int, work: Path) -> dict[str, object]:
    factory, nprobe = RECOMMENDED.get(total, (f"IVF{4 * int(np.sqrt(total)) // 1024 * 1024 or 1024},SQ8", 128))
    vectors, _ = noisy_copies(corpus, total)
    truth = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)[1]
    exact_p50, exact_p95 = time_each(lambda i: faiss.knn(queries[i : i + 1], vectors, 10,
                                                         metric=faiss.METRIC_INNER_PRODUCT), min(n, 20))
    n = min(n, len(queries))  # timed one by one; recall is over every question
    before = rss()
    start = time.perf_counter()
    store = FaissStore(vectors.shape[1], factory, nprobe=nprobe)
    store.add(np.arange(total, dtype=np.int64), vectors)
    build = time.perf_counter() - start
    ram = rss() - before
    store.save(work / "vectors.faiss")
    disk = (work / "vectors.faiss").stat().st_size
    p50, p95 = time_each(lambda i: store.search(queries[i : i + 1], 10), n)
    row = {"vectors": total, "type": factory, "nprobe": nprobe, "build_s": round(build, 1),
           "ram_gb": round(ram / 1e9, 3), "disk_gb": round(disk / 1e9, 3), "p50_ms": round(p50, 3),
           "p95_ms": round(p95, 3), "exact_p50_ms": round(exact_p50, 2), "exact_p95_ms": round(exact_p95, 2),
           "p50_ratio": round(p50 / exact_p50, 4), "recall@10": round(recall_at_10(store.search(queries, 10)[1], truth), 4)}
    print(f"{total:>9,} vectors {factory:<12} nprobe {nprobe:<4} build {build:7.1f} s  RAM {row['ram_gb']:.2f} GB  "
          f"disk {row['disk_gb']:.2f} GB  p50 {p50:7.2f} ms / exact {exact_p50:8.1f} ms ({row['p50_ratio']:.3f}x)  "
          f"recall@10 {row['recall@10']:.3f}", flush=True)
    (work / "vectors.faiss").unlink()
    return row


def probe_bm25(path: Path, mmap: bool) -> dict[str, float]:
    """In this (fresh) process: load the store, run the questions, report resident memory and latency."""
    before, before_anon = rss(), anon()
    start = time.perf_counter()
    store = BM25Store.load(path, mmap=mmap)
    load_s = time.perf_counter() - start
    p50, p95 = time_each(lambda i: store.search([QUESTIONS[i % len(QUESTIONS)]], 10), 40)
    return {"load_s": round(load_s, 2), "rss_gb": round((rss() - before) / 1e9, 3),
            "anon_gb": round((anon() - before_anon) / 1e9, 3), "p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}


def bench_bm25(index: Path, chunks: int, work: Path) -> dict[str, object]:
    rag = MedRAG.load(index)
    ids = rag.chunks.ids()
    stored = rag.chunks.get(ids)
    texts = [stored[i].embed_text for i in ids]
    texts = [texts[i % len(texts)] for i in range(chunks)]
    start = time.perf_counter()
    store = BM25Store()
    store.add(np.arange(chunks, dtype=np.int64), texts)
    store.save(work / "bm25")
    build = time.perf_counter() - start
    del store, texts, stored, rag
    row: dict[str, object] = {"chunks": chunks, "build_s": round(build, 1), "disk_gb": round(dir_bytes(work / "bm25") / 1e9, 3)}
    for mode in ("ram", "mmap"):
        out = subprocess.run([sys.executable, __file__, "--probe-bm25", str(work / "bm25")] + (["--mmap"] if mode == "mmap" else []),
                             capture_output=True, text=True, check=True)
        row[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"BM25 {chunks:,} chunks: build {build:.1f} s, disk {row['disk_gb']:.2f} GB; in RAM {row['ram']}; "
          f"memory-mapped {row['mmap']}", flush=True)
    return row


def bench_metadata(index: Path) -> dict[str, object]:
    path = index / layout.read_manifest(index)["files"]["chunks"]
    row: dict[str, object] = {"chunks_file_mb": round(path.stat().st_size / 1e6, 1)}
    rng = np.random.default_rng(0)
    for mode, in_memory in (("on_disk", False), ("in_memory", True)):
        before = anon()
        store = ChunkStore.load(path, in_memory=in_memory)
        grown = anon() - before
        ids = np.asarray(store.ids())
        picks = [rng.choice(ids, 10, replace=False).tolist() for _ in range(200)]
        p50, p95 = time_each(lambda i: store.get(picks[i]), len(picks))
        row[mode] = {"anon_mb": round(grown / 1e6, 1), "get10_p50_ms": round(p50, 3), "get10_p95_ms": round(p95, 3)}
        row["chunks"] = len(ids)
        store.db.close()
    print(f"metadata {row['chunks']:,} chunks ({row['chunks_file_mb']} MB SQLite): on disk {row['on_disk']}; "
          f"in memory {row['in_memory']}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 5_000_000])
    parser.add_argument("--bm25-chunks", type=int, default=1_000_000)
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "shared-all", help="real chunks for BM25")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "bench_scale.json")
    parser.add_argument("--probe-bm25", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mmap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe_bm25:
        print(json.dumps(probe_bm25(args.probe_bm25, args.mmap)))
        return
    faiss.omp_set_num_threads(2)
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory(dir=ROOT / "indexes") as tmp:
        work = Path(tmp)
        if args.sizes:
            corpus = np.load(CACHE / "corpus.npy", allow_pickle=False)  # bench_search.py caches them
            queries = np.load(CACHE / "queries.npy", allow_pickle=False)  # all BioASQ dev questions
            result["vectors"] = [bench_vectors(total, corpus, queries, args.queries, work) for total in args.sizes]
        result["metadata"] = bench_metadata(args.index)
        if args.bm25_chunks:
            result["bm25"] = bench_bm25(args.index, args.bm25_chunks, work)
        result["ingest"] = bench_ingest(args.passages, work)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    local, ray2 = result["ingest"][0], result["ingest"][2]
    print(f"ray (2 workers) / local ingest throughput: {ray2['chunks_per_s'] / local['chunks_per_s']:.2f}")


if __name__ == "__main__":
    main()
