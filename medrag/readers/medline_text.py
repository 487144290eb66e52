"""MEDLINE/PubMed text format (``PMID- ...`` records, as PubMed's "MEDLINE" export), via Bio.Medline.

Documents look like those of pubmed_xml (id ``pmid:N``, the same metadata keys), so a citation read
from either format is the same document: a structured abstract (``BACKGROUND: ... METHODS: ...`` in
one ``AB`` field) is split at its upper-case labels into ``LABEL: text`` paragraphs, and MeSH headings
lose their ``*`` (major topic) marks and ``/qualifiers``, as XML's DescriptorName has them.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from Bio import Medline

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.readers._util import norm, open_text, pubmed_record, reader, year_of

log = logging.getLogger(__name__)

#: an abstract label: upper-case words and a colon, at the start or after a sentence end
_LABEL = re.compile(r"(?:^|(?<=[.?!)\]]) )([A-Z][A-Z0-9 ,&/()-]*[A-Z)]): ")


@reader
def read(path: Path) -> Iterator[Document | Deletion]:
    """Yield one Document per record with a title or abstract; a record without a numeric PMID is an error."""
    with open_text(path) as fh:
        for n, record in enumerate(Medline.parse(fh), 1):
            pmid = norm(record.get("PMID"))
            if not pmid.isdigit():
                raise MedRAGError(f"{path}: malformed MEDLINE record {n}: no PMID line")
            title = norm(record.get("TI") or record.get("TT"))
            labels, paragraphs = _abstract(norm(record.get("AB")))
            if not title and not paragraphs:
                log.debug("pmid %s has neither title nor abstract: skipped", pmid)
                continue
            ids = [*record.get("AID", []), *_list(record.get("LID"))]
            yield pubmed_record(
                pmid, title, "\n\n".join(paragraphs), "PubMed",
                journal=norm(record.get("JT") or record.get("TA")),
                year=year_of(record.get("DP")),
                doi=next((i.removesuffix("[doi]").strip() for i in ids if i.endswith("[doi]")), None),
                mesh=[norm(m.split("/")[0].lstrip("*")) for m in record.get("MH", [])],
                sections=labels or None,
            )


def _abstract(text: str) -> tuple[list[str], list[str]]:
    """(labels, paragraphs) of an abstract: ``LABEL: text`` paragraphs when it starts with a label."""
    if not _LABEL.match(text):
        return [], [text] if text else []
    parts = _LABEL.split(text)[1:]  # label, text, label, text, ...
    labels, bodies = parts[::2], [norm(p) for p in parts[1::2]]
    return labels, [f"{label}: {body}" for label, body in zip(labels, bodies, strict=True)]


def _list(value: str | list[str] | None) -> list[str]:
    """A MEDLINE field as a list (Bio.Medline gives single-valued fields as strings)."""
    return [value] if isinstance(value, str) else list(value or [])
