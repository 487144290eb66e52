"""Answer: what ``MedRAG.ask`` returns, in typed parts, with one terminal rendering and one JSON schema.

The parts: ``notices`` (the emergency message first, then other notices), ``body`` (the answer sentences
with their ``[n]`` markers, or the abstention message), ``disclaimer`` (the not-medical-advice line),
``sentences`` (each checked against the passages it cites), ``citations`` (the cited passages, resolved
to their sources) and ``retrieved`` (every passage the answer was written from). ``text`` is the three
text parts joined, as a person reads them. ``Answer.json_schema()`` is the schema that ``medrag ask --json``
and the server's ``/v1/ask`` follow (docs/answer.md).
"""
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from medrag.i18n.messages import labels as language_labels
from medrag.i18n.messages import message

#: the words medrag itself writes, in English (``medrag.i18n.messages`` holds every language's)
NO_EVIDENCE = message("no_evidence")
NO_SENTENCE = message("no_sentence")
ABSTAIN = message("abstain")
DISCLAIMER = message("disclaimer")


class Part(BaseModel):
    """A frozen part of an answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Citation(Part):
    """A passage an answer cites as ``[n]``, resolved to its source."""

    n: int
    pmid: str | None
    url: str | None
    title: str
    journal: str | None = None
    year: int | None = None
    source: str | None = None
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


class Passage(Part):
    """A retrieved passage, numbered as the generator saw it (``[n]``)."""

    n: int
    chunk_id: int | None
    doc_id: str
    pmid: str | None
    url: str | None
    title: str
    score: float

    @classmethod
    def from_hit(cls, n: int, hit: Any) -> Passage:
        """The ``n``-th retrieved hit (``medrag.retrieval.Hit``: a chunk and its score) as a Passage."""
        chunk = hit.chunk
        return cls(n=n, chunk_id=chunk.id, doc_id=chunk.doc_id, pmid=chunk.pmid, url=chunk.url, title=chunk.title,
                   score=round(hit.score, 4))


class Sentence(Part):
    """An answer sentence, the passages it cites and how closely the closest of them supports it."""

    text: str
    citations: list[int]
    support: float = Field(description="cosine to the closest sentence of a cited passage")
    supported: bool
    layout: Literal["line", "item", "same"] = Field(
        "line", description="where it stands in the body: starts a line, starts a list item, or goes on the line")


class Answer(Part):
    """A cited answer. Every ``[n]`` in ``body`` is in ``citations``; ``text`` ends with the disclaimer."""

    question: str
    body: str
    citations: list[Citation] = []
    generator: str
    retrieved: list[Passage] = []
    invalid_citations: int = Field(0, description="markers removed: they named no passage in the prompt")
    abstained: bool = False
    emergency: bool = False
    sentences: list[Sentence] = []
    notices: list[str] = Field([], description="emergency message first, then other notices")
    removed_sentences: int = Field(0, description="dropped: claims to be a doctor, or unsupported with strict")
    disclaimer: str = DISCLAIMER
    language: str = Field("en", description="the question's language (ISO 639-1)")
    query: str = Field("", description="what was searched, when it differs from the question (translation)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def text(self) -> str:
        """Notices, body and disclaimer as one text."""
        return "\n\n".join([*self.notices, self.body, self.disclaimer])

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of ``to_dict()`` (``medrag ask --json``, the server's ``/v1/ask``)."""
        return cls.model_json_schema(mode="serialization")

    def render(self, labels: dict[str, str] | None = None) -> str:
        """The answer as a person reads it in a terminal, the words medrag adds in the answer's language
        (``labels`` overrides them)."""
        words = {**language_labels(self.language), **(labels or {})}
        lines = [*(f"!! {notice}" for notice in self.notices), *([""] if self.notices else []), self.body, ""]
        if self.query:  # what was searched, so a reader can see (and correct) what medrag understood
            lines += [words["query"].format(query=self.query), ""]
        if self.sentences:
            lines.append(words["support"])
            lines += [f"  {s.support:.2f} {words['supported'] if s.supported else words['unsupported']} "
                      f"{''.join(f'[{n}]' for n in s.citations) or '[-]'} {_short(s.text)}" for s in self.sentences]
            lines.append("")
        if self.citations:
            lines += [words["sources"], *(c.line() for c in self.citations), ""]
        elif self.abstained and self.retrieved:
            lines += [words["closest"], *(f"  {r.title or r.doc_id}. {r.url or ''}" for r in self.retrieved[:3]), ""]
        lines += [words["answered_by"].format(generator=self.generator), self.disclaimer]
        return "\n".join(lines)


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


__all__ = ["ABSTAIN", "DISCLAIMER", "NO_EVIDENCE", "NO_SENTENCE", "Answer", "Citation", "Passage", "Sentence"]
