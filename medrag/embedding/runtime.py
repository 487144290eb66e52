"""What the converted paths (OpenVINO, ONNX Runtime) share: the on-disk cache of converted models, the exported
forward pass (the sentence-transformers model's own modules, pooling included), tokenizing and length-sorted
batches, so their vectors are the torch path's up to arithmetic precision."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medrag.errors import MedRAGError
from medrag.fileio import fsync, write_json

log = logging.getLogger(__name__)

#: bump when the converted form changes: older cache entries are then ignored
CACHE_FORMAT = 2
META = "medrag.json"


def cache_root() -> Path:
    """``$MEDRAG_CACHE/embedders`` or ``~/.cache/medrag/embedders`` (``$XDG_CACHE_HOME`` honoured)."""
    base = os.environ.get("MEDRAG_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medrag"
    return Path(base).expanduser() / "embedders"


def model_fingerprint(path: str) -> str:
    """A hash of a model directory's files (name, size, modification time), or of a hub name."""
    digest = hashlib.sha256(path.encode())
    root = Path(path)
    if root.is_dir():
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"{file.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def cache_dir(kind: str, precision: str, model_path: str, version: str) -> Path:
    """Where the ``kind`` (``openvino``, ``onnx``) conversion of a model at ``precision`` is kept."""
    key = hashlib.sha256(f"{CACHE_FORMAT}|{kind}|{version}|{precision}|{model_fingerprint(model_path)}".encode())
    name = Path(model_path.rstrip("/")).name or "model"
    return cache_root() / f"{kind}-{precision}-{name}-{key.hexdigest()[:16]}"


def publish(build: Callable[[Path], None], target: Path) -> Path:
    """Run ``build(folder)`` in a fresh folder beside ``target`` and rename it into place: another process
    sees the whole conversion or none of it; when two convert at once, the first rename wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        build(work)
        for file in work.iterdir():
            fsync(file)
        try:
            os.rename(work, target)
        except OSError:  # converted meanwhile by another process
            if not (target / META).is_file():
                raise
        fsync(target.parent)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target


@dataclass(frozen=True)
class ModelInfo:
    """What a converted model needs besides its graph: the tokenizer's limits and the input names."""

    max_seq_length: int
    do_lower_case: bool
    dim: int
    inputs: tuple[str, ...]

    def save(self, folder: Path) -> None:
        write_json(folder / META, {"format": CACHE_FORMAT, "max_seq_length": self.max_seq_length,
                                   "do_lower_case": self.do_lower_case, "dim": self.dim, "inputs": list(self.inputs)})

    @classmethod
    def load(cls, folder: Path) -> ModelInfo:
        data = json.loads((folder / META).read_text())
        return cls(int(data["max_seq_length"]), bool(data["do_lower_case"]), int(data["dim"]), tuple(data["inputs"]))


def load_sentence_transformer(path: str, threads: int) -> Any:
    """The torch model a conversion starts from (on the CPU, fp32)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    try:
        return SentenceTransformer(path, device="cpu", local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1")
    except Exception as exc:
        raise MedRAGError(f"cannot load embedding model {path!r} (offline: use a local directory "
                          f"or a packaged model): {type(exc).__name__}: {exc}".splitlines()[0]) from exc


def export_inputs(model: Any) -> tuple[Any, dict[str, Any], ModelInfo]:
    """A torch module computing the model's sentence embedding and token embeddings from token ids (its own
    pooling and normalisation modules, so nothing is re-implemented), an example input, and its ``ModelInfo``."""
    import torch

    tokenizer = model.tokenizer
    names = tuple(n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names)

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            out = self.model(features)
            return out["sentence_embedding"], out["token_embeddings"]

    example = tokenizer(["a short example", "a somewhat longer example sentence to embed"], padding=True,
                        return_tensors="pt")
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    lower = bool(getattr(model[0], "do_lower_case", False))
    info = ModelInfo(int(model.max_seq_length), lower, int(get_dim()), names)
    return SentenceEmbedding().eval(), {n: example[n] for n in names}, info


def copy_beside(base: Path, folder: Path, model_files: tuple[str, ...]) -> None:
    """Copy a converted model's other files (tokenizer, ``ModelInfo``) from ``base`` into ``folder``, where a
    quantized ``model_files`` were just written."""
    for file in base.iterdir():
        if file.name not in model_files:
            (folder / file.name).write_bytes(file.read_bytes())


def save_tokenizer(model: Any, folder: Path) -> None:
    model.tokenizer.save_pretrained(str(folder))


def load_tokenizer(folder: Path) -> Any:
    """The fast tokenizer saved beside a converted model (loading it does not import torch)."""
    from transformers.tokenization_utils_fast import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(folder))


class Batches:
    """Texts tokenized once, sorted by token count and cut into padded batches (little padding, as
    sentence-transformers does by sorting on length)."""

    def __init__(self, tokenizer: Any, info: ModelInfo, texts: Sequence[str], batch_size: int) -> None:
        prepared = [t.strip().lower() if info.do_lower_case else t.strip() for t in texts]
        self.encoded = tokenizer(prepared, truncation=True, max_length=info.max_seq_length, padding=False,
                                 return_attention_mask=False, return_token_type_ids=False, verbose=False)["input_ids"]
        self.order = np.argsort([-len(ids) for ids in self.encoded], kind="stable")
        self.batch_size = batch_size
        self.pad = tokenizer.pad_token_id or 0
        self.inputs = info.inputs

    def __len__(self) -> int:
        return (len(self.order) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """``(rows, feeds)``: the positions of the batch's texts and the model's inputs for them."""
        for start in range(0, len(self.order), self.batch_size):
            rows = self.order[start:start + self.batch_size]
            width = max(len(self.encoded[i]) for i in rows)
            ids = np.full((len(rows), width), self.pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                ids[r, :len(self.encoded[i])] = self.encoded[i]
                mask[r, :len(self.encoded[i])] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            yield rows, {n: feeds[n] for n in self.inputs}


#: what a converted model's forward pass gives: ``(sentence embeddings, token embeddings)`` of one batch
Infer = Callable[[dict[str, np.ndarray], bool], tuple[np.ndarray, np.ndarray | None]]


def run_batches(batches: Batches, infer: Infer, dim: int, progress: bool = False,
                tokens: bool = False) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Every batch through ``infer``, put back in the texts' order: the sentence vectors L2-normalised in
    float32 and, with ``tokens``, each text's token embeddings (one row per token, padding cut off)."""
    out = np.zeros((len(batches.order), dim), dtype=np.float32)
    rows_of: list[np.ndarray] | None = [np.zeros((0, dim), dtype=np.float32)] * len(out) if tokens else None
    iterator: Any = batches
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(batches, total=len(batches), desc="embedding", unit="batch")
    for rows, feeds in iterator:
        pooled, token_rows = infer(feeds, tokens)
        out[rows] = np.asarray(pooled, dtype=np.float32)
        if rows_of is not None and token_rows is not None:
            lengths = feeds["attention_mask"].sum(axis=1)
            for r, i in enumerate(rows):
                rows_of[i] = np.asarray(token_rows[r, :lengths[r]], dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(out / np.maximum(norms, 1e-12), dtype=np.float32), rows_of


__all__ = ["Batches", "ModelInfo", "cache_dir", "cache_root", "export_inputs", "load_sentence_transformer",
           "load_tokenizer", "model_fingerprint", "publish", "run_batches", "save_tokenizer"]
