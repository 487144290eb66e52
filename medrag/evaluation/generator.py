"""``medrag eval generator``: how well an answer writer writes medrag's cited answers, beside its base model.

On held-out examples (``medrag.training.generator``: the question's retrieved passages, packed as at answer
time, and a gold cited answer) each model is scored on:

- ``perplexity`` of the gold cited answers given their prompts (``perplexity_<source>`` per source);
- ``valid_citation_share``: generated answers whose every ``[n]`` names a passage in the prompt;
- ``citation_precision`` / ``citation_recall`` from the support checker, as ``eval/calibrate_support.py``
  measures them: precision = share of citing sentences whose cited passages support them, recall = share of
  the sentences some passage supports that cite one;
- ``abstention_rate`` on the examples whose passages belong to another question (and
  ``false_abstention_rate`` on the others);
- ``rouge2_summary`` (BioASQ summary questions) and ``rouge2`` (every answerable example with a reference).

The base model's figures carry a ``base_`` prefix. Answers are generated exactly as ``medrag ask`` generates
them (``HFGenerator.generate``, greedy). Predictions are written as they come, so a re-run into the same
``--out`` resumes; with ``predict_only`` the checker and ROUGE are left for a later run.
"""
from __future__ import annotations

import json
import logging
import math
import platform
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medrag.errors import MedRAGError
from medrag.evaluation.metrics import mean, rouge
from medrag.training.generator import Example, ExampleSet, featurize, load_generator

log = logging.getLogger(__name__)

ABSTAIN_WORDS = 8  # an answer abstains when it holds the abstention sentence's first words
_WORD = re.compile(r"[a-z0-9]+")


def _normal(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def abstains(text: str, sentence: str) -> bool:
    """Whether ``text`` declines the way medrag's abstention ``sentence`` does (its first words, any case)."""
    head = " ".join(_normal(sentence).split()[:ABSTAIN_WORDS])
    return bool(head) and head in _normal(text)


def gold_nll(gen: Any, example: Example, device: str) -> tuple[float | None, int]:
    """Summed negative log-likelihood of the example's gold cited answer (EOS included) after its prompt."""
    import torch

    features = featurize(gen, example)
    if features is None:
        return None, 0
    ids = torch.tensor([features.input_ids], device=device)
    labels = torch.tensor([features.labels], device=device)
    with torch.inference_mode():
        logits = gen.model(input_ids=ids).logits[:, :-1].float()
    target = labels[:, 1:]
    mask = target != -100
    logp = logits.log_softmax(-1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return float(-(logp * mask).sum()), int(mask.sum())


def predict(spec: str, examples: Sequence[Example], path: Path, *, max_new_tokens: int, device: str = "",
            threads: int = 0, progress: bool = True) -> list[dict[str, Any]]:
    """Gold-answer likelihood and a generated answer per example, appended to ``path`` (JSON lines) as they come;
    examples already in ``path`` are not run again."""
    import torch

    from medrag.embedding import torch_device

    done = _read_predictions(path, spec)
    todo = [e for e in examples if e.id not in done]
    if todo:
        gen = load_generator(spec, max_new_tokens, threads)
        device = torch_device(device)
        gen.model.to(device)
        likelihood = {e.id: gold_nll(gen, e, device) for e in todo}  # on the GPU when there is one
        started = time.perf_counter()
        with path.open("a", encoding="utf-8") as fh:
            for n, example in enumerate(todo, 1):
                t0 = time.perf_counter()
                try:  # answers are generated as medrag ask generates them
                    result = gen.generate(example.question, example.chunks())
                except RuntimeError as exc:
                    if device == "cpu" or "device" not in str(exc):
                        raise
                    log.warning("this HFGenerator builds its inputs on the CPU: answers are generated there")
                    device = "cpu"
                    gen.model.to(device)
                    result = gen.generate(example.question, example.chunks())
                nll, tokens = likelihood[example.id]
                record = {"id": example.id, "source": example.source, "generator": spec, "text": result.text,
                          "cited": result.cited, "invalid": result.invalid_citations, "in_prompt": result.in_prompt,
                          "nll": nll, "tokens": tokens, "seconds": round(time.perf_counter() - t0, 3)}
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                fh.flush()
                done[example.id] = record
                if progress and (n % 25 == 0 or n == len(todo)):
                    log.info("%s: %d of %d answers (%.2f s each)", spec, n, len(todo),
                             (time.perf_counter() - started) / n)
        del gen
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return [done[e.id] for e in examples]


def _read_predictions(path: Path, spec: str) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    done: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("generator") != spec:
                raise MedRAGError(f"{path} holds answers of {record.get('generator')!r}, not {spec!r}: "
                                  "give another --out")
            done[record["id"]] = record
    return done


def score(examples: Sequence[Example], predictions: Sequence[dict[str, Any]], checker: Any = None,
          prefix: str = "") -> dict[str, Any]:
    """Flat metrics of one model's predictions (``checker``: a SupportChecker; None leaves its figures out)."""
    from medrag.generation.citations import clean_citations, split_answer

    pairs = list(zip(examples, predictions, strict=True))
    abstain_sentence = next((e.sentences[0].text for e in examples if e.source == "abstain"), "")
    declined = {e.id: bool(abstain_sentence) and abstains(p["text"], abstain_sentence) for e, p in pairs}
    answerable = [(e, p) for e, p in pairs if e.source != "abstain"]
    metrics: dict[str, Any] = {"examples": len(pairs), "answerable": len(answerable),
                               "mismatched": len(pairs) - len(answerable)}
    metrics["perplexity"] = _perplexity([p for _, p in pairs])
    for source in sorted({e.source for e, _ in pairs}):
        metrics[f"perplexity_{source}"] = _perplexity([p for e, p in pairs if e.source == source])
    metrics["valid_citation_share"] = mean([float(p["invalid"] == 0) for _, p in pairs])
    answered = [(e, p) for e, p in answerable if not declined[e.id] and p["text"].strip()]
    metrics["cited_share"] = mean([float(bool(p["cited"])) for _, p in answerable])
    metrics["abstention_rate"] = mean([float(declined[e.id]) for e, _ in pairs if e.source == "abstain"])
    metrics["false_abstention_rate"] = mean([float(declined[e.id]) for e, _ in answerable])
    metrics["seconds_per_answer"] = mean([p.get("seconds", 0.0) for _, p in pairs])
    if checker is not None:
        checked, raw_cited = [], []
        for example, prediction in answered:
            sentences = split_answer(prediction["text"])
            checked += checker.check(sentences, [p["text"] for p in example.passages])
            raw_cited += [bool(cited) for _, cited in sentences]
        citing = [s for s, c in zip(checked, raw_cited) if c]
        supported = [c for s, c in zip(checked, raw_cited) if s.supported]
        metrics["answer_sentences"] = len(checked)
        metrics["citation_precision"] = mean([float(s.supported) for s in citing])
        metrics["citation_recall"] = mean([float(c) for c in supported])
        metrics["supported_share"] = mean([float(s.supported) for s in checked])

        def plain(prediction: dict[str, Any]) -> str:  # ROUGE on the words alone
            return clean_citations(prediction["text"], set())[0]

        summary = [(e, p) for e, p in answerable if e.source == "bioasq" and e.qtype == "summary" and e.ideal]
        metrics["rouge2_summary"] = (rouge([plain(p) for _, p in summary], [e.ideal for e, _ in summary])["rouge2"]
                                     if summary else None)
        referenced = [(e, p) for e, p in answerable if e.ideal]
        metrics["rouge2"] = (rouge([plain(p) for _, p in referenced], [e.ideal for e, _ in referenced])["rouge2"]
                             if referenced else None)
    return {f"{prefix}{k}": (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}


def _perplexity(predictions: Sequence[dict[str, Any]]) -> float | None:
    scored = [p for p in predictions if p.get("nll") is not None and p.get("tokens")]
    tokens = sum(p["tokens"] for p in scored)
    if not tokens:
        return None
    mean_nll = sum(p["nll"] for p in scored) / tokens
    return math.exp(mean_nll) if mean_nll < 700 else math.inf


def evaluate_generator(generator: str, examples: ExampleSet, out: str | Path, *, base: str | None = None,
                       checker: Any = None, limit: int | None = None, device: str = "", threads: int = 0,
                       predict_only: bool = False, progress: bool = True,
                       extra_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score ``generator`` (and ``base``, as ``base_*``) on ``examples.heldout``; writes ``metrics.json``,
    ``config.json``, ``predictions.jsonl`` / ``base_predictions.jsonl`` and ``report.md`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = examples.heldout[:limit] if limit else examples.heldout
    if not chosen:
        raise MedRAGError("no held-out example: give more --data, or a larger --heldout-share")
    metrics: dict[str, Any] = {}
    for prefix, spec in (("", generator), ("base_", base)):
        if not spec:
            continue
        predictions = predict(spec, chosen, out / f"{prefix}predictions.jsonl", max_new_tokens=examples.max_new_tokens,
                              device=device, threads=threads, progress=progress)
        metrics.update(score(chosen, predictions, None if predict_only else checker, prefix))
    config = {"generator": generator, "base": base, "examples": len(chosen), "files": examples.files,
              "index": examples.index, "k": examples.k, "max_new_tokens": examples.max_new_tokens,
              "heldout_share": examples.heldout_share, "seed": examples.seed, "predict_only": predict_only,
              "python": platform.python_version(), **_versions(), **(extra_config or {})}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "report.md").write_text(report(metrics, generator, base))
    return metrics


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def report(metrics: dict[str, Any], generator: str, base: str | None) -> str:
    """A Markdown table of the trained model's figures beside the base model's."""
    names = [k for k in metrics if not k.startswith("base_")]
    lines = ["# Generator evaluation", "", f"| metric | {generator} | {base or '-'} (base) |", "|---|---|---|"]
    for name in names:
        lines.append(f"| {name} | {_cell(metrics.get(name))} | {_cell(metrics.get('base_' + name))} |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


__all__ = ["abstains", "evaluate_generator", "gold_nll", "predict", "report", "score"]
