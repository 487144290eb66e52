"""Lexical backends side by side: bm25s and tantivy at ``--chunks`` chunks, and their BioASQ recall.

1. Scale: real PubMed texts (``--texts abstracts``: the PubMedQA abstracts and the BC5CDR / NCBI-disease
   training and development titles + abstracts, about a 256-token chunk each; ``snippets``: the 21k BioASQ
   snippets) repeated under distinct ids to ``--chunks``, so a term's posting list is as long as in a corpus
   of that size. Per backend, each step in a fresh process with ``--threads`` threads: build (``add`` in
   ``--batch`` batches, then ``save``) seconds, index bytes on disk; then ``open`` the saved index: resident
   memory after opening it (RSS delta; anonymous memory apart from mapped pages) and after the queries,
   p50/p95 latency of one query at a time for ``--queries`` BioASQ dev questions at k=100 (what hybrid
   fusion asks each retriever for), and the same questions as one batch (queries/s; tantivy searches
   ``--threads`` of them at once, bm25s one after another). ``--texts mixed``: each chunk is the first half of
   one abstract's words and the second half of another's, so nearly every chunk is distinct (verbatim copies
   tie on score, which lets tantivy's block-max WAND skip more than a real corpus would let it). A backend
   whose build is predicted to need more memory than ``--max-memory-gb`` (bm25s: ``BUILD_PEAK``, measured) is
   skipped with a message instead of run.
2. Recall: each backend alone over the 21,452 BioASQ snippets (one text each, in one index): recall@10 of
   the gold PMIDs of every BioASQ dev question with a gold PMID among the snippets (ranked PMIDs: the top-100
   snippets' PMIDs, first occurrence kept), and how far the two backends' top-10 snippets agree.
3. Hybrid (``--hybrid``): IVF-SQ8 (``bench_scale.RECOMMENDED``'s type and nprobe for ``--chunks``) over
   ``--chunks`` vectors beside the tantivy index of step 1, in one process. The vectors correspond to the
   texts: chunk i's vector is a noisy copy (``bench_search.noisy_copies``) of the real embedding of the
   abstract chunk i was made from (the default embedder, ``medrag.embedding``), added in blocks. The vector
   file is opened memory-mapped (``IO_FLAG_MMAP``; faiss's per-search list prefetch threads timed once, then
   switched off) and, for comparison, read into RAM. Per question, one at a time: dense search k=100, tantivy
   k=100, ``medrag.fusion.rrf`` as ``Retriever`` fuses them (the chunk fetch from SQLite is not included):
   p50/p95 with the question's embedding precomputed and with it computed in the loop; resident memory
   after opening and after the queries.

The last line is ``tantivy/bm25s p50 ratio: X`` (one-query latency at ``--chunks``), or, when only one backend
ran, the hybrid or that backend's p50.

    .venv/bin/python eval/bench_lexical.py [--chunks 1000000] [--queries 200] [--threads 2] [--skip-recall]
        [--backends tantivy] [--texts abstracts|snippets|mixed] [--hybrid] [--max-memory-gb 16] [--work /tmp/x]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SNIPPETS = DATA / "corpora" / "pubmed" / "bioasq_snippets.jsonl"
PUBMEDQA = DATA / "corpora" / "pubmed" / "pubmedqa_abstracts.json"
PUBTATOR = [DATA / "corpora" / "pubmed" / "pubtator" / "bc5cdr" / f"CDR_{part}.PubTator.txt"
            for part in ("TrainingSet", "DevelopmentSet")] + \
           [DATA / "corpora" / "pubmed" / "pubtator" / "ncbi_disease" / f"NCBI{part}set_corpus.txt"
            for part in ("train", "develop")]  # the test sets are kept aside
BIOASQ = DATA / "eval" / "bioasq"
BACKENDS = ("bm25s", "tantivy")
K = 100  # retrieval.fusion_candidates: what hybrid fusion asks each retriever for
#: a build's peak resident memory, bytes = fixed + per_chunk * chunks, fitted to measured builds of
#: ``--texts abstracts`` (eval/reports/lexical.md); backends not named here are not checked
BUILD_PEAK = {"bm25s": (77e6, 12_250.0)}  # 2.53 GB at 200k, 12.32 GB at 1M chunks
VECTOR_BLOCK = 500_000  # vectors made and added at a time (about 0.77 GB of float32 at 384 dimensions)


def limit_threads(threads: int) -> None:
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                 "RAYON_NUM_THREADS"):
        os.environ[name] = str(threads)


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def anon() -> int:
    """Anonymous resident memory (RssAnon): what the OS cannot drop as it drops a mapped file's pages."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return rss()


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def abstracts() -> list[str]:
    """Real PubMed titles + abstracts: PubMedQA's (contexts and conclusion) and the PubTator sets' (not test)."""
    texts = [" ".join([*v["CONTEXTS"], v["LONG_ANSWER"]]) for v in json.loads(PUBMEDQA.read_text()).values()]
    for path in PUBTATOR:
        parts: dict[str, list[str]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            pieces = line.split("|", 2)
            if len(pieces) == 3 and pieces[1] in ("t", "a"):
                parts.setdefault(pieces[0], []).append(pieces[2])
        texts += [" ".join(p) for p in parts.values()]
    return texts


def snippets() -> list[dict]:
    with open(SNIPPETS, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def corpus_texts(texts: str) -> tuple[list[str], Callable[[int], str]]:
    """The pool of real texts (shuffled, seed 0) and chunk id -> text: pool[i % P] (``abstracts``,
    ``snippets``), or for ``mixed`` the first half of pool[i % P]'s words + the second half of
    pool[(i % P + 1 + i // P) % P]'s (distinct for the first P * (P - 1) ids)."""
    import numpy as np

    pool = [s["text"] for s in snippets()] if texts == "snippets" else abstracts()
    pool = [pool[i] for i in np.random.default_rng(0).permutation(len(pool))]
    size = len(pool)
    if texts != "mixed":
        return pool, lambda i: pool[i % size]
    words = [t.split() for t in pool]
    heads = [" ".join(w[: len(w) // 2]) for w in words]
    tails = [" ".join(w[len(w) // 2 :]) for w in words]
    return pool, lambda i: f"{heads[i % size]} {tails[(i % size + 1 + i // size) % size]}"


def predicted_peak(backend: str, chunks: int) -> float | None:
    """Bytes the build of ``backend`` at ``chunks`` is predicted to peak at (None: not modelled)."""
    if backend not in BUILD_PEAK:
        return None
    fixed, per_chunk = BUILD_PEAK[backend]
    return fixed + per_chunk * chunks


def questions(n: int | None = None) -> list:
    from medrag.evaluation.datasets import load

    found = load("bioasq", BIOASQ)
    return found[:n] if n else found


def store_for(backend: str, threads: int):
    """An empty store of ``backend`` set to use ``threads`` threads where it can."""
    from medrag.lexical import LEXICAL

    cls = LEXICAL.get(backend).load()
    options = {"tantivy": {"writer_threads": threads, "search_threads": threads}}.get(backend, {})
    return cls.create(LEXICAL.get(backend).options(options)), cls


def percentiles(seconds: list[float]) -> tuple[float, float]:
    import numpy as np

    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


# -- steps run in their own process -------------------------------------------------------------------
def build(backend: str, path: Path, chunks: int, texts: str, batch: int, threads: int) -> dict:
    import numpy as np

    pool, text_of = corpus_texts(texts)
    store, _ = store_for(backend, threads)
    start = time.perf_counter()
    for first in range(0, chunks, batch):
        ids = np.arange(first, min(chunks, first + batch), dtype=np.int64)
        store.add(ids, [text_of(i) for i in ids.tolist()])
    store.save(path)
    took = time.perf_counter() - start
    words = sum(len(t.split()) for t in pool) / len(pool)
    distinct = len(pool) if texts != "mixed" else min(chunks, len(pool) * (len(pool) - 1))
    return {"build_s": round(took, 1), "distinct_texts": distinct, "mean_words": round(words, 1),
            "peak_rss_gb": round(_peak() / 1e9, 3)}


def _peak() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def probe(backend: str, path: Path, n: int, threads: int) -> dict:
    from medrag.lexical import LEXICAL

    qs = [q.question for q in questions(n)]
    entry = LEXICAL.get(backend)
    options = {"tantivy": {"writer_threads": threads, "search_threads": threads}}.get(backend, {})
    cls, opts = entry.load(), entry.options(options)  # imported before the memory is measured
    before, before_anon = rss(), anon()
    start = time.perf_counter()
    store = cls.open(path, opts)
    load_s = time.perf_counter() - start
    loaded, loaded_anon = rss() - before, anon() - before_anon
    store.search(qs[:1], K)  # warm-up
    took = []
    for q in qs:
        start = time.perf_counter()
        store.search([q], K)
        took.append(time.perf_counter() - start)
    p50, p95 = percentiles(took)
    start = time.perf_counter()
    store.search(qs, K)
    batch_s = time.perf_counter() - start
    row = {"count": store.count(), "load_s": round(load_s, 3), "rss_after_open_gb": round(loaded / 1e9, 3),
           "anon_after_open_gb": round(loaded_anon / 1e9, 3), "rss_after_queries_gb": round((rss() - before) / 1e9, 3),
           "anon_after_queries_gb": round((anon() - before_anon) / 1e9, 3), "p50_ms": round(p50, 2),
           "p95_ms": round(p95, 2), "batch_qps": round(len(qs) / batch_s, 1)}
    if backend == "tantivy":
        row["segments"] = store._searcher().num_segments
    return row


# -- hybrid: IVF-SQ8 + tantivy in one process ---------------------------------------------------------
def pool_vectors(texts: str, threads: int) -> np.ndarray:
    """The default embedder's vectors of the pool's texts (``corpus_texts`` order), cached under
    ``bench_search.CACHE``."""
    import numpy as np
    from bench_search import CACHE

    from medrag import Settings
    from medrag.embedding import Embedder

    pool, _ = corpus_texts(texts)
    embedder = Embedder.from_settings(Settings(threads=threads))
    name = "snippets" if texts == "snippets" else "abstracts"
    source = {"pool": name, "texts": len(pool), "seed": 0, "embedder": embedder.describe(), "model": embedder.name}
    meta, cached = CACHE / f"lexical-{name}.json", CACHE / f"lexical-{name}.npy"
    if meta.exists() and cached.exists() and json.loads(meta.read_text()) == source:
        return np.load(cached, allow_pickle=False)
    start = time.perf_counter()
    vectors = embedder.embed_documents(pool)
    print(f"embedded {len(pool):,} {name} in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cached, vectors)
    meta.write_text(json.dumps(source))
    return vectors


def ivf_type(chunks: int) -> tuple[str, int]:
    """The IVF-SQ8 type and nprobe ``bench_scale`` recommends at ``chunks`` (IVF1024 below its sizes)."""
    from bench_scale import RECOMMENDED

    return RECOMMENDED.get(chunks, ("IVF1024,SQ8", 128))


def build_vectors(work: Path, chunks: int, texts: str, threads: int) -> dict:
    """IVF-SQ8 over ``chunks`` noisy copies of the pool's vectors (id i: a copy of pool text i % P's), added
    ``VECTOR_BLOCK`` at a time, saved as ``work/vectors.faiss``."""
    import numpy as np
    from bench_search import noisy_copies

    from medrag.stores.faiss_store import FaissStore

    corpus = pool_vectors(texts, threads)
    size = len(corpus)
    factory, nprobe = ivf_type(chunks)
    store = FaissStore(corpus.shape[1], factory, nprobe=nprobe, threads=threads)
    block = size * max(1, VECTOR_BLOCK // size)  # a multiple of the pool: id i stays a copy of pool[i % P]
    took, sigma = 0.0, 0.0
    for first in range(0, chunks, block):
        n = min(block, chunks - first)
        if first == 0:
            vectors, sigma = noisy_copies(corpus, n, seed=0)  # the originals, then copies
        else:
            vectors = noisy_copies(corpus, size + n, seed=first // block)[0][size:]
        start = time.perf_counter()
        store.add(np.arange(first, first + n, dtype=np.int64), vectors)
        took += time.perf_counter() - start
        del vectors
    path = work / "vectors.faiss"
    store.save(path)
    return {"vectors": chunks, "type": factory, "nprobe": nprobe, "noise_sigma": round(sigma, 5),
            "vector_build_s": round(took, 1), "vector_disk_gb": round(path.stat().st_size / 1e9, 3),
            "vector_build_peak_rss_gb": round(_peak() / 1e9, 3)}


def probe_hybrid(work: Path, n: int, chunks: int, texts: str, threads: int) -> dict:
    """Open ``work/vectors.faiss`` (memory-mapped, faiss's list prefetch threads off) and ``work/tantivy``; time
    dense, lexical and RRF-fused hybrid search of one question at a time, without and with the question's
    embedding."""
    import faiss
    import numpy as np
    from bench_search import time_each

    from medrag import Settings, fusion
    from medrag.embedding import Embedder
    from medrag.lexical import LEXICAL
    from medrag.stores.faiss_store import FaissStore

    settings = Settings(threads=threads)
    factory, nprobe = ivf_type(chunks)
    depth, rrf_k = settings.retrieval.fusion_candidates, settings.retrieval.rrf_k
    share = settings.retrieval.dense_weight  # as Retriever._fuse weighs the two sides
    weights = (2 * share, 2 * (1 - share))
    qs = [q.question for q in questions(n)]
    start_rss = rss()
    embedder = Embedder.from_settings(settings)
    query_vectors = embedder.embed_queries(qs)  # outside the timed part; also warms the model
    embedder_rss = rss() - start_rss
    entry = LEXICAL.get("tantivy")
    cls, opts = entry.load(), entry.options({"writer_threads": threads, "search_threads": threads})
    path = work / "vectors.faiss"
    before, before_anon = rss(), anon()
    lexical = cls.open(work / "tantivy", opts)
    dense = FaissStore._wrap_loaded(faiss.read_index(str(path), faiss.IO_FLAG_MMAP), factory, threads=threads,
                                    ef_search=64, nprobe=nprobe, k_factor=4)
    opened, opened_anon = rss() - before, anon() - before_anon

    # faiss's mapped lists (OnDiskInvertedLists) start prefetch_nthread (32) threads per search to touch the
    # probed lists: timed once as they come, then switched off for the rest (warm page cache either way)
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(dense.index).invlists)
    prefetch = time_each(lambda i: dense.search(query_vectors[i : i + 1], depth), n)
    default_prefetch = int(lists.prefetch_nthread)
    lists.prefetch_nthread = 0

    def hybrid(i: int, vector: np.ndarray) -> list[tuple[int, float]]:
        found = dense.search(vector, depth)[1][0]
        return fusion.rrf([found, lexical.search([qs[i]], depth)[1][0]], k=rrf_k, weights=weights)

    timed = {
        "dense": time_each(lambda i: dense.search(query_vectors[i : i + 1], depth), n),
        "lexical": time_each(lambda i: lexical.search([qs[i]], depth), n),
        "embed": time_each(lambda i: embedder.embed_queries([qs[i]]), n),
        "hybrid_excl_embedding": time_each(lambda i: hybrid(i, query_vectors[i : i + 1]), n),
        "hybrid_incl_embedding": time_each(lambda i: hybrid(i, embedder.embed_queries([qs[i]])), n),
    }
    queried, queried_anon = rss() - before, anon() - before_anon
    pool = len(corpus_texts(texts)[0])
    shared = np.mean([bool(set((dense.search(query_vectors[i : i + 1], depth)[1][0] % pool).tolist())
                           & set((lexical.search([qs[i]], depth)[1][0] % pool).tolist())) for i in range(n)])
    row: dict = {"embedder": embedder.describe(), "embedder_rss_gb": round(embedder_rss / 1e9, 3),
                 "rss_after_open_gb": round(opened / 1e9, 3), "anon_after_open_gb": round(opened_anon / 1e9, 3),
                 "rss_after_queries_gb": round(queried / 1e9, 3), "anon_after_queries_gb": round(queried_anon / 1e9, 3),
                 "questions_sharing_a_source_text": round(float(shared), 3)}
    timed[f"dense_prefetch{default_prefetch}"] = prefetch
    for name, (p50, p95) in timed.items():
        row[f"{name}_p50_ms"], row[f"{name}_p95_ms"] = round(p50, 2), round(p95, 2)
    before_anon = anon()
    in_ram = FaissStore.load(path, factory, threads=threads, nprobe=nprobe)  # how medrag loads it today
    row["dense_in_ram_anon_gb"] = round((anon() - before_anon) / 1e9, 3)
    p50, p95 = time_each(lambda i: in_ram.search(query_vectors[i : i + 1], depth), n)
    row["dense_in_ram_p50_ms"], row["dense_in_ram_p95_ms"] = round(p50, 2), round(p95, 2)
    return row


def child(args: list[str]) -> dict:
    """A step in a fresh process (its thread limits set by limit_threads in this process's environment)."""
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- recall on the 21k snippets ------------------------------------------------------------------------
def recall(threads: int) -> dict:
    import numpy as np

    from medrag.evaluation.metrics import retrieval_scores

    snips = snippets()
    pmids = [s["pmid"] for s in snips]
    qs = [q for q in questions() if set(q.gold_pmids) & set(pmids)]
    texts = [q.question for q in qs]
    result: dict = {"snippets": len(snips), "questions": len(qs)}
    tops = {}
    for backend in BACKENDS:
        store, _ = store_for(backend, threads)
        start = time.perf_counter()
        store.add(np.arange(len(snips), dtype=np.int64), [s["text"] for s in snips])
        store.search(texts[:1], 1)
        built = time.perf_counter() - start
        _, hits = store.search(texts, K)
        runs = [list(dict.fromkeys(pmids[i] for i in row if i >= 0)) for row in hits.tolist()]
        scores = retrieval_scores(runs, [q.gold_pmids for q in qs], ("recall@10", "ndcg@10"), index_ids=set(pmids))
        result[backend] = {"build_s": round(built, 2), "recall@10": round(scores["recall@10"], 4),
                           "ndcg@10": round(scores["ndcg@10"], 4)}
        tops[backend] = hits[:, :10]
        print(f"recall {backend:8s} {len(snips):,} snippets, {len(qs)} questions: recall@10 "
              f"{scores['recall@10']:.4f}  nDCG@10 {scores['ndcg@10']:.4f}", flush=True)
    overlap = [len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (a >= 0).sum(), (b >= 0).sum())
               for a, b in zip(tops["bm25s"], tops["tantivy"])]
    result["top10_overlap"] = round(float(np.mean(overlap)), 4)
    result["recall@10_difference"] = round(abs(result["tantivy"]["recall@10"] - result["bm25s"]["recall@10"]), 4)
    print(f"top-10 snippets shared by the two backends: {result['top10_overlap']:.3f}; recall@10 difference "
          f"{result['recall@10_difference']:.4f}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", choices=("abstracts", "snippets", "mixed"), default="abstracts")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--max-memory-gb", type=float, default=None,
                        help="skip a backend whose build is predicted to peak above this (default: 80%% of the "
                             "memory available now)")
    parser.add_argument("--hybrid", action="store_true", help="also time IVF-SQ8 + tantivy hybrid search")
    parser.add_argument("--batch", type=int, default=50_000, help="texts per add() while building")
    parser.add_argument("--skip-recall", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="where the indexes are built (default: a temp dir "
                                                                "under indexes/)")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "bench_lexical.json")
    parser.add_argument("--build", nargs=2, metavar=("BACKEND", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--probe", nargs=2, metavar=("BACKEND", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--build-vectors", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--probe-hybrid", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    limit_threads(args.threads)
    if args.build:
        print(json.dumps(build(args.build[0], Path(args.build[1]), args.chunks, args.texts, args.batch, args.threads)))
        return
    if args.probe:
        print(json.dumps(probe(args.probe[0], Path(args.probe[1]), args.queries, args.threads)))
        return
    if args.build_vectors:
        print(json.dumps(build_vectors(args.build_vectors, args.chunks, args.texts, args.threads)))
        return
    if args.probe_hybrid:
        print(json.dumps(probe_hybrid(args.probe_hybrid, args.queries, args.chunks, args.texts, args.threads)))
        return
    result: dict = {"cpu": cpu_name(), "threads": args.threads, "k": K,
                    "chunks": args.chunks, "texts": args.texts}
    if not args.skip_recall:
        result["recall"] = recall(args.threads)
    import psutil

    limit = (args.max_memory_gb * 1e9 if args.max_memory_gb is not None
             else 0.8 * psutil.virtual_memory().available)
    common = ["--chunks", str(args.chunks), "--threads", str(args.threads), "--texts", args.texts,
              "--batch", str(args.batch), "--queries", str(args.queries)]
    if not args.skip_scale or args.hybrid:
        if args.work is None:
            (ROOT / "indexes").mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=args.work or ROOT / "indexes") as tmp:
            if not args.skip_scale:
                result["scale"] = scale(Path(tmp), args.backends, args.chunks, limit, common)
            if args.hybrid:
                result["hybrid"] = hybrid(Path(tmp), args.chunks, common)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    rows = {b: r for b, r in result.get("scale", {}).items() if "p50_ms" in r}
    if len(rows) == 2:
        print(f"tantivy/bm25s p50 ratio: {rows['tantivy']['p50_ms'] / rows['bm25s']['p50_ms']:.3f}")
    elif "hybrid" in result:
        print(f"hybrid p50 at {args.chunks:,} chunks: {result['hybrid']['hybrid_excl_embedding_p50_ms']} ms "
              f"(without the question's embedding), {result['hybrid']['hybrid_incl_embedding_p50_ms']} ms with it")
    elif rows:
        backend, row = next(iter(rows.items()))
        print(f"{backend} p50 at {args.chunks:,} chunks: {row['p50_ms']} ms")


def scale(tmp: Path, backends: list[str], chunks: int, limit: float, common: list[str]) -> dict:
    """Step 1 for each backend, each build and probe in a fresh process; a backend whose build would not fit
    in ``limit`` bytes is skipped with a message."""
    rows: dict = {}
    for backend in backends:
        peak = predicted_peak(backend, chunks)
        if peak is not None and peak > limit:
            message = (f"{backend} at {chunks:,} chunks not built: its build is predicted to peak at "
                       f"{peak / 1e9:.1f} GB of memory (BUILD_PEAK, fitted to measured builds), above the "
                       f"{limit / 1e9:.1f} GB allowed (--max-memory-gb)")
            print(message, flush=True)
            rows[backend] = {"skipped": message, "predicted_peak_gb": round(peak / 1e9, 1)}
            continue
        path = tmp / backend
        row = child(["--build", backend, str(path), *common])
        row["disk_gb"] = round(dir_bytes(path) / 1e9, 3)
        row.update(child(["--probe", backend, str(path), *common]))
        if peak is not None:
            row["predicted_peak_gb"] = round(peak / 1e9, 3)
        rows[backend] = row
        print(f"{backend:8s} {chunks:,} chunks: build {row['build_s']} s (peak RSS {row['peak_rss_gb']} GB), disk "
              f"{row['disk_gb']} GB, RSS after open {row['rss_after_open_gb']} GB (anon {row['anon_after_open_gb']}), "
              f"after queries {row['rss_after_queries_gb']} GB (anon {row['anon_after_queries_gb']}); k={K}: "
              f"p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, batch {row['batch_qps']} q/s"
              + (f", {row['segments']} segments" if "segments" in row else ""), flush=True)
        if backend != "tantivy":  # the hybrid step reuses the tantivy index
            shutil.rmtree(path)
    return rows


def hybrid(tmp: Path, chunks: int, common: list[str]) -> dict:
    """Step 3: the tantivy index (step 1's, else built now), IVF-SQ8 beside it, then the hybrid probe."""
    row: dict = {"chunks": chunks}
    if not (tmp / "tantivy").exists():
        built = child(["--build", "tantivy", str(tmp / "tantivy"), *common])
        row["tantivy_build_s"] = built["build_s"]
    row.update(child(["--build-vectors", str(tmp), *common]))
    row.update(child(["--probe-hybrid", str(tmp), *common]))
    print(f"hybrid {chunks:,} chunks: {row['type']} nprobe {row['nprobe']} (build {row['vector_build_s']} s, "
          f"{row['vector_disk_gb']} GB, memory-mapped) + tantivy, k={K} each, RRF; p50/p95 ms: dense "
          f"{row['dense_p50_ms']}/{row['dense_p95_ms']}, lexical {row['lexical_p50_ms']}/{row['lexical_p95_ms']}, "
          f"hybrid without embedding {row['hybrid_excl_embedding_p50_ms']}/{row['hybrid_excl_embedding_p95_ms']}, "
          f"embedding {row['embed_p50_ms']}/{row['embed_p95_ms']}, hybrid with embedding "
          f"{row['hybrid_incl_embedding_p50_ms']}/{row['hybrid_incl_embedding_p95_ms']}; RSS after open "
          f"{row['rss_after_open_gb']} GB (anon {row['anon_after_open_gb']}), after queries "
          f"{row['rss_after_queries_gb']} GB (anon {row['anon_after_queries_gb']}); vectors in RAM instead: anon "
          f"{row['dense_in_ram_anon_gb']} GB, dense p50 {row['dense_in_ram_p50_ms']} ms", flush=True)
    return row


if __name__ == "__main__":
    main()
