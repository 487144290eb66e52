"""The embedding paths' quality guard: each path's top-10 agreement with torch fp32 and its BioASQ dev recall@10.

    .venv/bin/python eval/guard_embed.py --paths openvino:bf16 openvino:int8 [--threads 2]
    ../shared/tools/as-avx2 .venv/bin/python eval/guard_embed.py --paths openvino:fp32 openvino:int8

Corpus: the 21,452 BioASQ snippets (``corpora/pubmed/bioasq_snippets.jsonl``; exact duplicates stored once, as
the index does). Questions: the 1,497 BioASQ dev questions (7B-9B golden files), relevance at PMID level (a
ranking keeps each PMID's first passage), as ``medrag eval retrieval`` scores them. Hybrid: the index's BM25
(bm25s, Lucene) and RRF k=60 over each side's top 100, dense weight 0.5 (the default settings).

A path passes when its snippet-level top-10 agreement with torch fp32 (mean |top10 ∩ top10_fp32| / 10) is at
least 0.98 and its hybrid recall@10 is within 0.005 of torch fp32's. Vectors are kept in ``--vectors`` so each
path is embedded once per CPU class (int8 is calibrated on the first 300 snippets: corpus text).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SNIPPETS = DATA / "corpora" / "pubmed" / "bioasq_snippets.jsonl"
BIOASQ = DATA / "eval" / "bioasq"
AGREEMENT, RECALL_DROP, K, DEPTH = 0.98, 0.005, 10, 100


def corpus() -> tuple[list[str], list[str]]:
    """Unique snippet texts and their PMIDs, in file order."""
    seen: dict[str, str] = {}
    for line in SNIPPETS.open(encoding="utf-8"):  # not splitlines: texts hold U+2028
        record = json.loads(line)
        seen.setdefault(record["text"], record["pmid"])
    return list(seen), list(seen.values())


def questions() -> tuple[list[str], list[set[str]]]:
    from medrag.evaluation.datasets import load_bioasq

    found = load_bioasq(BIOASQ)
    return [q.question for q in found], [set(q.gold_pmids) for q in found]


def embed(path: str, texts: list[str], queries: list[str], threads: int, store: Path) -> tuple[np.ndarray, np.ndarray]:
    """Document and query vectors of ``path`` (``backend:precision``), from ``store`` when made before."""
    from medrag.embedding import Embedder, cpu

    backend, precision = path.split(":")
    tag = f"{backend}-{precision}-{cpu.cpu_class() if precision != 'fp32' or backend == 'openvino' else 'any'}"
    files = store / f"{tag}.docs.npy", store / f"{tag}.queries.npy"
    if all(f.is_file() for f in files):
        return np.load(files[0]), np.load(files[1])
    embedder = Embedder(threads=threads, backend=backend, precision=precision)
    started = time.perf_counter()
    docs = embedder.embed_documents(texts, progress=sys.stderr.isatty())
    print(f"{path}: {len(texts)} snippets in {time.perf_counter() - started:.0f} s ({embedder.describe()})",
          file=sys.stderr)
    queries_v = embedder.embed_queries(queries)
    store.mkdir(parents=True, exist_ok=True)
    np.save(files[0], docs)
    np.save(files[1], queries_v)
    return docs, queries_v


def pmid_run(ids: np.ndarray, pmids: list[str], k: int) -> list[str]:
    run: list[str] = []
    for i in ids:
        if i >= 0 and pmids[i] not in run:
            run.append(pmids[i])
            if len(run) == k:
                break
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", nargs="+", default=["openvino:fp32", "openvino:bf16", "openvino:int8", "onnx:int8"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vectors", type=Path, default=Path("/tmp/medrag-guard"), help="where vectors are kept")
    parser.add_argument("--out", type=Path, help="append the rows as JSON lines here")
    parser.add_argument("--corpus", type=int, default=0, help="reduced guard: this many snippets (the gold ones of "
                                                                "--questions sampled questions, then random others)")
    parser.add_argument("--questions", type=int, default=300, help="with --corpus: questions sampled")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from medrag.embedding import cpu
    from medrag.evaluation.metrics import retrieval_scores
    from medrag.fusion import rrf
    from medrag.lexical.bm25s_store import BM25Store

    texts, pmids = corpus()
    qs, gold = questions()
    if args.corpus:  # a reduced guard: sampled questions, all their gold snippets, random others up to N
        rng = random.Random(0)
        keep_q = sorted(rng.sample(range(len(qs)), min(args.questions, len(qs))))
        qs, gold = [qs[i] for i in keep_q], [gold[i] for i in keep_q]
        wanted = set().union(*gold)
        rows = [i for i, p in enumerate(pmids) if p in wanted]
        others = [i for i in range(len(texts)) if pmids[i] not in wanted]
        rows = sorted(rows + rng.sample(others, max(0, args.corpus - len(rows))))
        texts, pmids = [texts[i] for i in rows], [pmids[i] for i in rows]
        args.vectors = args.vectors / f"corpus{args.corpus}"
    bm25 = BM25Store()
    bm25.add(np.arange(len(texts), dtype=np.int64), texts)
    _, lexical = bm25.search(qs, DEPTH)
    ref_docs, ref_queries = embed("torch:fp32", texts, qs, args.threads, args.vectors)
    ref_top = np.argsort(-(ref_queries @ ref_docs.T), axis=1)[:, :DEPTH]

    def scores(top: np.ndarray) -> dict[str, float]:
        dense = [pmid_run(row, pmids, DEPTH) for row in top]
        hybrid = [pmid_run(np.asarray([i for i, _ in rrf([d.tolist(), [x for x in b.tolist() if x >= 0]], k=60,
                                                             weights=[0.5, 0.5])]), pmids, DEPTH)
                  for d, b in zip(top, lexical)]
        held = set(pmids)
        return {"dense_recall@10": retrieval_scores(dense, gold, ("recall@10",), held)["recall@10"],
                "hybrid_recall@10": retrieval_scores(hybrid, gold, ("recall@10",), held)["recall@10"]}

    reference = scores(ref_top)
    print(f"CPU class {cpu.cpu_class()}; {len(texts)} snippets, {len(qs)} BioASQ dev questions, threads {args.threads}")
    print("| path | top-10 agreement | dense recall@10 | hybrid recall@10 | Δ hybrid | guard |")
    print("|---|---|---|---|---|---|")
    print(f"| torch fp32 | 1.000 | {reference['dense_recall@10']:.4f} | {reference['hybrid_recall@10']:.4f} | – | ref |")
    for path in args.paths:
        docs, queries_v = embed(path, texts, qs, args.threads, args.vectors)
        top = np.argsort(-(queries_v @ docs.T), axis=1)[:, :DEPTH]
        agreement = float(np.mean([len(set(a[:K]) & set(b[:K])) / K for a, b in zip(top, ref_top)]))
        got = scores(top)
        drop = reference["hybrid_recall@10"] - got["hybrid_recall@10"]
        passed = agreement >= AGREEMENT and drop <= RECALL_DROP
        print(f"| {path.replace(':', ' ')} | {agreement:.3f} | {got['dense_recall@10']:.4f} | "
              f"{got['hybrid_recall@10']:.4f} | {-drop:+.4f} | {'pass' if passed else 'FAIL'} |", flush=True)
        if args.out:
            with args.out.open("a") as fh:
                fh.write(json.dumps({"cpu_class": cpu.cpu_class(), "path": path, "agreement": agreement, **got,
                                     "reference": reference, "passed": passed}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
