"""Readers: turn source files into Documents (and Deletions), one module per format.

A new format is one new module with a ``read(path)`` generator, one line in ``READERS`` and one
rule in ``_SNIFF_RULES``.
"""
from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.readers import medquad, pubmed_xml, pubmedqa
from medrag.readers._util import XML_SAFE, Reader, parse_errors, peek

log = logging.getLogger(__name__)

__all__ = ["READERS", "iter_files", "read", "sniff"]

#: format name -> reader(path) yielding Documents and Deletions
READERS: dict[str, Reader] = {
    "pubmed_xml": pubmed_xml.read,
    "pubmedqa": pubmedqa.read,
    "medquad": medquad.read,
}

_EXPECTED = "expected PubMed XML, PubMedQA JSON or MedQuAD XML"
_JSON, _WS = json.JSONDecoder(), re.compile(r"\s*")


@dataclass(frozen=True)
class Head:
    """What sniffing sees of a file: its first bytes as text and, if it starts as XML, its tags."""

    text: str
    root: str | None = None  # local name of the XML root element
    tags: frozenset[str] = field(default_factory=frozenset)  # local names of the elements seen


def _first_record_keys(text: str) -> Iterator[str]:
    """Keys of the first value of a JSON object, read from a (possibly cut) prefix of the file."""
    def expect(pos: int, char: str) -> int:
        pos = _WS.match(text, pos).end()
        if text[pos:pos + 1] != char:
            raise ValueError(char)
        return pos + 1

    try:
        pos = expect(0, "{")
        _, pos = _JSON.raw_decode(text, _WS.match(text, pos).end())
        pos = expect(expect(pos, ":"), "{")
        while True:
            key, pos = _JSON.raw_decode(text, _WS.match(text, pos).end())
            yield key
            _, pos = _JSON.raw_decode(text, _WS.match(text, expect(pos, ":")).end())
            pos = expect(pos, ",")
    except (ValueError, IndexError):
        return


#: (format, test on the file's head), tried in order
_SNIFF_RULES: list[tuple[str, Callable[[Head], bool]]] = [
    ("pubmed_xml", lambda h: h.root in {"PubmedArticleSet", "MedlineCitationSet", "PubmedArticle",
                                        "MedlineCitation"}),
    ("medquad", lambda h: h.root in {"Document", "doc", "DiseaseFile"}
     and bool(h.tags & {"QAPairs", "qaPairs", "Focus", "doctitle-focus"})),
    ("pubmedqa", lambda h: h.root is None and "CONTEXTS" in _first_record_keys(h.text)),
]


def _head(path: Path, size: int = 8192) -> Head:
    """Peek at the first ``size`` bytes (gunzipped) and pull the element tags they open."""
    data = peek(path, size)
    parser = etree.XMLPullParser(events=("start",), **XML_SAFE)
    try:
        parser.feed(data)
    except etree.XMLSyntaxError:
        pass  # not XML, or malformed later on: the elements opened before the error still count
    tags = [etree.QName(elem).localname for _, elem in parser.read_events()]
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    return Head(text=text, root=tags[0] if tags else None, tags=frozenset(tags))


def _match(head: Head) -> str | None:
    """The first format whose sniff rule accepts the head."""
    return next((fmt for fmt, test in _SNIFF_RULES if test(head)), None)


def sniff(path: str | Path) -> str | None:
    """The format of a file judged by its content (its first 8 KB), or None when unknown."""
    try:
        return _match(_head(Path(path)))
    except (OSError, EOFError, zlib.error) as e:
        log.debug("cannot sniff %s: %s", path, e)
        return None


def read(path: str | Path, fmt: str | None = None) -> Iterator[Document | Deletion]:
    """Documents and Deletions of one file, its format sniffed unless given; errors are MedRAGError."""
    path = Path(path)
    if not path.is_file():
        raise MedRAGError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise MedRAGError(f"{path}: empty file")
    if fmt is None:
        with parse_errors(path):
            fmt = _match(_head(path))
        if fmt is None:
            raise MedRAGError(f"{path}: unknown format ({_EXPECTED})")
    if fmt not in READERS:
        raise MedRAGError(f"{path}: unknown format {fmt!r} (known: {', '.join(sorted(READERS))})")
    return READERS[fmt](path)


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files to read: named files as given, folders expanded recursively in sorted order.

    Hidden files and folders are skipped, and so are files in a folder whose format is unknown
    (with a warning); a missing path raises MedRAGError.
    """
    for path in map(Path, paths):
        if not path.exists():
            raise MedRAGError(f"no such file or directory: {path}")
        if not path.is_dir():
            yield path
            continue
        for child in _walk(path):
            if sniff(child) is None:
                log.warning("skipping %s: unknown format (%s)", child, _EXPECTED)
            else:
                yield child


def _walk(folder: Path) -> Iterator[Path]:
    """The non-hidden files under ``folder``, recursively, in sorted order."""
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            yield from _walk(child)
        elif child.is_file():
            yield child
