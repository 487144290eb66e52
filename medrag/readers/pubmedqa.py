"""PubMedQA abstracts JSON: ``{pmid: {CONTEXTS, LABELS, LONG_ANSWER, MESHES, YEAR, [QUESTION]}}``."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.readers._util import compact, norm, open_bytes, pubmed_url, reader

log = logging.getLogger(__name__)


def records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(pmid, record)`` of a PubMedQA-format file (the one parser of the format: readers, datasets, training)."""
    with open_bytes(path) as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise MedRAGError(f"{path}: expected a JSON object of {{pmid: record}}, got {type(data).__name__}")
    for pmid, record in data.items():
        if not isinstance(record, dict):
            raise MedRAGError(f"{path}: record {pmid!r} is not a JSON object")
        yield str(pmid), record


@reader
def read(path: Path) -> Iterator[Document | Deletion]:
    """Yield one Document per PMID: the labelled CONTEXTS, then ``CONCLUSIONS: LONG_ANSWER``."""
    for pmid, record in records(path):
        labels = [norm(label) for label in record.get("LABELS") or []]
        contexts = [norm(c) for c in record.get("CONTEXTS") or []]
        labels += [""] * (len(contexts) - len(labels))
        paragraphs = [f"{label}: {c}" if label else c for label, c in zip(labels, contexts) if c]
        conclusion = norm(record.get("LONG_ANSWER"))
        if conclusion:
            paragraphs.append(f"CONCLUSIONS: {conclusion}")
            labels.append("CONCLUSIONS")
        if not paragraphs:
            continue
        title = norm(record.get("QUESTION"))
        year = str(record.get("YEAR") or "")
        yield Document(
            id=f"pmid:{pmid}",
            title=title,
            text="\n\n".join(paragraphs),
            metadata=compact({
                "pmid": str(pmid),
                "title": title,
                "year": int(year) if year.isdigit() else None,
                "mesh": [norm(m) for m in record.get("MESHES") or []],
                "sections": [label for label in labels if label] or None,
                "url": pubmed_url(pmid),
                "source": "PubMedQA",
                "source_type": "pubmed",
            }),
        )
