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


@dataclass(frozen=True)
class Answer:
    """A cited answer. ``text`` ends with the not-medical-advice line; every ``[n]`` in it is in ``citations``."""

    question: str
    text: str
    citations: list[Citation]
    generator: str
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    invalid_citations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def render(self) -> str:
        """The answer as a person reads it in a terminal."""
        body = self.text.removesuffix(DISCLAIMER).rstrip()
        lines = [body, ""]
        if self.citations:
            lines += ["Sources:", *(c.line() for c in self.citations), ""]
        lines += [f"(answered by: {self.generator})", DISCLAIMER]
        return "\n".join(lines)
