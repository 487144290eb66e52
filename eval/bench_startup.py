"""Cold ``medrag ask`` wall time: this checkout against an earlier commit's code path, in one run.

Each sample is a fresh process (``python -m medrag.cli ask QUESTION --index DIR``), alternating between the
earlier code (a ``git worktree`` of ``--before``, default the commit before issue 15's work, on ``--before-index``,
an index as that code builds it) and this checkout (on ``--index``, as it builds it). Then one cold process of
this checkout is broken into phases (imports, index load, model load, first answer). The last line is the
headline ratio of the medians (target: <= 0.5).

    .venv/bin/python eval/bench_startup.py --before-index indexes/quickstart-before [--index indexes/quickstart]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "What are the symptoms of high blood pressure?"
BEFORE = "fb55374"  # the last commit before the sentence vectors and the embedding paths

PHASES = """
import sys, time
t0 = time.perf_counter()
from medrag import MedRAG
t1 = time.perf_counter()
rag = MedRAG.load(sys.argv[1])
t2 = time.perf_counter()
rag.embedder.model
t3 = time.perf_counter()
rag.ask(sys.argv[2])
t4 = time.perf_counter()
heavy = [m for m in ("torch", "sentence_transformers", "transformers", "openvino") if m in sys.modules]
print(f"import medrag {t1 - t0:.2f} s, load index {t2 - t1:.2f} s, load embedder {t3 - t2:.2f} s, "
      f"first ask {t4 - t3:.2f} s; heavy modules imported: {', '.join(heavy) or 'none'}")
"""


def cold(code: Path, index: Path) -> float:
    """Seconds of one fresh ``medrag ask`` process run from ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "medrag.cli", "ask", QUESTION, "--index", str(index)], cwd=code,
                          env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"medrag ask failed in {code}: {done.stderr.strip().splitlines()[-1:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "quickstart")
    parser.add_argument("--before-index", type=Path, required=True, help="the index as the earlier code built it")
    parser.add_argument("--before", default=BEFORE, help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.before], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            cold(old, args.before_index.resolve()), cold(ROOT, args.index.resolve())  # warm the page cache
            before, now = [], []
            for _ in range(args.rounds):
                before.append(cold(old, args.before_index.resolve()))
                now.append(cold(ROOT, args.index.resolve()))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, check=False,
                           capture_output=True)
    print(f"cold medrag ask, {args.before} on {args.before_index}: " + ", ".join(f"{s:.2f}" for s in before) + " s")
    print(f"cold medrag ask, this checkout on {args.index}: " + ", ".join(f"{s:.2f}" for s in now) + " s")
    phases = subprocess.run([sys.executable, "-c", PHASES, str(args.index.resolve()), QUESTION], cwd=ROOT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, check=True)
    print("this checkout, one cold process:", phases.stdout.strip())
    print(f"cold ask now/before median ratio: {statistics.median(now) / statistics.median(before):.2f}")


if __name__ == "__main__":
    main()
