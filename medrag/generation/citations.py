"""The ``[n]`` citation grammar and sentence splitting, shared by the generators and the safety checks."""
from __future__ import annotations

import re

#: a citation marker (``[3]``, ``[1, 2]``, ``[1,2]``, ``[1-3]``, ``[1–3]``) with the spaces around it
CITATION = re.compile(r"([ \t]*)\[\s*(\d+(?:\s*[-–,]\s*\d+)*)\s*\]([ \t]*)")
MAX_RANGE = 50  # ``[1-3]`` expands to 1, 2, 3; a wider range is read as its two ends

#: newlines and " - " list bullets always end a sentence
_BLOCKS = re.compile(r"\s*\n\s*|\s+[-•*]\s+")
#: a possible sentence end: terminal punctuation, closing quotes/brackets, space, then a capital/digit/opener
_END = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
#: words whose period does not end a sentence (e.g., et al., vs., Fig.) and initials ("J. Smith")
_ABBREVIATION = re.compile(r"(?:(?<![\w.])(?i:e\.g|i\.e|et al|vs|cf|fig|figs|approx|ca|no|nos|dr|mr|mrs|ms|"
                           r"prof|st|resp|ref|refs|eq|vol|pp|inc|ltd|jr|sr)|(?<![\w.])[A-Z])\.$")
#: a list bullet opening a line ("- item", "• item"): the item is quoted, and checked, without it
BULLET = re.compile(r"^[-•*]\s+")
#: a structured-abstract section label at the start of a sentence ("RESULTS:", "BACKGROUND AND AIMS:")
_LABEL = re.compile(r"^[A-Z][A-Z0-9 &/,-]{2,60}:\s*")
#: a sentence end followed by its markers ("... risk.[1][2]"): the markers belong to that sentence
_STOP_THEN_MARKERS = re.compile(rf"([.!?])((?:{CITATION.pattern})+)")


def marker_numbers(body: str) -> list[int]:
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
        numbers = marker_numbers(body)
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


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Where each of ``split_sentences(text)`` lies in ``text``: ``(start, end)`` character offsets."""
    spans: list[tuple[int, int]] = []
    edges = [0, *(x for m in _BLOCKS.finditer(text) for x in (m.start(), m.end())), len(text)]
    for block_start, block_end in zip(edges[::2], edges[1::2]):
        block, start, ends = text[block_start:block_end], 0, []
        for match in _END.finditer(block):
            dot = match.start()
            if block[dot] == "." and _ABBREVIATION.search(block[max(start, dot - 11):dot + 1]):
                continue
            ends.append((start, match.end()))
            start = match.end()
        ends.append((start, len(block)))
        for a, b in ends:
            raw = block[a:b]
            a += len(raw) - len(raw.lstrip())
            b -= len(raw) - len(raw.rstrip())
            label = _LABEL.match(block[a:b])
            if label:
                a += label.end()
            if a < b:
                spans.append((block_start + a, block_start + b))
    return spans


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, section labels removed; abbreviations, decimals and initials do not split."""
    return [text[a:b] for a, b in sentence_spans(text)]


def answer_sentences(text: str) -> list[str]:
    """``split_sentences`` with ``[n]`` markers kept in the sentence they follow, and Chinese 。！？ ends."""
    text = _STOP_THEN_MARKERS.sub(lambda m: " " + m.group(0)[1:].strip() + m.group(1) + " ", text)
    return [p for s in split_sentences(text) for p in re.split(r"(?<=[。！？])", s) if p.strip()]


def split_answer(text: str) -> list[tuple[str, list[int]]]:
    """An answer's sentences without their ``[n]`` markers, each with the numbers it cites (in order)."""
    out = []
    for sentence in answer_sentences(text):
        numbers = [n for m in CITATION.finditer(sentence) for n in marker_numbers(m.group(2))]
        clean = clean_citations(sentence, set())[0]
        if clean:
            out.append((clean, list(dict.fromkeys(numbers))))
    return out


def passage_sentences(passage: str) -> list[str]:
    """A passage's sentences without its own reference markers (the whole passage if it has none)."""
    return [clean_citations(s, set())[0] for s in split_sentences(passage)] or [passage]


__all__ = ["BULLET", "CITATION", "MAX_RANGE", "answer_sentences", "clean_citations", "marker_numbers",
           "passage_sentences", "sentence_spans", "split_answer", "split_sentences"]
