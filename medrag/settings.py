"""One frozen Settings object with named presets, saved as settings.json beside every index."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from medrag.errors import MedRAGError

#: fields that define how an index was built: an index can only be queried with the same values
INDEX_FIELDS = ("embedder", "query_embedder", "embedder_precision", "document_prompt", "chunk_tokens", "chunk_overlap",
                "index_type", "store", "lexical", "bm25_method", "bm25_k1", "bm25_b")
RETRIEVERS = ("dense", "bm25", "hybrid")
FUSIONS = ("rrf", "minmax", "zscore")


@dataclass(frozen=True)
class Settings:
    """Everything that shapes a pipeline. Build-time fields (``INDEX_FIELDS``) are fixed per index."""

    # embedding
    embedder: str = "all-MiniLM-L6-v2"
    query_embedder: str = ""  # a separate query encoder (asymmetric pairs such as MedCPT); "" = the embedder
    embedder_precision: str = "fp32"
    query_prompt: str = ""
    document_prompt: str = ""
    batch_size: int = 64
    # chunking (in the embedder's own tokens, title included)
    chunk_tokens: int = 256
    chunk_overlap: int = 16
    # storage
    store: str = "faiss"
    index_type: str = "Flat"  # a FAISS factory string: Flat, HNSW32, IVF1024,PQ48, IVF4096,PQ48,RFlat ...
    ef_search: int = 64  # HNSW: candidates explored per query (recall against speed)
    nprobe: int = 16  # IVF: inverted lists visited per query
    k_factor: int = 4  # RFlat refinement: approximate candidates re-scored exactly, per result
    # lexical index (bm25s, stemmed, stop words removed), kept beside the vectors
    lexical: bool = True
    bm25_method: str = "lucene"
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    # retrieval
    retriever: str = "hybrid"  # dense | bm25 | hybrid
    fusion: str = "rrf"  # rrf | minmax | zscore
    rrf_k: int = 60
    dense_weight: float = 0.5  # hybrid: the dense list's share of the fusion (BM25 gets the rest)
    fusion_candidates: int = 100  # each retriever's top-n that hybrid fusion ranks
    k: int = 5
    reranker: str = ""  # a cross-encoder name or directory (medrag train-reranker) re-scoring the top passages
    rerank_depth: int = 20  # passages the reranker re-scores per question
    # trust (thresholds calibrated for all-MiniLM-L6-v2 on dev data: eval/reports/answering.md)
    abstain_threshold: float = 0.52  # top dense cosine + margin - coverage penalty below this: abstain
    abstain_margin_weight: float = 0.0  # x (top1 - top5 cosine)
    abstain_coverage_weight: float = 0.15  # x (1 - IDF-weighted share of the question's stems in the top-5 passages)
    support_threshold: float = 0.65  # a sentence is supported when this close to a cited passage's sentence
    strict: bool = False  # drop unsupported sentences instead of flagging them
    # generation
    generator: str = "extractive"
    max_new_tokens: int = 128
    openai_base_url: str = ""  # openai:MODEL generators: the chat-completions server ("" = $OPENAI_BASE_URL or OpenAI)
    openai_api_key_env: str = "OPENAI_API_KEY"  # the environment variable holding its key (never saved)
    openai_context_tokens: int = 4096  # the remote model's context window
    extractive_sentences: int = 3
    # runtime
    threads: int = 0  # 0: every core
    checkpoint_chunks: int = 2048  # ingest saves after this many new chunks (resumable)

    def __post_init__(self) -> None:
        if self.retriever not in RETRIEVERS:
            raise MedRAGError(f"unknown retriever {self.retriever!r}; choose from {', '.join(RETRIEVERS)}")
        if self.fusion not in FUSIONS:
            raise MedRAGError(f"unknown fusion {self.fusion!r}; choose from {', '.join(FUSIONS)}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise MedRAGError(f"dense_weight is the dense list's share of hybrid fusion: 0 to 1, not {self.dense_weight}")
        if self.retriever != "dense" and not self.lexical:
            raise MedRAGError(f"the {self.retriever} retriever needs the BM25 index (lexical=true)")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; unknown names are an error."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise MedRAGError(f"unknown setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def parse_assignments(cls, assignments: list[str]) -> dict[str, Any]:
        """Typed field changes from ``KEY=VALUE`` strings (the CLI's ``--set``)."""
        types = {f.name: type(getattr(PRESETS["default"], f.name)) for f in fields(cls)}
        changes: dict[str, Any] = {}
        for item in assignments:
            key, sep, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in types:
                raise MedRAGError(f"bad setting {item!r}: use KEY=VALUE with KEY one of {', '.join(sorted(types))}")
            try:
                changes[key] = (value.lower() in ("1", "true", "yes")) if types[key] is bool else types[key](value)
            except ValueError:
                raise MedRAGError(f"bad setting {item!r}: {key} takes a {types[key].__name__}") from None
        return changes

    @property
    def num_threads(self) -> int:
        return self.threads or os.cpu_count() or 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Settings:
        try:
            data = json.loads(Path(path).read_text())
            if "abstain_threshold" in data and "abstain_coverage_weight" not in data:
                data["abstain_coverage_weight"] = 0.0  # saved before coverage existed: keep the gate it had
            return cls.from_dict(data)
        except (OSError, ValueError) as exc:
            raise MedRAGError(f"cannot read settings {path}: {exc}") from exc

    @classmethod
    def preset(cls, name: str, **changes: Any) -> Settings:
        """A named preset (see ``PRESETS``), optionally with some fields changed."""
        if name not in PRESETS:
            raise MedRAGError(f"unknown preset {name!r}; choose from {', '.join(sorted(PRESETS))}")
        return PRESETS[name].replace(**changes)

    def index_mismatch(self, other: Settings) -> list[str]:
        """The build-time fields in which ``other`` differs from this (an index's) settings."""
        return [f"{name}: index has {getattr(self, name)!r}, asked for {getattr(other, name)!r}"
                for name in INDEX_FIELDS if getattr(self, name) != getattr(other, name)]


PRESETS: dict[str, Settings] = {
    "default": Settings(),
    # small HNSW graph: sub-millisecond queries on larger corpora, slightly approximate
    "hnsw": Settings(index_type="HNSW32"),
    # dense vectors only: no BM25 index is built (smaller, and the retrieval MIRAGE found weaker)
    "dense": Settings(lexical=False, retriever="dense"),
    # a GPT-2-family language model writes the answer from the packed passages
    "gpt2": Settings(generator="gpt2"),
}
