"""The run log of an evaluation: ``predictions.jsonl`` appended one line per question, ``config.json`` with
what the run was made with, and the rule for resuming into an existing output folder."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from medrag.errors import MedRAGError
from medrag.fileio import write_json

if TYPE_CHECKING:
    from medrag.evaluation.datasets import Question
    from medrag.pipeline import MedRAG

log = logging.getLogger(__name__)

PREDICTIONS, METRICS, CONFIG, REPORT = "predictions.jsonl", "metrics.json", "config.json", "report.md"
BATCH = 32  # questions per retrieve_batch call
VERSIONED = ("medrag", "torch", "transformers", "sentence-transformers", "faiss-cpu", "numpy", "rouge-score")
#: keys of config.json that must match for a run to resume into an existing output folder
RESUME_KEYS = ("kind", "dataset", "data", "generator", "method", "k", "no_retrieval", "embedder", "retriever",
               "index_chunks")


class PredictionLog:
    """``predictions.jsonl``: records appended one line at a time; a torn last line is dropped on open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        if path.exists():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):  # killed in the middle of a write: drop the partial line
                keep = data.rfind(b"\n") + 1
                log.warning("%s: dropping a partial last line (%d bytes)", path, len(data) - keep)
                with path.open("r+b") as f:
                    f.truncate(keep)
                data = data[:keep]
            for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
                try:
                    record = json.loads(line)
                    self.records[str(record["id"])] = record
                except (ValueError, KeyError, TypeError):
                    log.warning("%s:%d: unreadable line skipped", path, n)

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.records[str(record["id"])] = record


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def start(out_dir: str | Path, config: dict[str, Any]) -> tuple[Path, PredictionLog]:
    """Create ``out_dir``, refuse to mix runs made with other settings, write config.json, open the log."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    previous = out / CONFIG
    if previous.exists() and (out / PREDICTIONS).exists():
        try:
            old = json.loads(previous.read_text())
        except ValueError:
            old = {}
        changed = [f"{key}: {old.get(key)!r} -> {config.get(key)!r}" for key in RESUME_KEYS
                   if key in old and old.get(key) != config.get(key)]
        if changed:
            raise MedRAGError(f"{out} holds a run made with other settings ({'; '.join(changed)}); "
                              "choose another --out or delete it")
    write_json(previous, config)
    return out, PredictionLog(out / PREDICTIONS)


def rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}


def base_config(rag: MedRAG, kind: str, dataset: str, data_path: str | Path, **fields: Any) -> dict[str, Any]:
    settings = rag.settings.to_dict()
    return {"kind": kind, "dataset": dataset, "data": str(Path(data_path).resolve()), **fields,
            "embedder": rag.settings.embedding.model, "retriever": rag.settings.retrieval.retriever,
            "index_chunks": rag.chunks.count(), "index_documents": rag.chunks.count_documents(),
            "settings": settings, "versions": versions(), "git": git(),
            "started": datetime.now(UTC).isoformat(timespec="seconds")}


def run(questions: Sequence[Question], plog: PredictionLog, answer: Callable[[list[Question]], Iterable[dict]],
         desc: str, progress: bool) -> None:
    """Answer the questions not yet in ``plog`` in batches, appending each record as it comes."""
    todo = [q for q in questions if q.id not in plog.records]
    if len(todo) < len(questions):
        log.info("%s: %d of %d questions already answered; resuming", desc, len(questions) - len(todo),
                 len(questions))
    with tqdm(total=len(questions), initial=len(questions) - len(todo), desc=desc, unit="q",
              disable=not progress) as bar:
        for start in range(0, len(todo), BATCH):
            for record in answer(todo[start:start + BATCH]):
                plog.append(record)
                bar.update()


__all__ = ["BATCH", "CONFIG", "METRICS", "PREDICTIONS", "REPORT", "RESUME_KEYS", "PredictionLog", "base_config",
           "rounded", "run", "start"]
