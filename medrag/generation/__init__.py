"""Answer generation: the Generator protocol, the shared citation cleaner and the generator registry."""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from medrag.errors import MedRAGError

if TYPE_CHECKING:
    from medrag.documents import Chunk
    from medrag.embedding import Embedder

log = logging.getLogger(__name__)

#: a citation marker (``[3]``, ``[1, 2]``, ``[1,2]``, ``[1-3]``, ``[1–3]``) with the spaces around it
CITATION = re.compile(r"([ \t]*)\[\s*(\d+(?:\s*[-–,]\s*\d+)*)\s*\]([ \t]*)")
MAX_RANGE = 50  # ``[1-3]`` expands to 1, 2, 3; a wider range is read as its two ends


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


def _marker_numbers(body: str) -> list[int]:
    """The numbers a marker's body names, ranges expanded, in order."""
    numbers: list[int] = []
    for part in body.split(","):
        ends = [int(x) for x in re.split(r"\s*[-–]\s*", part.strip())]
        if len(ends) == 2 and 0 <= ends[1] - ends[0] <= MAX_RANGE:
            numbers.extend(range(ends[0], ends[1] + 1))
        else:
            numbers.extend(ends)
    return numbers


def clean_citations(text: str, allowed: set[int]) -> tuple[str, list[int], int]:
    """Drop citation numbers outside ``allowed``; returns (clean text, sorted cited numbers, numbers removed).

    A marker keeps its original form when all its numbers are allowed, is rewritten with the allowed
    ones when some are not, and disappears (with the spaces before it) when none is; ranges expand.
    """
    cited: set[int] = set()
    removed = 0

    def fix(match: re.Match[str]) -> str:
        nonlocal removed
        lead, body, trail = match.groups()
        numbers = _marker_numbers(body)
        keep = list(dict.fromkeys(n for n in numbers if n in allowed))
        bad = sum(n not in allowed for n in numbers)
        removed += bad
        cited.update(keep)
        if not bad:
            return match.group(0)
        if keep:
            return f"{lead}[{', '.join(map(str, keep))}]{trail}"
        line_start = match.start() == 0 or text[match.start() - 1] == "\n"
        return "" if line_start and not lead else trail  # "A [7] B" -> "A B", "A [7]." -> "A."

    clean = CITATION.sub(fix, text)
    if removed:
        clean = re.sub(r"(?<=\S)[ \t]{2,}(?=\S)", " ", clean)
    return clean.strip(), sorted(cited), removed


GeneratorFactory = Callable[..., Generator]


def _extractive(spec: str, *, embedder: Embedder | None, n_sentences: int, **_: object) -> Generator:
    from medrag.generation.extractive import ExtractiveGenerator

    if embedder is None:
        raise MedRAGError("the extractive generator needs an embedder")
    return ExtractiveGenerator(embedder, n_sentences=n_sentences)


def _hf(spec: str, *, max_new_tokens: int, threads: int, **_: object) -> Generator:
    from medrag.generation.hf import HFGenerator

    return HFGenerator(spec, max_new_tokens=max_new_tokens, threads=threads)


def _openai(spec: str, *, max_new_tokens: int, openai_base_url: str = "", openai_api_key_env: str = "OPENAI_API_KEY",
            openai_context_tokens: int = 4096, **_: object) -> Generator:
    from medrag.generation.openai import OpenAIChatGenerator

    return OpenAIChatGenerator(spec.removeprefix("openai:"), base_url=openai_base_url or None, api_key_env=openai_api_key_env,
                               max_new_tokens=max_new_tokens, context_tokens=openai_context_tokens)


#: named generators; ``prefix:`` specs by their prefix; any other spec is a Hugging Face causal LM
#: (hub name or local directory)
GENERATORS: dict[str, GeneratorFactory] = {"extractive": _extractive, "openai:": _openai}


def make_generator(spec: str, *, embedder: Embedder | None, max_new_tokens: int = 128, n_sentences: int = 3,
                   threads: int = 0, **options: object) -> Generator:
    """The generator named by ``spec``: a key of ``GENERATORS`` (or ``openai:MODEL``), else a Hugging Face model
    (loaded lazily). ``options`` are backend settings (``openai_base_url`` ...)."""
    if not spec or not spec.strip():
        raise MedRAGError("empty generator name; use 'extractive' or a model name or directory")
    prefix = spec.split(":", 1)[0] + ":" if ":" in spec else None
    factory = GENERATORS.get(spec) or GENERATORS.get(prefix or "") or _hf
    return factory(spec, embedder=embedder, max_new_tokens=max_new_tokens, n_sentences=n_sentences,
                   threads=threads, **options)


__all__ = ["GENERATORS", "Generation", "Generator", "clean_citations", "make_generator"]
