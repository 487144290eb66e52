"""medrag serve under load: /v1/search and /v1/ask at 1, 4 and 16 concurrent clients on loopback, each figure a
ratio to the in-process call measured in the same run.

The server runs as ``medrag serve`` in its own process (a keys file and an audit log, as deployed; no rate
limit); the clients are one bounded ``httpx.AsyncClient`` (as many connections as clients). In-process:
``MedRAG.retrieve`` / ``MedRAG.ask`` called one after another in this process, same index, same threads.
Questions: PubMedQA dev questions. Targets: /v1/search p50 at one client <= 1.3x in-process retrieve;
/v1/search throughput at 16 clients >= 2x that at one client; zero errors. The last line is the headline.

    .venv/bin/python eval/bench_serve.py [--index indexes/quickstart] [--threads N] [--requests 40]
                                         [--endpoints search,ask]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from medrag import MedRAG
from medrag.server.keys import KeyStore
from medrag.server.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
PUBMEDQA_DEV = ROOT.parent / "shared" / "data" / "eval" / "pubmedqa_dev.json"
CLIENTS = (1, 4, 16)
ROUNDS = 2  # the concurrent levels run in alternating rounds


def questions(n: int) -> list[str]:
    data = json.loads(PUBMEDQA_DEV.read_text())
    return [record["QUESTION"] for record in list(data.values())[:n]]


def summary(seconds: list[float], wall: float) -> dict[str, float]:
    """p50/p95 in milliseconds and requests per second."""
    ms = np.asarray(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "rps": len(seconds) / wall}


def paired(fn: Callable[[str], object], client: httpx.Client, path: str, field: str,
           asked: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """One client: each question in-process, then over HTTP, one after the other, so that both see the same
    moment of a shared machine's load. (in-process, server) latency and throughput."""
    fn(asked[-1])
    client.post(path, json={field: asked[-1]})
    local: list[float] = []
    remote: list[float] = []
    for question in asked:
        began = time.perf_counter()
        fn(question)
        local.append(time.perf_counter() - began)
        began = time.perf_counter()
        response = client.post(path, json={field: question})
        remote.append(time.perf_counter() - began)
        response.raise_for_status()
    return summary(local, sum(local)), summary(remote, sum(remote))


async def load(url: str, key: str, path: str, bodies: list[dict], clients: int) -> tuple[list[float], float, list[str]]:
    """Send ``bodies`` from ``clients`` concurrent clients over one bounded connection pool: (latencies, wall
    seconds, errors)."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    errors: list[str] = []
    took: list[float] = []
    pending = iter(bodies)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        await asyncio.gather(*(client.get("/ready") for _ in range(clients)))  # open the connections

        async def worker() -> None:
            for body in pending:
                began = time.perf_counter()
                response = await client.post(path, json=body)
                took.append(time.perf_counter() - began)
                if response.status_code != 200:
                    errors.append(f"{path} {response.status_code} {response.text[:200]}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - start
    return took, wall, errors


def start_server(index: Path, work: Path, threads: int | None, workers: int,
                 batches: int) -> tuple[subprocess.Popen, str, str]:
    keys = work / "keys.json"
    key = KeyStore(keys).add("bench")
    port = free_port()
    with open(work / "server.err", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "medrag.server.cli", "serve", "--index", str(index), "--port", str(port),
             "--keys", str(keys), "--audit", str(work / "audit.jsonl"), "--workers", str(workers), "--rate-limit", "0",
             "--reload-interval", "0", "--batch-concurrency", str(batches),
             *(["--threads", str(threads)] if threads else [])],
            stdout=subprocess.DEVNULL, stderr=stderr, cwd=work, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{url}/ready", headers={"Authorization": f"Bearer {key}"}).status_code == 200:
                return process, url, key
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not start: {(work / 'server.err').read_text()[-2000:]}")
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "quickstart")
    parser.add_argument("--threads", type=int, default=1, help="torch/FAISS threads, server and in-process alike "
                                                               "(0: the index's setting)")
    parser.add_argument("--workers", type=int, default=4, help="the server's model-work threads")
    parser.add_argument("--requests", type=int, default=40, help="/v1/search requests per client level (10 per "
                                                                 "client at 16); /v1/ask: a fifth of them, at least "
                                                                 "one per client")
    parser.add_argument("--batch-concurrency", type=int, default=1, help="the server's concurrent search batches")
    parser.add_argument("--endpoints", default="search,ask", help="which to load: search, ask or both")
    args = parser.parse_args()
    endpoints = [e for e in ("search", "ask") if e in args.endpoints.split(",")]
    asked = questions(200)
    rag = MedRAG.load(args.index, **({"threads": args.threads} if args.threads else {}))
    n_search, n_ask = args.requests, max(4, args.requests // 5)
    print(f"index {args.index}: {rag.info()['chunks']} chunks; threads {args.threads or 'all'}; "
          f"{os.cpu_count()} CPUs; server workers {args.workers}, batch concurrency {args.batch_concurrency}")
    calls = {"search": (lambda q: rag.retrieve(q), "/v1/search", "query", n_search),
             "ask": (lambda q: rag.ask(q), "/v1/ask", "question", n_ask)}
    rows: dict[tuple[str, int], dict[str, float]] = {}
    base: dict[str, dict[str, float]] = {}
    errors: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        process, url, key = start_server(args.index, Path(tmp), args.threads, args.workers,
                                         args.batch_concurrency)
        try:
            for endpoint in endpoints:
                fn, path, field, n = calls[endpoint]
                with httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {key}"}) as client:
                    base[endpoint], rows[(endpoint, 1)] = paired(fn, client, path, field, asked[:n])
                ref = base[endpoint]
                print(f"in-process {endpoint:6s}    {n:4d} calls p50 {ref['p50']:7.1f} ms  p95 {ref['p95']:7.1f} ms  "
                      f"{ref['rps']:6.1f} req/s")
                # the concurrent levels in alternating rounds, so that a change in the machine's load hits each alike
                took: dict[int, list[float]] = {c: [] for c in CLIENTS[1:]}
                wall = dict.fromkeys(CLIENTS[1:], 0.0)
                for round_ in range(ROUNDS):
                    for clients in CLIENTS[1:]:
                        count = max(n // ROUNDS, clients) if endpoint == "ask" else max(n // ROUNDS, 4 * clients)
                        bodies = [{field: asked[(round_ * 50 + i) % len(asked)]} for i in range(count)]
                        latencies, seconds, failed = asyncio.run(load(url, key, path, bodies, clients))
                        took[clients] += latencies
                        wall[clients] += seconds
                        errors += failed
                for clients in CLIENTS[1:]:
                    rows[(endpoint, clients)] = summary(took[clients], wall[clients])
                for clients in CLIENTS:
                    figures = rows[(endpoint, clients)]
                    count = len(took[clients]) if clients > 1 else n
                    print(f"{path:11s} {clients:2d} clients  {count:4d} req  p50 {figures['p50']:7.1f} ms "
                          f"({figures['p50'] / ref['p50']:.2f}x in-process)  p95 {figures['p95']:7.1f} ms "
                          f"({figures['p95'] / ref['p95']:.2f}x)  {figures['rps']:6.1f} req/s "
                          f"({figures['rps'] / ref['rps']:.2f}x)", flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)
    for line in errors[:5]:
        print("error:", line)
    if "search" not in endpoints:
        return 1 if errors else 0
    p50_ratio = rows[("search", 1)]["p50"] / base["search"]["p50"]
    scaling = rows[("search", 16)]["rps"] / rows[("search", 1)]["rps"]
    ok = p50_ratio <= 1.3 and scaling >= 2.0 and not errors
    print(f"/v1/search p50 at 1 client = {p50_ratio:.2f}x in-process retrieve (target <= 1.3x); throughput at "
          f"16 clients = {scaling:.2f}x 1 client (target >= 2x); {len(errors)} errors: "
          f"{'targets met' if ok else 'TARGETS MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
