"""Scale: checkpoint cost against index size, update files, ingest throughput of the local engine against Ray,
the compressed index at millions of vectors, and BM25's memory at a million chunks — each against a baseline
measured in the same run.

0. Checkpoints (``--checkpoint-chunks N``): real PubMed abstracts (``bench_lexical.abstracts``) repeated as
   PubMed XML citations with distinct PMIDs (each copy's text ends in its copy number, so none is a
   duplicate) ingested into one index to N+ chunks, a checkpoint every 2,048 chunks, lexical backend
   ``--lexical``. Each text is an abstract's first 120 words, one chunk. Vectors come from the real embedding model, each distinct chunk text embedded once (the
   ingest's ``embed`` hook, as the Ray engine uses it): the bench times the index writes, not the model. Each
   checkpoint's save is timed; at the first and the last one a whole rewrite of the index (what the previous
   format did at every checkpoint) is timed too. Then an update file of 1,000 revisions + 1,000 deletions is
   applied to a 10x smaller index built the same way and to the large one.

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

The last line is the last/first checkpoint cost ratio when section 0 ran (target <= 1.5), else the Ray
(2 workers) / local ingest throughput ratio.

    .venv/bin/python eval/bench_scale.py [--checkpoint-chunks 200000] [--passages 20000] [--sizes 1000000 5000000]
                                         [--bm25-chunks 1000000]
"""
from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import statistics
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


class CachedEmbedding:
    """Chunk text -> vector from the real model, each distinct text (copy number stripped) embedded once."""

    def __init__(self, rag: MedRAG) -> None:
        self.embedder, self.cache, self.embedded, self.seconds = rag.embedder, {}, 0, 0.0

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = [re.sub(r" \[\d+\]$", "", t) for t in texts]
        missing = sorted({k for k in keys if k not in self.cache})
        if missing:
            start = time.perf_counter()
            self.cache.update(zip(missing, self.embedder.embed_documents(missing)))
            self.embedded += len(missing)
            self.seconds += time.perf_counter() - start
        if not keys:
            return np.zeros((0, self.embedder.dim), np.float32)
        return np.vstack([self.cache[k] for k in keys]).astype(np.float32)


def citation(pmid: int, title: str, text: str) -> str:
    return (f"<PubmedArticle><MedlineCitation><PMID>{pmid}</PMID><Article><ArticleTitle>{html.escape(title)}"
            f"</ArticleTitle><Abstract><AbstractText>{html.escape(text)}</AbstractText></Abstract></Article>"
            f"</MedlineCitation></PubmedArticle>")


FIRST_PMID = 30_000_001  # PMIDs of eight digits, increasing, as in a PubMed baseline file


def write_corpus(work: Path, texts: list[str], documents: int, per_file: int = 10_000) -> list[Path]:
    """``documents`` citations with increasing eight-digit PMIDs, citation n holding texts[n % T] + its copy
    number."""
    files = []
    for start in range(0, documents, per_file):
        path = work / f"corpus.{start // per_file:04d}.xml"
        with path.open("w", encoding="utf-8") as out:
            out.write("<PubmedArticleSet>")
            for n in range(start, min(documents, start + per_file)):
                base = texts[n % len(texts)]
                out.write(citation(FIRST_PMID + n, " ".join(base.split()[:10]), f"{base} [{n // len(texts)}]"))
            out.write("</PubmedArticleSet>")
        files.append(path)
    return files


def write_update(path: Path, texts: list[str], documents: int, revisions: int = 1000, deletions: int = 1000) -> Path:
    """An update file: ``revisions`` citations revised (new text), ``deletions`` deleted, spread over the index."""
    rng = np.random.default_rng(1)
    picked = rng.choice(documents, revisions + deletions, replace=False)
    with path.open("w", encoding="utf-8") as out:
        out.write("<PubmedArticleSet>")
        for n in picked[:revisions]:
            base = texts[n % len(texts)]
            out.write(citation(FIRST_PMID + int(n), " ".join(base.split()[:10]), f"Revised. {base} [{n // len(texts)}]"))
        out.write("<DeleteCitation>" + "".join(f"<PMID>{FIRST_PMID + int(n)}</PMID>" for n in picked[revisions:])
                  + "</DeleteCitation>")
        out.write("</PubmedArticleSet>")
    return path


def whole_rewrite(rag: MedRAG, target: Path) -> float:
    """Seconds to write the whole index once, as the previous format did at every checkpoint."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    start = time.perf_counter()
    rag.vectors.whole().save(target / "vectors.faiss")
    rag.chunks.save(target / "chunks.sqlite")
    if rag.lexical is not None:
        rag.lexical.save(target / "lexical")
    seconds = time.perf_counter() - start
    shutil.rmtree(target, ignore_errors=True)
    return seconds


def build_timed(work: Path, name: str, files: list[Path], lexical: str, embed: CachedEmbedding | None,
                rewrite: bool) -> dict[str, object]:
    """Ingest ``files`` into a new index with a checkpoint every 2,048 chunks, timing each checkpoint."""
    index = work / name
    rag = MedRAG(Settings(threads=2).replace(**{"lexical.backend": lexical}))
    embed = embed or CachedEmbedding(rag)
    saves: list[dict[str, float]] = []
    save = rag.save

    def timed(directory: str | Path) -> None:
        start = time.perf_counter()
        save(directory)
        saves.append({"chunks": rag.vectors.count(), "seconds": time.perf_counter() - start,
                      "segments": len(rag.vectors.sealed), **{f"{k}_s": v for k, v in rag.last_save.items()}})
        if rewrite and len(saves) == 1:
            saves[-1]["whole_rewrite_s"] = whole_rewrite(rag, work / "rewrite")

    rag.save = timed  # type: ignore[method-assign]
    start = time.perf_counter()
    from medrag.ingest import ingest

    report = ingest(rag, files, save_to=index, progress=False, embed=embed)
    seconds = time.perf_counter() - start
    if rewrite:
        saves[-1]["whole_rewrite_s"] = whole_rewrite(rag, work / "rewrite")
    return {"index": index, "embed": embed, "chunks": report.chunks, "seconds": round(seconds, 1), "saves": saves}


def apply_update(index: Path, update: Path, embed: CachedEmbedding) -> dict[str, object]:
    rag = MedRAG.load(index, threads=2)
    rag.embedder = embed.embedder
    from medrag.ingest import ingest

    start, model = time.perf_counter(), embed.seconds
    report = ingest(rag, [update], save_to=index, progress=False, embed=embed)
    seconds = time.perf_counter() - start
    return {"embedding_s": round(embed.seconds - model, 2), "index_work_s": round(seconds - embed.seconds + model, 2),
            "replaced": report.replaced, "deleted": report.deleted,
            "seconds": round(seconds, 2), "chunks_after": rag.vectors.count()}


def bench_checkpoints(total_chunks: int, lexical: str, work: Path) -> dict[str, object]:
    from bench_lexical import abstracts

    texts = [" ".join(t.split()[:120]) for t in abstracts()]  # one chunk each (the bench is of writes, not chunking)
    documents = total_chunks
    (work / "small-src").mkdir()
    small = build_timed(work, "small", write_corpus(work / "small-src", texts, documents // 10), lexical, None,
                        rewrite=False)
    embed = small["embed"]
    small_update = apply_update(small["index"], write_update(work / "update-small.xml", texts, documents // 10), embed)
    (work / "large-src").mkdir()
    large = build_timed(work, "large", write_corpus(work / "large-src", texts, documents), lexical, embed, rewrite=True)
    large_update = apply_update(large["index"], write_update(work / "update-large.xml", texts, documents), embed)
    saves = large["saves"]
    first = statistics.median(s["seconds"] for s in saves[:5])
    last = statistics.median(s["seconds"] for s in saves[-6:-1])  # the final save (end of ingest) apart
    result = {
        "lexical": lexical, "chunks": large["chunks"], "checkpoints": len(saves), "ingest_s": large["seconds"],
        "distinct_texts_embedded": embed.embedded,
        "first_save_s": round(saves[0]["seconds"], 3), "last_save_s": round(saves[-1]["seconds"], 3),
        "median_first5_s": round(first, 3), "median_last5_s": round(last, 3),
        "last_over_first": round(last / first, 2),
        "whole_rewrite_first_s": round(saves[0].get("whole_rewrite_s", 0.0), 3),
        "whole_rewrite_last_s": round(saves[-1].get("whole_rewrite_s", 0.0), 3),
        "segments_at_end": saves[-1]["segments"],
        "saves": [{k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()} for s in saves],
        "update_small": {**small_update, "index_chunks": small["chunks"]},
        "update_large": {**large_update, "index_chunks": large["chunks"]},
    }
    print(f"checkpoints ({lexical}): {len(saves)} saves to {large['chunks']} chunks; median first 5 {first * 1000:.0f} ms, "
          f"median last 5 {last * 1000:.0f} ms; a whole rewrite: {result['whole_rewrite_first_s']:.2f} s first, "
          f"{result['whole_rewrite_last_s']:.2f} s last", flush=True)
    for name, done, built in (("small", small_update, small), ("large", large_update, large)):
        print(f"update of 1,000 revisions + 1,000 deletions on {built['chunks']} chunks: {done['seconds']:.1f} s "
              f"({done['embedding_s']:.1f} s embedding the revised texts, {done['index_work_s']:.1f} s the rest)",
              flush=True)
    return result


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
    parser.add_argument("--checkpoint-chunks", type=int, default=200_000, help="section 0's index size (0: skip)")
    parser.add_argument("--lexical", default="tantivy", help="section 0's lexical backend")
    parser.add_argument("--passages", type=int, default=20_000, help="section 1's passages (0: skip)")
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
        if args.checkpoint_chunks:
            result["checkpoints"] = bench_checkpoints(args.checkpoint_chunks, args.lexical, work)
        if args.sizes:
            corpus = np.load(CACHE / "corpus.npy", allow_pickle=False)  # bench_search.py caches them
            queries = np.load(CACHE / "queries.npy", allow_pickle=False)  # all BioASQ dev questions
            result["vectors"] = [bench_vectors(total, corpus, queries, args.queries, work) for total in args.sizes]
        if args.index.exists():
            result["metadata"] = bench_metadata(args.index)
        if args.bm25_chunks:
            result["bm25"] = bench_bm25(args.index, args.bm25_chunks, work)
        if args.passages:
            result["ingest"] = bench_ingest(args.passages, work)
    saved = json.loads(args.out.read_text()) if args.out.exists() else {}
    args.out.write_text(json.dumps({**saved, **result}, indent=2, default=str) + "\n")  # sections not run are kept
    if "ingest" in result:
        local, ray2 = result["ingest"][0], result["ingest"][2]
        print(f"ray (2 workers) / local ingest throughput: {ray2['chunks_per_s'] / local['chunks_per_s']:.2f}")
    if "checkpoints" in result:
        print(f"checkpoint cost last/first: {result['checkpoints']['last_over_first']:.2f}")


if __name__ == "__main__":
    main()
