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
from medrag.generation.citations import clean_citations
from medrag.sentences import SentenceVectors

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
        return cls(env.embedder, n_sentences=options.sentences, sentences=env.sentences)

    def __init__(self, embedder: Embedder, n_sentences: int = 3, min_words: int = 4,
                 sentences: SentenceVectors | None = None) -> None:
        self.embedder = embedder
        self.n_sentences = n_sentences
        self.min_words = min_words
        self.sentences = sentences or SentenceVectors(embedder)  # stored vectors when the index has them

    def candidates(self, passages: Sequence[Chunk]) -> list[tuple[str, int, np.ndarray]]:
        """Distinct (sentence, passage number, vector) triples long enough to answer, source citations removed."""
        seen: dict[str, tuple[int, np.ndarray]] = {}
        for n, found in enumerate(self.sentences.of(passages), start=1):
            for sentence, vector in zip(found.texts, found.vectors):
                words = len(sentence.split())
                # a short line without closing punctuation is a heading ("Causes of Anemia"), not an answer
                if words >= self.min_words and (words >= 8 or sentence.rstrip("\"')]").endswith((".", "!", "?"))):
                    seen.setdefault(sentence, (n, vector))
        return [(s, n, v) for s, (n, v) in seen.items()]

    def generate(self, question: str, passages: Sequence[Chunk],
                 on_token: Callable[[str], None] | None = None) -> Generation:
        """The best sentences in score order, each followed by `` [n]`` of its passage (nothing to stream:
        ``on_token`` is not called). Sentence vectors come from the index when it stores them."""
        in_prompt = list(range(1, len(passages) + 1))
        candidates = self.candidates(passages)
        if not candidates:
            return Generation("", [], 0, in_prompt, self.name)
        query = self.embedder.embed_queries([question])[0]
        vectors = np.stack([v for _, _, v in candidates])
        scores = vectors @ query
        picked: list[int] = []
        for i in np.argsort(-scores, kind="stable"):
            if len(picked) == self.n_sentences:
                break
            if not picked or float(np.max(vectors[picked] @ vectors[i])) <= REDUNDANT:
                picked.append(int(i))
        log.debug("extractive: %d candidate sentences, picked %s", len(candidates), picked)
        # one line each: a sentence without closing punctuation stays apart from the next when the answer is split
        text = "\n".join(f"{candidates[i][0]} [{candidates[i][1]}]" for i in picked)
        text, cited, invalid = clean_citations(text, set(in_prompt))
        return Generation(text, cited, invalid, in_prompt, self.name)
