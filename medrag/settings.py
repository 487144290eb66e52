"""Typed, nested settings with named presets, saved as ``settings.json`` beside every index.

Each component has its own group (``embedding``, ``chunking``, ``index``, ``lexical``, ``retrieval``,
``generation``, ``safety``, ``answer``, ``ingest``); a backend's own options live inside its group (``index.options``
for the vector store, ``lexical.options``, ``generation.options[BACKEND]``) and are validated by the
backend's ``Options`` model when it is built. Every group forbids unknown keys, and values are parsed
strictly enough that ``--set safety.strict=ture`` is an error naming the bad value.

The flat form written before the groups existed (``{"embedder": ..., "k": 5, ...}``) still loads: its keys
are moved to their groups on read (``LEGACY``), and flat names are accepted by ``Settings(...)``,
``Settings.replace`` and ``--set`` too. Presets are JSON files in ``medrag/presets/``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medrag.errors import MedRAGError

RETRIEVERS = ("dense", "bm25", "hybrid")
FUSIONS = ("rrf", "minmax", "zscore")
PRESET_DIR = Path(__file__).with_name("presets")


class Group(BaseModel):
    """A settings group: frozen, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class EmbeddingSettings(Group):
    """The sentence-embedding model (build-time: an index is queried with the model it was built with)."""

    model: str = Field("all-MiniLM-L6-v2", description="sentence-transformers model name or directory")
    query_model: str = Field("", description="a separate query encoder (asymmetric pairs); '' = the model")
    backend: Literal["auto", "torch", "openvino", "onnx"] = Field(
        "auto", description="what computes the vectors; auto: the fastest path passing the quality guard on this "
                             "CPU, resolved when the settings are made (an index records the path it was built with)")
    precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] = Field(
        "auto", description="fp32, bf16, int8 (openvino, onnx; opt-in: see eval/reports/embedding.md), fp16 (GPU)")
    options: dict[str, Any] = Field(default_factory=dict, description="the backend's own options "
                                                                      "(openvino: calibration_texts)")
    query_prompt: str = ""
    document_prompt: str = ""
    batch_size: int = Field(64, gt=0)

    @model_validator(mode="after")
    def _path(self) -> EmbeddingSettings:
        """``auto`` resolved for this CPU (``medrag.embedding.cpu``); the precision and options checked."""
        from medrag.embedding import EMBEDDERS, cpu

        backend, precision = cpu.resolve_here(self.backend, self.precision)
        if precision not in cpu.PRECISIONS[backend]:
            raise ValueError(f"the {backend} embedder runs {', '.join(cpu.PRECISIONS[backend])}, not {precision}")
        options = EMBEDDERS.get(backend).options(self.options)
        for name, value in (("backend", backend), ("precision", precision),
                            ("options", options.model_dump(mode="json", exclude_defaults=True) if options else {})):
            object.__setattr__(self, name, value)
        return self


class ChunkingSettings(Group):
    """Token-aware chunking, in the embedder's own tokens (title included)."""

    tokens: int = Field(256, gt=0)
    overlap: int = Field(16, ge=0)


class IndexSettings(Group):
    """The vector store: a backend by name or ``package.module:Class``, with its own options."""

    backend: str = "faiss"
    options: dict[str, Any] = Field(
        default_factory=lambda: {"index_type": "Flat", "ef_search": 64, "nprobe": 16, "k_factor": 4},
        description="the backend's own options (faiss: index_type, ef_search, nprobe, k_factor)")

    @model_validator(mode="after")
    def _options(self) -> IndexSettings:
        object.__setattr__(self, "options", _backend_options("store", self.backend, self.options))
        return self


def _backend_options(kind: str, backend: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked by the backend's own ``Options`` model, defaults filled in."""
    from medrag.registry import registry

    model = registry(kind).get(backend).options(options)
    return model.model_dump(mode="json") if model is not None else dict(options)


class LexicalSettings(Group):
    """The lexical index kept beside the vectors (hybrid and BM25 retrieval, abstention's coverage)."""

    enabled: bool = True
    backend: str = Field("auto", description="tantivy, bm25s, or package.module:Class; auto: tantivy (block-max "
                                             "WAND, incremental commits: eval/reports/lexical.md), bm25s for an "
                                             "encrypted index (tantivy keeps files on disk); an index keeps its own")
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _options(self) -> LexicalSettings:
        if self.backend != "auto":  # resolved when an index is made (``MedRAG``): its options then
            object.__setattr__(self, "options", _backend_options("lexical", self.backend, self.options))
        return self


class RetrievalSettings(Group):
    """How questions find passages."""

    retriever: Literal["dense", "bm25", "hybrid"] = "hybrid"
    fusion: Literal["rrf", "minmax", "zscore"] = "rrf"
    rrf_k: int = Field(60, gt=0)
    dense_weight: float = Field(0.5, description="hybrid: the dense list's share of the fusion (BM25 gets the rest)")
    fusion_candidates: int = Field(100, gt=0, description="each retriever's top-n that hybrid fusion ranks")
    k: int = Field(5, gt=0, description="passages per question")
    reranker: str = Field("", description="a cross-encoder name or directory re-scoring the top passages")
    rerank_depth: int = Field(20, gt=0)

    @field_validator("dense_weight")
    @classmethod
    def _share(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"dense_weight is the dense list's share of hybrid fusion: 0 to 1, not {value}")
        return value


class GenerationSettings(Group):
    """Who writes the answer: ``extractive``, ``openai:MODEL``, a Hugging Face model name or directory, or
    ``package.module:Class``; ``options`` holds each backend's own options under its name."""

    generator: str = "extractive"
    max_new_tokens: int = Field(128, gt=0)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _options(self) -> GenerationSettings:
        """Each backend's options checked by its own model; only the values that differ from its defaults kept."""
        from medrag.registry import registry

        checked = {}
        for name, raw in self.options.items():
            model = registry("generator").get(name).options(raw)
            kept = model.model_dump(mode="json", exclude_defaults=True) if model is not None else dict(raw)
            if kept:
                checked[name] = kept
        object.__setattr__(self, "options", checked)
        return self


class SafetySettings(Group):
    """Thresholds calibrated for all-MiniLM-L6-v2 on dev data (eval/reports/answering.md; the abstention gate
    recalibrated with consumer messages gated on their focus: eval/reports/consumer.md)."""

    abstain_threshold: float = Field(0.45, description="confidence below this: abstain")
    abstain_margin_weight: float = Field(0.0, description="x (top1 - top5 cosine)")
    abstain_coverage_weight: float = Field(0.35, description="x (1 - IDF-weighted share of the question's topic "
                                                             "words in the top-5 passages: kinds.topic_words)")
    support_threshold: float = Field(0.65, description="a sentence is supported when this close to a cited "
                                                       "passage's sentence")
    strict: bool = Field(False, description="drop unsupported sentences instead of flagging them")


class AnswerSettings(Group):
    """How an answer is built from the retrieved passages (``medrag.answering``; docs/answer.md)."""

    focus: bool = Field(True, description="search a long consumer message by its focus (greetings, backstory and "
                                          "signatures dropped; ages, drugs and conditions kept)")
    expand: bool = Field(True, description="read each passage with its neighbouring chunks of the same document "
                                           "(a list and its lead-in, the sentence a 'These' refers to)")


class IngestSettings(Group):
    """Ingest checkpoints and what is stored beside each chunk."""

    checkpoint_chunks: int = Field(2048, gt=0, description="the index is saved after this many new chunks")
    merge_segments: int = Field(10, ge=0, description="merge this many adjacent vector segments of like size "
                                                      "into one, in the background during an ingest (each "
                                                      "checkpoint writes one; 0: never, 'medrag compact' only)")
    sentence_vectors: bool = Field(True, description="store each chunk's sentence vectors (float16, pooled from "
                                                     "the chunk's own forward pass) so answers embed no stored text")
    notes_already_deidentified: bool = Field(False, description="clinical notes carry no PHI: skip de-identifying "
                                                                "them (only ever set explicitly; recorded here)")
    deid_shift_dates: bool = Field(False, description="notes: shift dates per patient instead of removing them")


#: flat names of the form saved before the groups existed -> their place now
LEGACY: dict[str, tuple[str, ...]] = {
    "embedder": ("embedding", "model"), "query_embedder": ("embedding", "query_model"),
    "embedder_precision": ("embedding", "precision"), "query_prompt": ("embedding", "query_prompt"),
    "document_prompt": ("embedding", "document_prompt"), "batch_size": ("embedding", "batch_size"),
    "chunk_tokens": ("chunking", "tokens"), "chunk_overlap": ("chunking", "overlap"),
    "store": ("index", "backend"), "index_type": ("index", "options", "index_type"),
    "ef_search": ("index", "options", "ef_search"), "nprobe": ("index", "options", "nprobe"),
    "k_factor": ("index", "options", "k_factor"),
    "lexical": ("lexical", "enabled"), "bm25_method": ("lexical", "options", "method"),
    "bm25_k1": ("lexical", "options", "k1"), "bm25_b": ("lexical", "options", "b"),
    **{name: ("retrieval", name) for name in ("retriever", "fusion", "rrf_k", "dense_weight", "fusion_candidates",
                                              "k", "reranker", "rerank_depth")},
    **{name: ("safety", name) for name in ("abstain_threshold", "abstain_margin_weight", "abstain_coverage_weight",
                                           "support_threshold", "strict")},
    "generator": ("generation", "generator"), "max_new_tokens": ("generation", "max_new_tokens"),
    "openai_base_url": ("generation", "options", "openai", "base_url"),
    "openai_api_key_env": ("generation", "options", "openai", "api_key_env"),
    "openai_context_tokens": ("generation", "options", "openai", "context_tokens"),
    "extractive_sentences": ("generation", "options", "extractive", "sentences"),
    "checkpoint_chunks": ("ingest", "checkpoint_chunks"),
}

#: the fields a chunk's text and vector depend on (the Ray engine's shards are keyed by them)
CHUNK_FIELDS = ("embedding.model", "embedding.backend", "embedding.precision", "embedding.options", "chunking.tokens",
                "chunking.overlap", "embedding.document_prompt")
#: the fields that define how an index was built: an index can only be queried with the same values
BUILD_FIELDS = (*CHUNK_FIELDS, "embedding.query_model", "index.backend", "index.options.index_type",
                "lexical.enabled", "lexical.backend", "lexical.options")


def _path(key: str) -> tuple[str, ...]:
    key = key.strip().replace("-", "_")
    return LEGACY.get(key) or tuple(key.split("."))


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        node = tree.get(part)
        if isinstance(node, BaseModel):
            node = node.model_dump()
        if not isinstance(node, dict):
            node = {}
        tree[part] = node = dict(node)
        tree = node
    tree[path[-1]] = value


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        tree = tree.get(part) if isinstance(tree, dict) else getattr(tree, part, None)
    return tree


def nest(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with flat (legacy) and dotted keys moved into their groups."""
    tree: dict[str, Any] = {}
    for key, value in data.items():
        if key in GROUPS and isinstance(value, dict):
            for sub, inner in value.items():
                if isinstance(inner, dict):
                    _merge(tree, (key, sub), inner)
                else:
                    _set(tree, (key, sub), inner)
        else:
            _set(tree, _path(key), value)
    return tree


def _merge(tree: dict[str, Any], path: tuple[str, ...], value: dict[str, Any]) -> None:
    current = _get(tree, path)
    _set(tree, path, {**(current if isinstance(current, dict) else {}), **value})


class Settings(Group):
    """Everything that shapes a pipeline; ``BUILD_FIELDS`` are fixed per index."""

    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    lexical: LexicalSettings = Field(default_factory=LexicalSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    threads: int = Field(0, ge=0, description="CPU threads for torch and FAISS; 0: every core")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**nest(data))
        except ValidationError as exc:
            raise MedRAGError(f"bad settings: {_message(exc)}") from None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.retrieval.retriever != "dense" and not self.lexical.enabled:
            raise ValueError(f"the {self.retrieval.retriever} retriever needs the lexical index (lexical.enabled=true)")
        return self

    # -- changes ---------------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (flat legacy names, ``group.field`` paths with ``__`` or ``.``, or
        whole groups); unknown names are an error; ``None`` values are ignored."""
        tree = self.to_dict()
        for key, value in changes.items():
            if value is None:
                continue
            path = _path(key.replace("__", "."))
            if _known(path) is None:
                raise MedRAGError(f"unknown setting(s): {key}")
            if isinstance(value, BaseModel):
                value = value.model_dump()
            if isinstance(value, dict) and path[-1] == "options" and path[0] == "generation":
                _merge(tree, path, value)
            else:
                switched = path[-1] == "backend" and len(path) == 2 and tree[path[0]].get("backend") != value
                _set(tree, path, value)
                if switched and "options" in tree[path[0]] and not any(
                        k.replace("__", ".") == f"{path[0]}.options" for k in changes):
                    tree[path[0]]["options"] = {}  # another backend: its own defaults, not the old one's options
        return Settings(**tree)

    @classmethod
    def parse_assignments(cls, assignments: list[str]) -> dict[str, Any]:
        """Field changes from ``KEY=VALUE`` strings (the CLI's ``--set``; ``KEY`` a dotted path or a flat
        name); the values are typed and checked when the settings are built."""
        changes: dict[str, Any] = {}
        for item in assignments:
            key, sep, value = item.partition("=")
            path = _path(key)
            if not sep or _known(path) is None:
                raise MedRAGError(f"bad setting {item!r}: use KEY=VALUE with KEY one of {', '.join(setting_names())}")
            changes[".".join(path)] = value
        Settings().replace(**changes)  # a bad value fails here, naming it
        return changes

    # -- derived ---------------------------------------------------------------------------------------
    @property
    def num_threads(self) -> int:
        return self.threads or os.cpu_count() or 1

    def get(self, path: str) -> Any:
        """A value by dotted path (``retrieval.k``, ``index.options.nprobe``)."""
        return _get(self, tuple(path.split(".")))

    def backend_options(self, group: str, backend: str | None = None) -> dict[str, Any]:
        """A backend's raw options (``generation``: those stored under the backend's name)."""
        if group == "generation":
            return dict(self.generation.options.get(backend or "", {}))
        return dict(getattr(self, group).options)

    def index_mismatch(self, other: Settings) -> list[str]:
        """The build-time fields in which ``other`` differs from this (an index's) settings."""
        named = {"embedding.model": "embedder ", "index.options.index_type": "index type ",
                 "chunking.tokens": "chunk size "}
        skip = {"lexical.backend", "lexical.options"} if other.lexical.backend == "auto" else set()  # its own
        return [f"{named.get(name, '')}{name}: index has {self.get(name)!r}, asked for {other.get(name)!r}"
                for name in BUILD_FIELDS if name not in skip and self.get(name) != other.get(name)]

    # -- files -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Settings:
        """Read ``settings.json``; the flat form of older indexes is migrated (see ``LEGACY``)."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise MedRAGError(f"cannot read settings {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise MedRAGError(f"cannot read settings {path}: not a JSON object")
        if "abstain_threshold" in data and "abstain_coverage_weight" not in data:
            data["abstain_coverage_weight"] = 0.0  # saved before coverage existed: keep the gate it had
        embedding = data.get("embedding") if isinstance(data.get("embedding"), dict) else {}
        if "backend" not in embedding:  # saved before embedding paths: built with torch
            data["embedding"] = {**embedding, "backend": "torch"}
        lexical = data.get("lexical") if isinstance(data.get("lexical"), dict) else {}
        flat = {k: v for k, v in data.items() if k in LEGACY and k not in GROUPS}
        rest = {k: v for k, v in data.items() if k not in flat}
        unknown = sorted(k for k in rest if k not in Settings.model_fields)
        for key in unknown:  # a flat field of an older medrag that no longer exists: ignored, as before
            rest.pop(key)
        settings = cls(**rest, **flat)
        if "backend" not in lexical:  # saved before lexical backends (the flat form too): built with bm25s
            settings = settings.replace(**{"lexical.backend": "bm25s", "lexical.options": settings.lexical.options})
        return settings

    @classmethod
    def preset(cls, name: str, **changes: Any) -> Settings:
        """A named preset (``medrag/presets/NAME.json``), optionally with some fields changed."""
        path = PRESET_DIR / f"{name}.json"
        if not path.is_file():
            raise MedRAGError(f"unknown preset {name!r}; choose from {', '.join(preset_names())}")
        return cls(**json.loads(path.read_text())).replace(**changes)


GROUPS = tuple(name for name, f in Settings.model_fields.items()
               if isinstance(f.annotation, type) and issubclass(f.annotation, Group))


def _known(path: tuple[str, ...]) -> Any:
    """The model or field a settings path names (``None`` if none); backend options are open-ended."""
    node: Any = Settings
    for i, part in enumerate(path):
        fields = getattr(node, "model_fields", None)
        if fields is None or part not in fields:
            return None
        if part == "options":
            return True
        node = fields[part].annotation
    return node


def _message(exc: ValidationError) -> str:
    from medrag.registry import validation_message

    return validation_message(exc)


def setting_names() -> list[str]:
    """Every settings path (``group.field``), for help and error messages."""
    names = []
    for group in GROUPS:
        names += [f"{group}.{f}" for f in Settings.model_fields[group].annotation.model_fields]
    return [*names, "threads"]


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def __getattr__(name: str) -> Any:
    if name == "PRESETS":  # the named presets, read from their files
        return {preset: Settings.preset(preset) for preset in preset_names()}
    raise AttributeError(f"module 'medrag.settings' has no attribute {name!r}")


__all__ = ["BUILD_FIELDS", "CHUNK_FIELDS", "FUSIONS", "LEGACY", "RETRIEVERS", "ChunkingSettings", "EmbeddingSettings",
           "GenerationSettings", "IndexSettings", "IngestSettings", "LexicalSettings", "RetrievalSettings",
           "SafetySettings", "Settings", "nest", "preset_names", "setting_names"]
