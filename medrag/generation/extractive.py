"""ExtractiveGenerator: the passage sentences closest to the question, each cited, no language model."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from medrag.documents import Chunk
from medrag.embedding import Embedder
from medrag.errors import MedRAGError
from medrag.generation import Generation, GeneratorEnv
from medrag.generation.citations import clean_citations, split_sentences

log = logging.getLogger(__name__)

REDUNDANT = 0.9  # a sentence this close (cosine) to a picked one adds nothing


class ExtractiveOptions(BaseModel):
    """The extractive answerer's options (``generation.options.extractive``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sentences: int = Field(3, gt=0, description="passage sentences in an answer")


class ExtractiveGenerator:
    """Picks the ``n_sentences`` passage sentences most similar to the question, with redundancy control."""

    name = "extractive"
    Options = ExtractiveOptions

    @classmethod
    def from_settings(cls, model: str, options: ExtractiveOptions, env: GeneratorEnv) -> ExtractiveGenerator:
        if env.embedder is None:
            raise MedRAGError("the extractive generator needs an embedder")
        return cls(env.embedder, n_sentences=options.sentences)

    def __init__(self, embedder: Embedder, n_sentences: int = 3, min_words: int = 4) -> None:
        self.embedder = embedder
        self.n_sentences = n_sentences
        self.min_words = min_words

    def candidates(self, passages: Sequence[Chunk]) -> list[tuple[str, int]]:
        """Distinct (sentence, passage number) pairs long enough to answer, source citations removed."""
        seen: dict[str, int] = {}
        for n, chunk in enumerate(passages, start=1):
            for sentence in split_sentences(chunk.text):
                sentence = clean_citations(sentence, set())[0]  # the source's own reference markers
                words = len(sentence.split())
                # a short line without closing punctuation is a heading ("Causes of Anemia"), not an answer
                if words >= self.min_words and (words >= 8 or sentence.rstrip("\"')]").endswith((".", "!", "?"))):
                    seen.setdefault(sentence, n)
        return list(seen.items())

    def generate(self, question: str, passages: Sequence[Chunk],
                 on_token: Callable[[str], None] | None = None) -> Generation:
        """The best sentences in score order, each followed by `` [n]`` of its passage (nothing to stream:
        ``on_token`` is not called)."""
        in_prompt = list(range(1, len(passages) + 1))
        candidates = self.candidates(passages)
        if not candidates:
            return Generation("", [], 0, in_prompt, self.name)
        query = self.embedder.embed_queries([question])[0]
        vectors = self.embedder.embed_documents([s for s, _ in candidates])  # one call for all sentences
        scores = vectors @ query
        picked: list[int] = []
        for i in np.argsort(-scores, kind="stable"):
            if len(picked) == self.n_sentences:
                break
            if not picked or float(np.max(vectors[picked] @ vectors[i])) <= REDUNDANT:
                picked.append(int(i))
        log.debug("extractive: %d candidate sentences, picked %s", len(candidates), picked)
        text = " ".join(f"{candidates[i][0]} [{candidates[i][1]}]" for i in picked)
        text, cited, invalid = clean_citations(text, set(in_prompt))
        return Generation(text, cited, invalid, in_prompt, self.name)
