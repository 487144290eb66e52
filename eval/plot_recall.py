"""One recall@k plot over several ``medrag eval retrieval`` runs (their ``recall_curve.json``).

    .venv/bin/python eval/plot_recall.py --out eval/reports/retrieval_recall.png LABEL=RUN_DIR ...
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="BioASQ 9B: recall@k at PMID level")
    parser.add_argument("runs", nargs="+", help="LABEL=DIR, DIR holding recall_curve.json")
    args = parser.parse_args()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for spec in args.runs:
        label, _, folder = spec.partition("=")
        curve = json.loads((Path(folder) / "recall_curve.json").read_text())
        ax.plot(range(1, len(curve) + 1), curve, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("k (passages, repeated PMIDs dropped)")
    ax.set_ylabel("recall@k")
    ax.set_title(args.title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
