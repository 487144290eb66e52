"""The text analysis every lexical backend shares, so their query terms are the same: lower case, bm25s's
``\\w\\w+`` tokens, English stop words (bm25s's list), Snowball stems (PyStemmer)."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import bm25s
import Stemmer

from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

#: words that frame a question rather than name its topic; left out of a lexical store's ``coverage``
QUESTION_WORDS = ("what", "which", "who", "whom", "whose", "when", "where", "why", "how", "do", "does", "did",
                  "can", "could", "should", "would", "may", "might", "has", "have", "had", "any", "you", "i", "me",
                  "my", "we", "about", "information", "tell", "know")


def stemmer(language: str | None) -> Stemmer.Stemmer | None:
    """PyStemmer's Snowball stemmer for ``language`` (None: no stemming); an unknown language is a clear error."""
    if not language:
        return None
    try:
        return Stemmer.Stemmer(language)
    except KeyError:
        raise MedRAGError(f"unknown stemmer language {language!r}; choose from "
                          f"{', '.join(Stemmer.algorithms())}") from None


def tokenize(texts: Sequence[str], stopwords: str | Sequence[str] | None, stem: Stemmer.Stemmer | None, *,
             ids: bool = False) -> Any:
    """Each text's stems (``ids``: bm25s's ``Tokenized``, token ids into a vocabulary built for these texts)."""
    return bm25s.tokenize(list(texts), lower=True, stopwords=stopwords or None, stemmer=stem, return_ids=ids,
                          show_progress=False)


def question_stems(stem: Stemmer.Stemmer | None) -> set[str]:
    """The stems of ``QUESTION_WORDS``."""
    return set(stem.stemWords(QUESTION_WORDS) if stem else QUESTION_WORDS)


__all__ = ["QUESTION_WORDS", "question_stems", "stemmer", "tokenize"]
