"""Lexical backends side by side: bm25s and tantivy at ``--chunks`` chunks, and their BioASQ recall.

1. Scale: real PubMed texts (``--texts abstracts``: the PubMedQA abstracts and the BC5CDR / NCBI-disease
   training and development titles + abstracts, about a 256-token chunk each; ``snippets``: the 21k BioASQ
   snippets) repeated under distinct ids to ``--chunks``, so a term's posting list is as long as in a corpus
   of that size. Per backend, each step in a fresh process with ``--threads`` threads: build (``add`` in
   ``--batch`` batches, then ``save``) seconds, index bytes on disk; then ``open`` the saved index: resident
   memory after opening it (RSS delta; anonymous memory apart from mapped pages) and after the queries,
   p50/p95 latency of one query at a time for ``--queries`` BioASQ dev questions at k=100 (what hybrid
   fusion asks each retriever for), and the same questions as one batch (queries/s; tantivy searches
   ``--threads`` of them at once, bm25s one after another).
2. Recall: each backend alone over the 21,452 BioASQ snippets (one text each, in one index): recall@10 of
   the gold PMIDs of every BioASQ dev question with a gold PMID among the snippets (ranked PMIDs: the top-100
   snippets' PMIDs, first occurrence kept), and how far the two backends' top-10 snippets agree.

The last line is ``tantivy/bm25s p50 ratio: X`` (one-query latency at ``--chunks``).

    .venv/bin/python eval/bench_lexical.py [--chunks 1000000] [--queries 200] [--threads 2] [--skip-recall]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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

    pool = abstracts() if texts == "abstracts" else [s["text"] for s in snippets()]
    order = np.random.default_rng(0).permutation(len(pool))
    pool = [pool[i] for i in order]
    store, _ = store_for(backend, threads)
    start = time.perf_counter()
    for first in range(0, chunks, batch):
        ids = np.arange(first, min(chunks, first + batch), dtype=np.int64)
        store.add(ids, [pool[i % len(pool)] for i in ids.tolist()])
    store.save(path)
    took = time.perf_counter() - start
    words = sum(len(t.split()) for t in pool) / len(pool)
    return {"build_s": round(took, 1), "distinct_texts": len(pool), "mean_words": round(words, 1),
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
    parser.add_argument("--texts", choices=("abstracts", "snippets"), default="abstracts")
    parser.add_argument("--batch", type=int, default=50_000, help="texts per add() while building")
    parser.add_argument("--skip-recall", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="where the indexes are built (default: a temp dir "
                                                                "under indexes/)")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "bench_lexical.json")
    parser.add_argument("--build", nargs=2, metavar=("BACKEND", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--probe", nargs=2, metavar=("BACKEND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    limit_threads(args.threads)
    if args.build:
        print(json.dumps(build(args.build[0], Path(args.build[1]), args.chunks, args.texts, args.batch, args.threads)))
        return
    if args.probe:
        print(json.dumps(probe(args.probe[0], Path(args.probe[1]), args.queries, args.threads)))
        return
    result: dict = {"cpu": cpu_name(), "threads": args.threads, "k": K,
                    "chunks": args.chunks, "texts": args.texts}
    if not args.skip_recall:
        result["recall"] = recall(args.threads)
    if not args.skip_scale:
        (ROOT / "indexes").mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=args.work or ROOT / "indexes") as tmp:
            rows = {}
            for backend in BACKENDS:
                path = Path(tmp) / backend
                common = ["--chunks", str(args.chunks), "--threads", str(args.threads), "--texts", args.texts,
                          "--batch", str(args.batch), "--queries", str(args.queries)]
                row = child(["--build", backend, str(path), *common])
                row["disk_gb"] = round(dir_bytes(path) / 1e9, 3)
                row.update(child(["--probe", backend, str(path), *common]))
                rows[backend] = row
                print(f"{backend:8s} {args.chunks:,} chunks: build {row['build_s']} s, disk {row['disk_gb']} GB, "
                      f"RSS after open {row['rss_after_open_gb']} GB (anon {row['anon_after_open_gb']}), after "
                      f"queries {row['rss_after_queries_gb']} GB (anon {row['anon_after_queries_gb']}); k={K}: "
                      f"p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, batch {row['batch_qps']} q/s"
                      + (f", {row['segments']} segments" if "segments" in row else ""), flush=True)
            result["scale"] = rows
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if "scale" in result:
        ratio = result["scale"]["tantivy"]["p50_ms"] / result["scale"]["bm25s"]["p50_ms"]
        print(f"tantivy/bm25s p50 ratio: {ratio:.3f}")


if __name__ == "__main__":
    main()
