"""Answer generation: the Generator protocol and the generator registry.

A generator spec is ``extractive``, ``openai:MODEL``, a Hugging Face causal LM (hub name or local directory),
or ``package.module:Class``. A backend is one module with a class that has ``from_settings(model, options,
env)`` and ``generate``, and optionally ``Options`` (its own settings, kept in
``settings.generation.options[NAME]``); adding one is that file plus one line in ``GENERATORS``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from medrag.errors import MedRAGError
from medrag.generation.citations import CITATION, clean_citations
from medrag.registry import DOTTED, Registry

if TYPE_CHECKING:
    from medrag.documents import Chunk
    from medrag.embedding import Embedder
    from medrag.sentences import SentenceVectors

log = logging.getLogger(__name__)


@dataclass
class Generation:
    """An answer with its citations, checked against the passages the generator saw."""

    text: str  # answer text with [n] markers; n is the 1-based position in `passages`
    cited: list[int]  # sorted distinct n that the text cites (all valid)
    invalid_citations: int  # markers removed because they pointed at no passage in the prompt
    in_prompt: list[int]  # passage numbers actually shown to the generator (only these may be cited)
    generator: str  # which generator produced it, e.g. "extractive" or "hf:/path/or/name"


class Generator(Protocol):
    """Anything that answers a question from ranked passages."""

    name: str

    def generate(self, question: str, passages: Sequence[Chunk],
                 on_token: Callable[[str], None] | None = None) -> Generation:
        """The answer; a generator that decodes token by token passes each piece to ``on_token`` as it comes."""
        ...


@dataclass(frozen=True)
class GeneratorEnv:
    """What a generator may use besides its own options: the index's embedder, a token budget, threads."""

    embedder: Embedder | None = None
    max_new_tokens: int = 128
    threads: int = 0
    sentences: SentenceVectors | None = None  # passages' sentence vectors, stored in the index when it has them


#: generator backends: name -> "module:Class"; a spec naming none of them is a Hugging Face model ("hf")
GENERATORS = Registry("generator", {
    "extractive": "medrag.generation.extractive:ExtractiveGenerator",
    "hf": "medrag.generation.hf:HFGenerator",
    "openai": "medrag.generation.openai_chat:OpenAIChatGenerator",
})


def parse_spec(spec: str) -> tuple[str, str]:
    """``(backend, model)`` of a generator spec: ``extractive`` -> (extractive, ""), ``openai:gpt-4o`` ->
    (openai, gpt-4o), ``pkg.mod:Class`` -> (pkg.mod:Class, ""), anything else -> (hf, spec)."""
    if not spec or not spec.strip():
        raise MedRAGError("empty generator name; use 'extractive' or a model name or directory")
    if spec in GENERATORS and spec != "hf":
        return spec, ""
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in GENERATORS:
        return prefix, rest
    if DOTTED.match(spec):
        return spec, ""
    return "hf", spec


def make_generator(spec: str, *, embedder: Embedder | None = None, max_new_tokens: int = 128, threads: int = 0,
                   options: Mapping[str, Mapping[str, Any]] | None = None, n_sentences: int | None = None,
                   sentences: SentenceVectors | None = None) -> Generator:
    """The generator named by ``spec`` (see ``parse_spec``), built with its own ``options[backend]``
    (``n_sentences``: the extractive answerer's sentence count, a shortcut for its option)."""
    backend, model = parse_spec(spec)
    entry = GENERATORS.get(backend)
    raw = dict((options or {}).get(entry.name, {}))
    if n_sentences is not None and entry.name == "extractive":
        raw["sentences"] = n_sentences
    factory = entry.load()
    built = factory.from_settings(model, entry.options(raw), GeneratorEnv(embedder, max_new_tokens, threads, sentences))
    log.debug("generator %s built (%s)", spec, entry.target)
    return built


__all__ = ["CITATION", "GENERATORS", "Generation", "Generator", "GeneratorEnv", "clean_citations", "make_generator",
           "parse_spec"]
