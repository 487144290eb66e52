"""Answer: what ``MedRAG.ask`` returns: text with [n] markers, the sources they resolve to, and how."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

DISCLAIMER = ("This answer summarises published sources for information only; it is not medical advice. "
              "Ask a doctor or other qualified clinician about your own situation.")


@dataclass(frozen=True)
class Citation:
    """A passage an answer cites as ``[n]``, resolved to its source."""

    n: int
    pmid: str | None
    url: str | None
    title: str
    journal: str | None
    year: int | None
    source: str | None
    score: float
    text: str

    def line(self) -> str:
        """``[n] Title. Journal (Year). PMID … URL`` for the terminal."""
        parts = [f"[{self.n}] {self.title or '(untitled)'}"]
        venue = " ".join(str(p) for p in (self.journal or self.source, f"({self.year})" if self.year else None) if p)
        if venue:
            parts.append(venue)
        if self.pmid:
            parts.append(f"PMID {self.pmid}")
        if self.url:
            parts.append(self.url)
        return ". ".join(parts)


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class Answer:
    """A cited answer. ``text`` ends with the not-medical-advice line; every ``[n]`` in it is in ``citations``."""

    question: str
    text: str
    citations: list[Citation]
    generator: str
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    invalid_citations: int = 0
    abstained: bool = False
    emergency: bool = False
    sentences: list[dict[str, Any]] = field(default_factory=list)  # {text, citations, support, supported}
    notices: list[str] = field(default_factory=list)  # emergency message, language notice: shown first
    removed_sentences: int = 0  # dropped: claims to be a doctor, or unsupported with strict

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def render(self) -> str:
        """The answer as a person reads it in a terminal."""
        body = self.text.removesuffix(DISCLAIMER).rstrip()
        for notice in self.notices:
            body = body.removeprefix(notice).lstrip()
        lines = [*(f"!! {notice}" for notice in self.notices), *([""] if self.notices else []), body, ""]
        if self.sentences:
            lines.append("Support (closest cited passage sentence, cosine):")
            lines += [f"  {s['support']:.2f} {'ok ' if s['supported'] else 'LOW'} "
                      f"{''.join(f'[{n}]' for n in s['citations']) or '[-]'} {_short(s['text'])}" for s in self.sentences]
            lines.append("")
        if self.citations:
            lines += ["Sources:", *(c.line() for c in self.citations), ""]
        elif self.abstained and self.retrieved:
            lines += ["Closest sources (they do not answer the question):",
                      *(f"  {r['title'] or r['doc_id']}. {r['url'] or ''}" for r in self.retrieved[:3]), ""]
        lines += [f"(answered by: {self.generator})", DISCLAIMER]
        return "\n".join(lines)
