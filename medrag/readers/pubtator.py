"""PubTator (BC5CDR, NCBI-disease ...): ``PMID|t|title``, ``PMID|a|abstract``, then tab-separated
annotation lines (``PMID start end mention type id``) or relations (``PMID CID a b``); a blank line
ends a record. One Document per record, id ``pmid:N``; ``entities`` lists the distinct annotated
mentions as ``{"text", "type"}`` in order of first appearance.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.readers._util import norm, open_text, pubmed_record, reader

log = logging.getLogger(__name__)


@reader
def read(path: Path) -> Iterator[Document | Deletion]:
    """Yield one Document per record with a title or abstract."""
    record: dict[str, Any] = {}
    with open_text(path) as fh:
        for line_no, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                yield from _document(record)
                record = {}
                continue
            pmid, sep, rest = line.partition("|")
            if sep and rest[:2] in ("t|", "a|") and pmid.isdigit():
                record[rest[0]] = norm(rest[2:])
            else:
                pmid, *fields = line.split("\t")
                if not pmid.isdigit() or len(fields) not in (3, 4, 5, 6):
                    raise MedRAGError(f"{path}: malformed PubTator at line {line_no}: {line[:60]!r}")
                if len(fields) >= 4:  # an annotation: start, end, mention, type[, id[, parts]]
                    record.setdefault("entities", {})[(norm(fields[2]), norm(fields[3]))] = None
            if record.setdefault("pmid", pmid) != pmid:
                raise MedRAGError(f"{path}: malformed PubTator at line {line_no}: PMID {pmid} inside the "
                                  f"record of {record['pmid']} (no blank line between records?)")
    yield from _document(record)


def _document(record: dict[str, Any]) -> Iterator[Document]:
    """The Document of one parsed record, if it has a title or an abstract."""
    if record.get("t") or record.get("a"):
        yield pubmed_record(record["pmid"], record.get("t", ""), record.get("a", ""), "PubTator",
                            entities=[{"text": t, "type": k} for t, k in record.get("entities", {})])
    elif record:
        log.debug("PubTator record %s has neither title nor abstract: skipped", record.get("pmid"))
