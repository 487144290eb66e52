"""ExtractiveGenerator: the passage sentences closest to the question, each cited, no language model."""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

import numpy as np

from medrag.documents import Chunk
from medrag.embedding import Embedder
from medrag.generation import Generation, clean_citations

log = logging.getLogger(__name__)

#: newlines and " - " list bullets always end a sentence
_BLOCKS = re.compile(r"\s*\n\s*|\s+[-•*]\s+")
#: a possible sentence end: terminal punctuation, closing quotes/brackets, space, then a capital/digit/opener
_END = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
#: words whose period does not end a sentence (e.g., et al., vs., Fig.) and initials ("J. Smith")
_ABBREVIATION = re.compile(r"(?:(?<![\w.])(?i:e\.g|i\.e|et al|vs|cf|fig|figs|approx|ca|no|nos|dr|mr|mrs|ms|"
                           r"prof|st|resp|ref|refs|eq|vol|pp|inc|ltd|jr|sr)|(?<![\w.])[A-Z])\.$")
#: a structured-abstract section label at the start of a sentence ("RESULTS:", "BACKGROUND AND AIMS:")
_LABEL = re.compile(r"^[A-Z][A-Z0-9 &/,-]{2,60}:\s*")
REDUNDANT = 0.9  # a sentence this close (cosine) to a picked one adds nothing


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, section labels removed; abbreviations, decimals and initials do not split."""
    sentences: list[str] = []
    for block in _BLOCKS.split(text):
        start = 0
        for match in _END.finditer(block):
            dot = match.start()
            if block[dot] == "." and _ABBREVIATION.search(block[max(start, dot - 11):dot + 1]):
                continue
            sentences.append(block[start:match.end()])
            start = match.end()
        sentences.append(block[start:])
    return [s for s in (_LABEL.sub("", s.strip()) for s in sentences) if s]


class ExtractiveGenerator:
    """Picks the ``n_sentences`` passage sentences most similar to the question, with redundancy control."""

    name = "extractive"

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
