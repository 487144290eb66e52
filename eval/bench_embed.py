"""Every embedding path (backend x precision) against torch fp32 on this CPU: throughput, cosine, top-10 agreement.

    .venv/bin/python eval/bench_embed.py [--threads 2] [--out eval/reports/bench_embed.json]
    ../shared/tools/as-avx2 .venv/bin/python eval/bench_embed.py      # the AVX2 class, simulated

Texts: 3,000 BioASQ snippets (a fixed sample of ``corpora/pubmed/bioasq_snippets.jsonl``) and 1,000 chunks of
200 tokens cut from the PubMedQA abstracts. Each path embeds each set in length-sorted batches of 64, best of
``--repeats`` passes, the paths interleaved within a pass (so load from other processes hits all alike); the
ratio is to torch fp32 in the same run. Cosine: each text's vector against torch fp32's. Top-10 agreement: 500
BioASQ dev questions searched over the snippets, mean |top10 ∩ top10_fp32| / 10. int8 OpenVINO is calibrated on
the first 300 snippets (corpus text). A bf16 path on a CPU without bf16 instructions runs as the library runs
it there: torch bf16 is forced to autocast (to show its cost; medrag itself falls back to fp32), OpenVINO
compiles in f32 (it refuses bf16). The last line is ``auto embedding speed-up: X``, the ratio of the path
``auto`` picks on this CPU (``medrag.embedding.cpu``).
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
ABSTRACTS = DATA / "corpora" / "pubmed" / "pubmedqa_abstracts.json"
BIOASQ = DATA / "eval" / "bioasq"
PATHS = ["torch:fp32", "torch:bf16", "openvino:fp32", "openvino:bf16", "openvino:int8", "onnx:fp32", "onnx:int8"]


def snippets(n: int) -> list[str]:
    texts = list(dict.fromkeys(json.loads(line)["text"] for line in SNIPPETS.open(encoding="utf-8")))
    return random.Random(0).sample(texts, n)


def chunks(tokenizer: object, n: int, size: int = 200) -> list[str]:
    """``n`` windows of ``size`` tokens over the PubMedQA abstracts, one after another."""
    stream: list[int] = []
    for record in json.loads(ABSTRACTS.read_text()).values():
        text = " ".join([*record["CONTEXTS"], record.get("LONG_ANSWER", "")])
        stream += tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]  # type: ignore[operator]
        if len(stream) >= n * size:
            break
    return [tokenizer.decode(stream[i * size:(i + 1) * size]) for i in range(n)]  # type: ignore[attr-defined]


def questions(n: int) -> list[str]:
    from medrag.evaluation.datasets import load_bioasq

    found = [q.question for q in load_bioasq(BIOASQ)]
    return random.Random(0).sample(found, min(n, len(found)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", nargs="+", default=PATHS)
    parser.add_argument("--snippets", type=int, default=3000)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import tempfile

    os.environ.setdefault("MEDRAG_CACHE", tempfile.mkdtemp(prefix="medrag-bench-"))  # conversions timed apart
    from medrag.embedding import Embedder, cpu

    cls = cpu.cpu_class()
    reference = Embedder(threads=args.threads)
    sets = {"snippets": snippets(args.snippets), "chunks": chunks(reference.tokenizer, args.chunks)}
    qs = questions(args.questions)
    paths = list(dict.fromkeys(["torch:fp32", *args.paths]))
    embedders: dict[str, Embedder] = {}
    for path in paths:
        backend, precision = path.split(":")
        started = time.perf_counter()
        e = reference if path == "torch:fp32" else Embedder(threads=args.threads, backend=backend, precision=precision)
        if backend == "openvino" and precision == "int8":
            e.model.encode(sets["snippets"][:300], 64)  # calibrated on corpus text
        if backend == "torch" and precision == "bf16" and not e.model.autocast:
            e.model.autocast = True  # measure what bf16 costs here (medrag runs fp32 on such a CPU)
        e.embed_documents(sets["snippets"][:64])  # warm-up
        print(f"{path}: ready in {time.perf_counter() - started:.1f} s ({e.describe()})", file=sys.stderr, flush=True)
        embedders[path] = e
    seconds = {p: {s: float("inf") for s in sets} for p in paths}
    vectors: dict[str, dict[str, np.ndarray]] = {p: {} for p in paths}
    for repeat in range(args.repeats):
        for path in paths:
            for name, texts in sets.items():
                started = time.perf_counter()
                vectors[path][name] = embedders[path].embed_documents(texts)
                seconds[path][name] = min(seconds[path][name], time.perf_counter() - started)
            print(f"pass {repeat + 1}: {path} {sum(len(t) for t in sets.values()) / sum(seconds[path].values()):.0f} "
                  "texts/s (best so far)", file=sys.stderr, flush=True)
    ref_q = reference.embed_queries(qs)
    ref_top = np.argsort(-(ref_q @ vectors["torch:fp32"]["snippets"].T), axis=1)[:, :10]
    total = sum(len(t) for t in sets.values())
    rows = []
    for path in paths:
        rate = {n: len(t) / seconds[path][n] for n, t in sets.items()}
        base = {n: len(t) / seconds["torch:fp32"][n] for n, t in sets.items()}
        cos = np.concatenate([(vectors[path][n] * vectors["torch:fp32"][n]).sum(axis=1) for n in sets])
        top = np.argsort(-(embedders[path].embed_queries(qs) @ vectors[path]["snippets"].T), axis=1)[:, :10]
        agreement = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, ref_top)]))
        rows.append({"path": path.replace(":", " "), "runs_as": embedders[path].describe(),
                     **{f"{n}_per_s": round(rate[n], 1) for n in sets},
                     **{f"{n}_ratio": round(rate[n] / base[n], 2) for n in sets},
                     "ratio": round((total / sum(seconds[path].values())) / (total / sum(seconds["torch:fp32"].values())), 2),
                     "cos_mean": round(float(cos.mean()), 6), "cos_min": round(float(cos.min()), 6),
                     "top10_agreement": round(agreement, 3)})
    auto = " ".join(cpu.resolve("auto", "auto", device="cpu"))
    print(f"CPU class {cls} (caps: {', '.join(f'{k}={os.environ[k]}' for k in cpu.CAPS if k in os.environ) or 'none'}); "
          f"{args.snippets} snippets, {args.chunks} chunks of 200 tokens, threads {args.threads}, best of {args.repeats}")
    print("| path | runs as | snippets/s | × | chunks/s | × | overall × | cos mean | cos min | top-10 agreement |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['path']} | {r['runs_as']} | {r['snippets_per_s']:.0f} | {r['snippets_ratio']:.2f} | "
              f"{r['chunks_per_s']:.1f} | {r['chunks_ratio']:.2f} | **{r['ratio']:.2f}** | {r['cos_mean']:.6f} | "
              f"{r['cos_min']:.6f} | {r['top10_agreement']:.3f} |")
    chosen = next((r for r in rows if r["path"] == auto), None)
    if args.out:
        args.out.write_text(json.dumps({"cpu_class": cls, "auto": auto, "rows": rows}, indent=2) + "\n")
    print(f"auto = {auto}")
    print(f"auto embedding speed-up: {chosen['ratio'] if chosen else 'n/a (auto path not benchmarked)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
