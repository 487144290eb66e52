"""JSON Lines: one JSON object a line. Two registry formats read here:

- ``bioasq_snippets``: BioASQ gold snippets (``pmid, section, offset, end, text``), one Document per
  line with id ``bioasq:{pmid}:{section}:{offset}-{end}``. The end offset is part of the id because
  the real file has 1,540 (pmid, section, offset) keys with 2-3 snippets of different lengths each;
  identical lines (none in the real file) are skipped.
- ``jsonl``: any objects with a ``text`` field; id from ``id`` or ``{file stem}:{line}``, title from
  ``title``, every other field kept as metadata (``source_type`` defaults to "text").
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.readers._util import compact, json_lines, norm, pubmed_url, reader

log = logging.getLogger(__name__)


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; a line that is not a JSON object with a text is an error."""
    for line_no, record in json_lines(path):
        if not isinstance(record.get("text"), str):
            raise MedRAGError(f"{path}: line {line_no} has no \"text\" string")
        yield line_no, record


@reader
def read_bioasq(path: Path) -> Iterator[Document | Deletion]:
    """Yield one Document per snippet line."""
    seen: set[str] = set()
    for line_no, r in _records(path):
        missing = {"pmid", "section", "offset", "end"} - r.keys()
        if missing:
            raise MedRAGError(f"{path}: line {line_no} lacks {', '.join(sorted(missing))}")
        doc_id = f"bioasq:{r['pmid']}:{r['section']}:{r['offset']}-{r['end']}"
        text = norm(r["text"])
        if doc_id in seen or not text:
            continue
        seen.add(doc_id)
        pmid = str(r["pmid"])
        yield Document(id=doc_id, title="", text=text, metadata=compact({
            "pmid": pmid, "section": r["section"], "offset": r["offset"], "end": r["end"],
            "url": pubmed_url(pmid), "source": "BioASQ", "source_type": "pubmed"}))


@reader
def read(path: Path) -> Iterator[Document | Deletion]:
    """Yield one Document per line with a non-empty ``text``."""
    for line_no, r in _records(path):
        text = r.pop("text").strip()
        if not text:
            continue
        given = r.pop("id", None)
        doc_id = str(given) if given not in (None, "") else f"{path.name.split('.')[0]}:{line_no}"
        title = norm(str(r.get("title") or ""))
        yield Document(id=doc_id, title=title, text=text,
                       metadata=compact({"source_type": "text", **r, "title": title}))
