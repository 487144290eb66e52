"""Document and Chunk: plain records of text plus metadata, the currency between the rooms."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

#: metadata keys every reader fills where its source gives them
METADATA_KEYS = ("pmid", "title", "journal", "year", "doi", "url", "section", "source", "source_type")


@dataclass(frozen=True)
class Document:
    """One source record: a PubMed citation, a consumer-health answer, a guideline.

    ``id`` is stable across re-ingests of the same record (``pmid:123``, ``medquad:0000001-1``);
    ``metadata`` holds the keys of ``METADATA_KEYS`` the source provides, plus any others
    (``mesh``, ``question``, ``focus``, ``sections`` ...).
    """

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """SHA-1 of title and text: two documents with the same hash hold the same content."""
        return hashlib.sha1(f"{self.title}\x00{self.text}".encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """A piece of one document, small enough for the embedder; carries its document's metadata."""

    doc_id: str
    index: int
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # row id in the chunk store, set once stored
    #: a passage widened by its document neighbours: the stored chunks whose texts, one per line, make ``text``
    parts: tuple[int, ...] = ()

    @property
    def embed_text(self) -> str:
        """The text the embedder sees: the document title in front of the chunk."""
        return f"{self.title}\n{self.text}" if self.title else self.text

    @property
    def pmid(self) -> str | None:
        return self.metadata.get("pmid")

    @property
    def url(self) -> str | None:
        """A link for the chunk: its URL, or the PubMed page of its PMID."""
        url = self.metadata.get("url")
        if url:
            return str(url)
        return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/" if self.pmid else None


@dataclass(frozen=True)
class Deletion:
    """A source's instruction to remove a document (PubMed update files' ``<DeleteCitation>``)."""

    id: str
