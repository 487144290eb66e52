"""ExtractiveGenerator: the passage sentences and lists that answer the question, each cited, no language model."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field

from medrag.answering.compose import RESEARCH, choose, lay_out, style_of
from medrag.answering.kinds import question_kind
from medrag.documents import Chunk
from medrag.embedding import Embedder
from medrag.errors import MedRAGError
from medrag.generation import Generation, GeneratorEnv
from medrag.generation.citations import clean_citations
from medrag.sentences import SentenceVectors

log = logging.getLogger(__name__)

class ExtractiveOptions(BaseModel):
    """The extractive answerer's options (``generation.options.extractive``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sentences: int = Field(3, gt=0, description="the most sentences (or lists) an answer from research abstracts "
                                                "quotes; consumer pages' answers are bounded by ``words``")
    words: int = Field(150, gt=0, description="the most words a list-type answer quotes (definitions and yes/no "
                                              "questions stay shorter: medrag.answering.compose.BUDGET)")


class ExtractiveGenerator:
    """Quotes the passage sentences and lists that answer the question's kind on its topic (``medrag.answering.
    compose``), each cited, grouped by passage in document order; no language model."""

    name = "extractive"
    Options = ExtractiveOptions

    @classmethod
    def from_settings(cls, model: str, options: ExtractiveOptions, env: GeneratorEnv) -> ExtractiveGenerator:
        if env.embedder is None:
            raise MedRAGError("the extractive generator needs an embedder")
        return cls(env.embedder, words=options.words, units=options.sentences, sentences=env.sentences)

    def __init__(self, embedder: Embedder, words: int = 150, units: int = 3,
                 sentences: SentenceVectors | None = None) -> None:
        self.embedder = embedder
        self.words = words
        self.units = units
        self.sentences = sentences or SentenceVectors(embedder)  # stored vectors when the index has them

    def generate(self, question: str, passages: Sequence[Chunk],
                 on_token: Callable[[str], None] | None = None) -> Generation:
        """The answer: one sentence (or list item) a line, each followed by `` [n]`` of its passage (nothing to
        stream: ``on_token`` is not called). Sentence vectors come from the index when it stores them."""
        in_prompt = list(range(1, len(passages) + 1))
        if not passages:
            return Generation("", [], 0, in_prompt, self.name)
        kind = question_kind(question)
        query = self.embedder.embed_queries([question])[0]
        found = self.sentences.of(passages)
        style = style_of(passages)
        if style is RESEARCH:
            style = replace(style, max_units=self.units)
        units = choose(question, kind, passages, [(f.texts, f.vectors) for f in found], query, self.words, style)
        log.debug("extractive: %s question, units %s", kind, [(u.passage, u.first, round(u.score, 3)) for u in units])
        text, cited, invalid = clean_citations(lay_out(units), set(in_prompt))
        return Generation(text, cited, invalid, in_prompt, self.name)
