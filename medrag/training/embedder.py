"""Domain adaptation: fine-tune the embedder, or train a cross-encoder reranker, on question–passage pairs.

Pairs come from training data only: BioASQ golden files (each question with each of its gold snippets)
and PubMedQA-format files (each question with its own abstract). Files named like a test split are refused.
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medrag.embedding import DEFAULT_MODEL, resolve_model_path, torch_device
from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

PROVENANCE = "medrag-training.json"  # written into every trained model directory


@dataclass(frozen=True)
class Pair:
    """A question and a passage that answers it."""

    question: str
    passage: str
    source: str  # the file it came from


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (chosen on BioASQ 9B; see eval/reports/retrieval.md)."""

    base: str = DEFAULT_MODEL
    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    max_pairs: int = 0  # 0: all
    max_seq_length: int = 128  # tokens per text while training (BioASQ snippets fit; cost grows with it)
    negatives: int = 1  # reranker: BM25-mined negatives per positive pair
    hard_negatives: int = 0  # embedder: BM25-mined negatives per pair, beside MNRL's in-batch ones
    loss: str = "mnrl"  # embedder: mnrl | gist (in-batch negatives the base model ranks above the gold are skipped)
    device: str = ""  # "" = a GPU when torch sees one, else the CPU
    seed: int = 13
    threads: int = 0


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise MedRAGError(f"cannot read training data {path}: {exc}") from exc


def _files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.json") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise MedRAGError(f"no such training data file or folder: {path}")
    for file in files:
        if "test" in file.name.lower():
            raise MedRAGError(f"{file} looks like a test split: medrag never trains on test data")
    if not files:
        raise MedRAGError("no training data: give BioASQ golden files or PubMedQA-format files")
    return files


def training_pairs(paths: Iterable[str | Path]) -> list[Pair]:
    """Question–passage pairs from BioASQ golden files and PubMedQA-format files, without repeats."""
    pairs: dict[tuple[str, str], Pair] = {}
    from medrag.evaluation.datasets import load_bioasq, load_pubmedqa

    for file in _files(paths):
        data = _json(file)
        found = 0
        if isinstance(data, dict) and isinstance(data.get("questions"), list):  # BioASQ: each gold snippet
            items = [(q.question, s["text"]) for q in load_bioasq(file) for s in q.snippets]
        elif isinstance(data, dict) and all(isinstance(v, dict) and "QUESTION" in v for v in data.values()):
            items = [(q.question, " ".join(q.extra["contexts"]))  # PubMedQA: the question's own abstract
                     for q in load_pubmedqa(file, answered=False)]
        else:
            raise MedRAGError(f"{file}: neither a BioASQ golden file nor a PubMedQA-format file")
        for question, passage in items:
            if question and passage:
                pairs.setdefault((question, passage), Pair(question, passage, file.name))
                found += 1
        log.info("%s: %d question-passage pairs", file, found)
    if not pairs:
        raise MedRAGError("the training data holds no question with a passage")
    return list(pairs.values())


def _sample(pairs: Sequence[Pair], config: TrainConfig) -> list[Pair]:
    chosen = list(pairs)
    random.Random(config.seed).shuffle(chosen)
    return chosen[: config.max_pairs] if config.max_pairs else chosen


def _threads(config: TrainConfig) -> None:
    import torch

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads or os.cpu_count() or 1)


def _finish(model: Any, out: Path, kind: str, pairs: Sequence[Pair], config: TrainConfig, seconds: float) -> None:
    """Save ``model`` to ``out`` atomically (beside, then rename) with where it came from."""
    out = Path(out)
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save(str(staging))
    sources: dict[str, int] = {}
    for pair in pairs:
        sources[pair.source] = sources.get(pair.source, 0) + 1
    (staging / PROVENANCE).write_text(json.dumps(
        {"kind": kind, "config": asdict(config), "pairs": len(pairs), "sources": sources,
         "seconds": round(seconds, 1)}, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    shutil.rmtree(out.with_name(f".{out.name}.checkpoints"), ignore_errors=True)
    log.info("%s saved to %s", kind, out)


def _arguments(config: TrainConfig, out: Path, cls: type, **extra: Any) -> Any:
    return cls(output_dir=str(out.with_name(f".{out.name}.checkpoints")), num_train_epochs=config.epochs,
               per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
               warmup_steps=config.warmup_ratio, seed=config.seed, save_strategy="no", report_to=[],
               logging_steps=50, disable_tqdm=False, use_cpu=torch_device(config.device) == "cpu", **extra)


def train_embedder(pairs: Sequence[Pair], out: str | Path, config: TrainConfig | None = None) -> Path:
    """Fine-tune a sentence-transformers model with MultipleNegativesRankingLoss (in-batch negatives).

    Batches never hold the same question or passage twice, so no gold passage is a false negative.
    Returns ``out``, a model directory usable as ``--embedder DIR``.
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers, SentenceTransformerTrainingArguments)

    config = config or TrainConfig()
    if config.loss not in LOSSES:
        raise MedRAGError(f"unknown training loss {config.loss!r}; choose from {', '.join(LOSSES)}")
    if config.loss == "gist" and config.hard_negatives > 1:
        raise MedRAGError("the gist loss takes at most one hard negative per pair")
    out = Path(out)
    _threads(config)
    chosen = _sample(pairs, config)
    model = SentenceTransformer(resolve_model_path(config.base), device=torch_device(config.device))
    saved_length = model.max_seq_length
    model.max_seq_length = min(config.max_seq_length, saved_length)
    columns = {"anchor": [p.question for p in chosen], "positive": [p.passage for p in chosen]}
    if config.hard_negatives:  # (anchor, positive, negative_1..n) rows: MNRL scores them beside the batch's
        pools = negative_pools(chosen)
        rng = random.Random(config.seed)
        rows = [_pick(pools[p.question], config.hard_negatives, rng) for p in chosen]
        for n in range(config.hard_negatives):
            columns[f"negative_{n + 1}"] = [row[n] for row in rows]
    data = Dataset.from_dict(columns)
    args = _arguments(config, out, SentenceTransformerTrainingArguments, batch_sampler=BatchSamplers.NO_DUPLICATES)
    start = time.perf_counter()
    SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=_loss(model, config)).train()
    model.max_seq_length = saved_length  # the index chunks to the model's own limit
    _finish(model, out, "embedder", chosen, config, time.perf_counter() - start)
    return out


LOSSES = ("mnrl", "gist")


def _loss(model: Any, config: TrainConfig) -> Any:
    """The contrastive loss ``config.loss`` names, over ``model``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss

    if config.loss == "mnrl":
        return MultipleNegativesRankingLoss(model)
    if config.loss == "gist":  # the untrained base model guides: it masks likely false negatives
        guide = SentenceTransformer(resolve_model_path(config.base), device=torch_device(config.device))
        guide.max_seq_length = model.max_seq_length
        return GISTEmbedLoss(model, guide)
    raise AssertionError(config.loss)  # train_embedder checked it


def negative_pools(pairs: Sequence[Pair], size: int = 10) -> dict[str, list[str]]:
    """For each question, the ``size`` passages of ``pairs`` that BM25 ranks highest for it but that are not
    gold for it: hard negatives."""
    from medrag.lexical import BM25Store

    import numpy as np

    passages = sorted({p.passage for p in pairs})
    gold: dict[str, set[int]] = {}
    index = {text: i for i, text in enumerate(passages)}
    for p in pairs:
        gold.setdefault(p.question, set()).add(index[p.passage])
    store = BM25Store()
    store.add(np.arange(len(passages), dtype=np.int64), passages)
    questions = list(gold)
    _, ranked = store.search(questions, min(len(passages), 3 * size))
    pools = {question: [passages[i] for i in row if i >= 0 and int(i) not in gold[question]][:size]
             for question, row in zip(questions, ranked)}
    rng = random.Random(len(passages))
    for question, pool in pools.items():  # BM25 found nothing usable (all gold): any other passages will do
        if not pool and len(passages) > len(gold[question]):
            pool += [passages[i] for i in rng.sample(range(len(passages)), min(len(passages), 3 * size))
                     if i not in gold[question]][:size]
    return pools


def _pick(pool: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """``n`` distinct passages of ``pool`` (repeating when it holds fewer)."""
    if not pool:
        raise MedRAGError("too few passages to mine hard negatives from: give more training data")
    chosen = rng.sample(list(pool), min(n, len(pool)))
    return (chosen * n)[:n]


def mine_negatives(pairs: Sequence[Pair], per_pair: int, seed: int = 13) -> list[tuple[str, str]]:
    """For each pair, ``per_pair`` of its question's hard negatives (see ``negative_pools``)."""
    pools = negative_pools(pairs)
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for p in pairs:
        pool = pools[p.question]
        out += [(p.question, text) for text in rng.sample(pool, min(per_pair, len(pool)))]
    return out


def train_reranker(pairs: Sequence[Pair], out: str | Path, config: TrainConfig | None = None) -> Path:
    """Train a cross-encoder (initialised from ``config.base``) to score question–passage relevance.

    Positives are the gold pairs; negatives are BM25-mined passages of other questions (binary cross-entropy).
    Returns ``out``, usable as ``--set reranker=DIR``.
    """
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    config = config or TrainConfig()
    out = Path(out)
    _threads(config)
    chosen = _sample(pairs, config)
    negatives = mine_negatives(chosen, config.negatives, config.seed)
    rows = [(p.question, p.passage, 1.0) for p in chosen] + [(q, t, 0.0) for q, t in negatives]
    random.Random(config.seed).shuffle(rows)
    model = CrossEncoder(resolve_model_path(config.base), num_labels=1, device=torch_device(config.device),
                         max_length=2 * config.max_seq_length)
    data = Dataset.from_dict({"query": [r[0] for r in rows], "passage": [r[1] for r in rows],
                              "label": [r[2] for r in rows]})
    args = _arguments(config, out, CrossEncoderTrainingArguments)
    start = time.perf_counter()
    CrossEncoderTrainer(model=model, args=args, train_dataset=data, loss=BinaryCrossEntropyLoss(model)).train()
    _finish(model, out, "reranker", chosen, config, time.perf_counter() - start)
    return out
