"""report.md and its PNG plots, written from a run's config, metrics and records."""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medrag.evaluation.datasets import Question

log = logging.getLogger(__name__)

#: accuracy of a constant answer on the dev sets: always "yes" (PubMedQA, BioASQ yes/no) or MIRAGE's
#: majority letter; a system must beat these before its accuracy means anything
FLOORS = {"medqa": (0.295, "majority letter"), "medmcqa": (0.328, "majority letter"),
          "mmlu": (0.332, "majority letter"), "pubmedqa": (0.552, "always yes"), "bioasq": (0.648, "always yes")}
METHODS = {
    "loglik": "the option whose text the language model finds most likely after the prompt (mean log-probability "
              "per token; passages, question and options in the prompt)",
    "generate": "a letter or yes/no/maybe parsed from the generated answer; an answer naming no option counts as "
                "wrong (`n_unparsed`)",
    "similarity": "the extractive generator cannot choose an option, so the option whose text is closest (MiniLM "
                  "cosine) to the extracted sentences is taken; for yes/no/maybe options this compares the "
                  "sentences with the bare words, which is no real verdict: expect the constant-answer floor or less",
}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows), ""]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _accuracy_plot(path: Path, names: list[str], values: list[float], floors: list[float | None]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(names), 3.2))
    ax.bar_label(ax.bar(names, values, color="#4878a8", label="accuracy"), fmt="%.3f", fontsize=8)
    label: str | None = "constant-answer floor"
    for i, floor in enumerate(floors):
        if floor is not None:
            ax.hlines(floor, i - 0.4, i + 0.4, colors="#c44e52", linestyles="--", label=label)
            label = None  # one legend entry
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _curve_plot(path: Path, curve: list[float]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(range(1, len(curve) + 1), curve, color="#4878a8", marker="." if len(curve) < 20 else None)
    ax.set_xscale("log")
    ax.set_xlabel("k (distinct PMIDs, log scale)")
    ax.set_ylabel("mean recall@k")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _bars(path: Path, labels: list[str], values: list[float], ylabel: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(labels), 3.2))
    ax.bar_label(ax.bar(labels, values, color="#55a868"), fmt="%.3f", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, max([*values, 0.05]) * 1.2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(out: Path, config: dict[str, Any], metrics: dict[str, Any],
                 records: Sequence[tuple[Question, dict[str, Any]]], curve: list[float]) -> Path:
    """Write ``out/report.md`` (and ``accuracy.png``, ``rouge.png``, ``recall_curve.png`` where they apply)."""
    kind = config["kind"]
    choice = [(q, r) for q, r in records if q.options and "prediction" in r]
    free = [(q, r) for q, r in records if not q.options and "prediction" in r]
    lines = [f"# medrag eval: {config['dataset']} ({'retrieval' if kind == 'retrieval' else 'question answering'})",
             "", f"- data: `{config['data']}`",
             (f"- index: {config['index_chunks']} chunks of {config['index_documents']} documents, embedder "
              f"`{config['embedder']}`, retriever `{config['retriever']}`")]
    if kind == "qa":
        lines += [f"- generator: `{config['generator']}`, k = {config['k']} passages"
                  + (" (no retrieval: closed book)" if config["no_retrieval"] else "")]
        if choice:
            lines.append(f"- multiple choice answered by **{config['method']}**: {METHODS[config['method']]}")
        if free:
            lines.append("- free text: `rag.ask` per question (its own retrieval), the answer without the "
                         "disclaimer and without `[n]` markers scored against the references")
        model = config.get("model") or {}
        if model.get("toy"):
            lines.append(f"- **the generator is a random-weight test model (hidden size {model['hidden_size']}): "
                         "its choices are noise, so its accuracy is chance; read it against the floors below, "
                         "not as a measure of medrag**")
    else:
        lines.append(f"- top {config['k']} passages per question, reduced to distinct PMIDs in rank order")
    lines += [f"- questions: {metrics['n_questions']}"
              + (f" ({metrics.get('n_skipped')} skipped: no gold)" if metrics.get("n_skipped") else ""),
              f"- git {(config.get('git') or {}).get('commit')}, started {config.get('started')}", ""]

    if choice:
        names = sorted({q.dataset for q, _ in choice})
        rows = []
        for name in names:
            gold = [q.answer for q, _ in choice if q.dataset == name]
            majority = Counter(gold).most_common(1)[0][1] / len(gold)
            floor = FLOORS.get(name)
            rows.append([name, len(gold), metrics.get(f"accuracy.{name}"), metrics.get(f"macro_f1.{name}"),
                         f"{floor[0]:.3f} ({floor[1]})" if floor else None, majority])
        lines += ["## Multiple choice", "",
                  *_table(["set", "n", "accuracy", "macro-F1", "dev floor", "majority on these"], rows),
                  (f"Overall accuracy {_fmt(metrics.get('accuracy'))}; unparsed answers (counted wrong): "
                   f"{metrics.get('n_unparsed', 0)}."), "", "![accuracy](accuracy.png)", ""]
        _accuracy_plot(out / "accuracy.png", names, [metrics.get(f"accuracy.{n}") or 0.0 for n in names],
                       [FLOORS[n][0] if n in FLOORS else None for n in names])

    if free:
        types = sorted({q.type for q, _ in free})
        suffix = [f".{t}" for t in types] if len(types) > 1 else [""]
        rows = [[t if s else f"all ({t})", sum(q.type == t for q, _ in free), metrics.get(f"rougeL{s}"),
                 metrics.get(f"rouge2{s}")] for t, s in zip(types, suffix)]
        if "n_answered" in metrics:
            rows.append(["answered (not abstained)", metrics["n_answered"], metrics.get("rougeL.answered"),
                         metrics.get("rouge2.answered")])
        lines += ["## Free text (ROUGE F1 against the best reference, Porter-stemmed)", "",
                  *_table(["questions", "n", "ROUGE-L", "ROUGE-2"], rows)]
        extra = [(name, metrics[key]) for name, key in (("abstention rate", "abstention_rate"),
                                                        ("citation support", "citation_support"),
                                                        ("factoid answers naming a gold answer", "mention.factoid"),
                                                        ("list items named", "mention.list"),
                                                        ("factoid strict accuracy", "factoid.strict"),
                                                        ("factoid lenient accuracy (top 5)", "factoid.lenient"),
                                                        ("factoid MRR", "factoid.mrr"),
                                                        ("list precision", "list.precision"),
                                                        ("list recall", "list.recall"),
                                                        ("list F1", "list.f1")) if key in metrics]
        lines += [*_table(["measure", "value"], extra)] if extra else []
        if "factoid.strict" in metrics or "list.f1" in metrics:
            lines += [("BioASQ exact answers are phrases extracted from the retrieved passages "
                       "(`medrag.evaluation.exact`: no language model here can name an entity); the `mention` "
                       "rows say whether the answer text names a gold entity."), ""]
        lines += ["![rouge](rouge.png)", ""]
        _bars(out / "rouge.png", [str(row[0]) for row in rows], [row[2] or 0.0 for row in rows], "ROUGE-L F1")

    retrieval = {k: v for k, v in metrics.items() if "@" in k}
    if retrieval:
        lines += ["## Retrieval (PMID level, binary relevance; only gold PMIDs that the index holds count)", "",
                  *_table(["metric", "value"], [["questions scored", metrics.get("n_retrieval_questions",
                                                                                 metrics["n_questions"])],
                                                *retrieval.items()])]
        if config.get("n_without_gold_in_index"):
            lines += [(f"{config['n_without_gold_in_index']} of {config['n_loaded']} questions have no gold PMID "
                       "in the index and are left out."), ""]
        if curve:
            lines += ["![recall@k](recall_curve.png)", ""]
            _curve_plot(out / "recall_curve.png", curve)
    if metrics.get("seconds_per_question") is not None:
        lines += [(f"Time: {metrics['seconds_per_question']:.3f} s per question "
                   f"({1 / max(metrics['seconds_per_question'], 1e-9):.1f} questions/s)."), ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
