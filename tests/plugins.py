"""Backends written outside the package, as a user would: each is selected by its dotted path
(``tests.plugins:NumpyStore``), with no edit to medrag."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from medrag.documents import Chunk, Document
from medrag.generation import Generation, GeneratorEnv


class NumpyOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    normalise: bool = False  # re-normalise vectors on add (the embedder's are unit vectors already)


class NumpyStore:
    """Exact inner-product search over a numpy matrix; saved as one ``.npz`` of two arrays (no pickle)."""

    Options = NumpyOptions
    suffix = "npz"

    def __init__(self, dim: int, options: NumpyOptions) -> None:
        self.dim = dim
        self.options = options
        self.ids = np.empty(0, np.int64)
        self.matrix = np.empty((0, dim), np.float32)

    @classmethod
    def create(cls, dim: int, options: NumpyOptions, threads: int = 0) -> NumpyStore:
        return cls(dim, options)

    @classmethod
    def open(cls, path: Path, options: NumpyOptions, threads: int = 0) -> NumpyStore:
        with np.load(path, allow_pickle=False) as data:
            store = cls(int(data["matrix"].shape[1]), options)
            store.ids, store.matrix = data["ids"], data["matrix"]
        return store

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, np.float32)
        if self.options.normalise:
            vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.ids = np.concatenate([self.ids, np.asarray(ids, np.int64)])
        self.matrix = np.vstack([self.matrix, vectors])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.asarray(queries, np.float32) @ self.matrix.T
        n = len(queries)
        out_s, out_i = np.zeros((n, k), np.float32), np.full((n, k), -1, np.int64)
        for row in range(n):
            order = np.argsort(-scores[row], kind="stable")[:k]
            out_s[row, :len(order)], out_i[row, :len(order)] = scores[row, order], self.ids[order]
        return out_s, out_i

    def delete(self, ids: np.ndarray) -> int:
        keep = ~np.isin(self.ids, np.asarray(ids, np.int64))
        removed = int((~keep).sum())
        self.ids, self.matrix = self.ids[keep], self.matrix[keep]
        return removed

    def save(self, path: Path) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, ids=self.ids, matrix=self.matrix)

    def count(self) -> int:
        return len(self.ids)


class EchoOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    prefix: str = "Echo:"


class EchoGenerator:
    """Answers with the first sentence of the best passage, cited, after its ``prefix``."""

    Options = EchoOptions

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.name = f"echo{prefix}"

    @classmethod
    def from_settings(cls, model: str, options: EchoOptions, env: GeneratorEnv) -> EchoGenerator:
        return cls(options.prefix)

    def generate(self, question: str, passages: Sequence[Chunk],
                 on_token: Callable[[str], None] | None = None) -> Generation:
        if not passages:
            return Generation("", [], 0, [], self.name)
        first = passages[0].text.split(". ")[0].rstrip(".")
        return Generation(f"{self.prefix} {first}. [1]", [1], 0, list(range(1, len(passages) + 1)), self.name)


def read_toy(path: Path) -> Iterator[Document]:
    """A toy format: one JSON object per line with ``id``, ``title`` and ``body``."""
    for line in Path(path).read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            yield Document(id=f"toy:{item['id']}", title=item["title"], text=item["body"],
                           metadata={"source_type": "toy"})
