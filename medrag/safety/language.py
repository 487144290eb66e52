"""Which script a question is in, and a notice when the index's embedder cannot read it."""
from __future__ import annotations

import unicodedata

MULTILINGUAL_EMBEDDERS = ("paraphrase-multilingual-MiniLM-L12-v2", "intfloat/multilingual-e5-small")


def dominant_script(text: str) -> str | None:
    """The script most of ``text`` is in ("LATIN", "CJK", "CYRILLIC", "ARABIC", ...), None if it has no letters.

    Letters are counted by their Unicode name's first word; a CJK character (about a word) counts as 3.
    """
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            script = unicodedata.name(ch, "UNKNOWN").split()[0]
            cjk = script in ("CJK", "HIRAGANA", "KATAKANA", "HANGUL")
            script = "CJK" if cjk else script
            counts[script] = counts.get(script, 0) + (3 if cjk else 1)
    return max(counts, key=counts.__getitem__) if counts else None


def is_multilingual(embedder_name: str) -> bool:
    """Whether an embedder's name says it was trained on many languages."""
    name = embedder_name.lower()
    return any(m in name for m in ("multilingual", "labse", "bge-m3", "xlm"))


def language_notice(question: str, embedder_name: str) -> str | None:
    """A notice when a question is mostly in a non-Latin script and the embedder knows English only."""
    script = dominant_script(question)
    if script in (None, "LATIN") or is_multilingual(embedder_name):
        return None
    name = script if script == "CJK" else script.title()
    return (f"This question is mostly in {name} script, but the index's embedder ({embedder_name}) was "
            f"trained on English only, so the passages found may be unrelated. Ask in English, or build "
            f"the index with a multilingual embedder such as {' or '.join(MULTILINGUAL_EMBEDDERS)}.")



__all__ = ["MULTILINGUAL_EMBEDDERS", "dominant_script", "is_multilingual", "language_notice"]
