"""Ingest throughput against bare embedding of the same chunk texts, measured in one run.

Ingests the BioASQ snippets (21,452 passages from ../shared/data) with the real pipeline — parsing,
chunking, embedding, the sentence vectors pooled from the same forward pass, FAISS, SQLite, BM25, checkpoints —
then embeds the very same chunk texts with the bare embedder on the same path (``embedding.backend`` /
``precision``, length-sorted batches of 64, as the pipeline does). Prints both rates; the last line is the
headline ratio. Target: ingest >= 0.85 x bare embedding.

    .venv/bin/python eval/bench_ingest.py [--limit N] [--index indexes/bench-bioasq]
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from medrag import MedRAG, Settings

SNIPPETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpora" / "pubmed" / "bioasq_snippets.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="only the first N snippets (0: all)")
    parser.add_argument("--index", type=Path, default=Path("indexes/bench-bioasq"))
    args = parser.parse_args()
    source = SNIPPETS
    if args.limit:
        source = args.index.with_suffix(".jsonl")
        source.parent.mkdir(parents=True, exist_ok=True)
        with open(SNIPPETS) as fh:
            source.write_text("".join(line for _, line in zip(range(args.limit), fh)))
    shutil.rmtree(args.index, ignore_errors=True)

    rag = MedRAG(Settings())
    rag.embedder.model  # noqa: B018 - load outside the timed part, as the bare side does
    start = time.perf_counter()
    report = rag.ingest([source], save_to=args.index, progress=False)
    ingest_s = time.perf_counter() - start
    texts = [c.embed_text for c in rag.chunks.get(range(1, rag.chunks.count() + 1)).values()]
    print(f"ingest: {report.documents} passages -> {len(texts)} chunks in {ingest_s:.1f} s "
          f"= {len(texts) / ingest_s:.1f} chunks/s (parse, chunk, embed, sentence vectors, FAISS, SQLite, BM25, checkpoints; {rag.embedder.path})")

    embedder = rag.embedder  # the same embedding path (embedding.backend/precision: auto resolves it here)
    start = time.perf_counter()
    embedder.embed_documents(texts)
    bare_s = time.perf_counter() - start
    print(f"bare embedding: {len(texts)} chunks in {bare_s:.1f} s = {len(texts) / bare_s:.1f} chunks/s")
    print(f"ingest/embed ratio: {bare_s / ingest_s:.2f}")


if __name__ == "__main__":
    main()
