"""Exact answers for BioASQ factoid and list questions, extracted from the retrieved passages.

No language model here can name an entity, so candidates are the short phrases of the passages: maximal runs of
up to ``MAX_WORDS`` words holding no stop word and no word of the question, split at punctuation. Each
occurrence adds ``1 / rank`` of its passage, twice that for entity-looking phrases; the best-scored phrases are the answer (factoid: the ranked
candidates BioASQ scores by strict/lenient accuracy and MRR; list: the items).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from bm25s.stopwords import STOPWORDS_EN

MAX_WORDS = 4
ENTITY_BOOST = 2.0  # chosen on BioASQ 7B1-7B3 gold snippets (1, 2, 3, 5 tried)
WORD = re.compile(r"[A-Za-z0-9α-ωΑ-Ω](?:[A-Za-z0-9α-ωΑ-Ω\-+/']*[A-Za-z0-9α-ωΑ-Ω+])?")
BREAK = re.compile(r"[,;:!?()\[\]{}\"]|\.(?:\s|$)|\s[-–]\s")
#: words that open or fill questions and passages without naming anything
GENERIC = frozenset({*STOPWORDS_EN, "which", "what", "who", "whom", "whose", "how", "many", "much", "also", "may",
                     "can", "could", "would", "should", "shown", "show", "shows", "used", "using", "use", "well",
                     "however", "including", "include", "includes", "associated", "patients", "study", "studies",
                     "results", "found", "role", "effect", "effects", "known", "called", "named", "one", "two",
                     "both", "among", "within", "between", "via", "due", "whereas", "while", "although", "here",
                     "we", "our", "its", "their", "has", "have", "had", "been", "being", "were", "was", "is", "are"})


def _phrases(text: str, skip: set[str]) -> list[str]:
    """The maximal runs of content words of ``text`` (at most ``MAX_WORDS`` long), in order."""
    out = []
    for piece in BREAK.split(text):
        run: list[str] = []
        for word in [*WORD.findall(piece), ""]:
            low = word.lower()
            if word and low not in GENERIC and low not in skip and len(word) > 1:
                run.append(word)
                continue
            if 0 < len(run) <= MAX_WORDS:
                out.append(" ".join(run))
            run = []
    return out


def _shape(phrase: str) -> float:
    """Entity-looking phrases (a capital or digit inside a word: CFTR, IL-6, Dako's 22C3) count more."""
    return ENTITY_BOOST if any(ch.isupper() or ch.isdigit() for word in phrase.split() for ch in word[1:]) else 1.0


def candidates(question: str, passages: Sequence[str], n: int = 5) -> list[str]:
    """The ``n`` best answer phrases for ``question`` in ``passages`` (best passage first), best first."""
    skip = {w.lower() for w in WORD.findall(question)}
    scores: dict[str, float] = {}
    surface: dict[str, str] = {}
    for rank, passage in enumerate(passages, 1):
        for phrase in _phrases(passage, skip):
            key = phrase.lower()
            scores[key] = scores.get(key, 0.0) + _shape(phrase) / rank
            surface.setdefault(key, phrase)
    order = sorted(scores, key=lambda key: -scores[key])  # stable: ties keep the order of first appearance
    return [surface[key] for key in order[:n]]
