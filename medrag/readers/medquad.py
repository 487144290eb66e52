"""MedQuAD consumer-health XML: one Document per question/answer pair with a non-empty answer.

Most files are ``<Document id source url><Focus><QAPairs><QAPair pid><Question qid qtype><Answer>``;
a few use ``<doc docid corpus url><doctitle-focus><qaPairs><pair><question><answer>`` (NINDS) or a
``<DiseaseFile fid ...>`` root (CDC): tag names are matched case-insensitively and attributes by alias.

Ids are ``medquad:{source}:{file stem}-{pid}``: the ``qid`` alone is not unique, since every
collection numbers its files from 0000001 and some CancerGov files share one document id.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from medrag.documents import Deletion, Document
from medrag.readers._util import XML_SAFE, compact, inner_text, norm, open_bytes, reader

log = logging.getLogger(__name__)

#: line breaks in the answers: a newline, a run of 3+ blanks not followed by a lower-case word, or
#: 2+ blanks before a " - " bullet (the scraped pages' paragraphs and lists)
_BREAK = re.compile(r"\s*\n\s*|[^\S\n]{3,}(?![a-z])|[^\S\n]{2,}(?=-\s)")


@reader
def read(path: Path) -> Iterator[Document | Deletion]:
    """Yield one Document per QAPair whose answer is not empty."""
    with open_bytes(path) as fh:
        root = etree.parse(fh, etree.XMLParser(**XML_SAFE)).getroot()
    source = root.get("source") or root.get("corpus") or path.parent.name
    focus = inner_text(_child(root, "focus", "doctitle-focus"))
    pairs = (e for e in root.iter(etree.Element) if e.tag.lower() in ("qapair", "pair"))
    for n, pair in enumerate(pairs, 1):
        question, answer = _child(pair, "question"), answer_text(_child(pair, "answer"))
        if not answer:
            continue
        title, attrs = inner_text(question), question.attrib if question is not None else {}
        yield Document(
            id=f"medquad:{source}:{path.name.split('.')[0]}-{pair.get('pid') or n}",
            title=title,
            text=answer,
            metadata=compact({
                "title": title,
                "question": title,
                "qid": attrs.get("qid"),
                "focus": focus,
                "qtype": attrs.get("qtype"),
                "url": root.get("url"),
                "source": source,
                "source_type": "consumer_health",
            }),
        )


def answer_text(elem: etree._Element | None) -> str:
    """The answer with its paragraphs separated by blank lines and its ``- `` bullets one per line."""
    out = ""
    for part in _BREAK.split("".join(elem.itertext()) if elem is not None else ""):
        part = norm(part)
        if part:
            out += ("\n" if part.startswith("- ") else "\n\n") + part if out else part
    return out


def _child(elem: etree._Element, *names: str) -> etree._Element | None:
    """The first child element whose tag, lower-cased, is one of ``names``."""
    return next((c for c in elem.iterchildren(etree.Element) if c.tag.lower() in names), None)
