"""Readers: turn source files into Documents (and Deletions), one module per format.

A new format is one new module with a ``read(path)`` generator, one line in ``READERS`` and one
rule in ``_SNIFF_RULES``; or, without editing medrag, a recipe's ``format = "package.module:function"``.

Formats are told apart by content (the first 8 KB, gunzipped): XML root and tags, JSON keys, line
shapes, the ``%PDF-`` magic. Only text-like formats with no mark of their own (Markdown, plain
text) use the file name, as a tie-breaker, and only for files met in a folder walk, where the junk
that sits beside corpora must be skipped: there, ``.md`` files are Markdown and ``.txt`` files are
text when they read as prose (mostly letters, so not a list of PMIDs), and neither is chosen for a
README, LICENSE, CHANGELOG ... or for checksum files (``.md5``, ``.sha256``). A file named
explicitly is read whatever its name: one with no other match whose head is text (no NUL bytes, not
XML or JSON) is read as plain text, and its decoding as UTF-8 then decides (checksum files are
still refused).
"""
from __future__ import annotations

import inspect
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
from medrag.registry import DOTTED, Registry, import_object
from medrag.readers import (
    html,
    jats,
    jsonl,
    markdown,
    medline_text,
    medquad,
    ngc,
    notes,
    pdf,
    pubmed_xml,
    pubmedqa,
    pubtator,
    text,
)
from medrag.readers._util import XML_SAFE, Reader, parse_errors, peek

log = logging.getLogger(__name__)

__all__ = ["READERS", "iter_files", "read", "sniff"]

#: format name -> reader(path) yielding Documents and Deletions
READERS: dict[str, Reader] = {
    "pubmed_xml": pubmed_xml.read,
    "pubmedqa": pubmedqa.read,
    "medquad": medquad.read,
    "medline_text": medline_text.read,
    "jats": jats.read,
    "pubtator": pubtator.read,
    "bioasq_snippets": jsonl.read_bioasq,
    "jsonl": jsonl.read,
    "ngc": ngc.read,
    "html": html.read,
    "markdown": markdown.read,
    "pdf": pdf.read,
    "text": text.read,
    "mimic3_notes": notes.read_mimic3,
    "mimic4_notes": notes.read_mimic4,
    "notes_csv": notes.read_csv,
    "notes_jsonl": notes.read_jsonl,
    "notes_text": notes.read_text_note,
}

_EXPECTED = ("expected PubMed XML or MEDLINE text, PubMedQA JSON, MedQuAD XML, PMC JATS XML, PubTator, "
             "JSON Lines with a text field, NGC guideline XML, HTML, Markdown, PDF or plain text")
_JSON, _WS = json.JSONDecoder(), re.compile(r"\s*")
_PUBTATOR = re.compile(r"\d+\|[ta]\|")
#: file names (before the first dot, lower-cased) never taken for documents in a folder walk
_JUNK_NAMES = frozenset({"readme", "license", "licence", "copying", "notice", "authors", "contributors",
                         "changelog", "changes", "history", "install", "todo", "manifest"})
_CHECKSUMS = (".md5", ".sha1", ".sha256", ".sha512")


@dataclass(frozen=True)
class Head:
    """What sniffing sees of a file: its first bytes as text and, if it starts as XML, its tags."""

    text: str
    root: str | None = None  # local name of the XML root element
    tags: frozenset[str] = field(default_factory=frozenset)  # local names of the elements seen
    name: str = ""  # the file name, lower-cased
    binary: bool = False  # the bytes hold a NUL: not text in any encoding we read
    explicit: bool = False  # the file was named by the user, not met in a folder walk

    @property
    def first_line(self) -> str:
        """The first non-blank line."""
        return self.text.lstrip("\r\n").partition("\n")[0]

    @property
    def textual(self) -> bool:
        """Text-like: no NUL bytes, not a checksum file, and (in a folder walk) not a README/LICENSE..."""
        return not self.binary and not self.name.endswith(_CHECKSUMS) and (self.explicit or not _junk(self.name))

    @property
    def prose(self) -> bool:
        """Mostly letters: at least half of the non-blank characters."""
        chars = "".join(self.text.split())
        return bool(chars) and sum(c.isalpha() for c in chars) >= len(chars) / 2


def _junk(name: str) -> bool:
    """A README, LICENSE, CHANGELOG ... or checksum file: never a document in a folder walk."""
    name = name.lower()
    return name.split(".")[0] in _JUNK_NAMES or name.endswith(_CHECKSUMS)


def _object_keys(text: str, *, nested: bool = False) -> Iterator[str]:
    """Keys of the JSON object the text starts with (``nested``: of that object's first value), read
    from a (possibly cut) prefix of the file."""
    def expect(pos: int, char: str) -> int:
        pos = _WS.match(text, pos).end()
        if text[pos:pos + 1] != char:
            raise ValueError(char)
        return pos + 1

    try:
        pos = expect(0, "{")
        if nested:
            _, pos = _JSON.raw_decode(text, _WS.match(text, pos).end())
            pos = expect(expect(pos, ":"), "{")
        while True:
            key, pos = _JSON.raw_decode(text, _WS.match(text, pos).end())
            yield key
            _, pos = _JSON.raw_decode(text, _WS.match(text, expect(pos, ":")).end())
            pos = expect(pos, ",")
    except (ValueError, IndexError):
        return


def _jsonl_keys(h: Head) -> set[str]:
    """Keys of the first line's object when the file looks like JSON Lines (``{"`` on one line)."""
    line = h.first_line.lstrip()
    return set(_object_keys(line)) if line.startswith("{") and line[1:].lstrip()[:1] == '"' else set()


def _is_html(h: Head) -> bool:
    """An HTML page: an ``<html>`` root or doctype, or markup in a file named ``.html``/``.htm``."""
    start = h.text.lstrip().lower()
    return (h.root == "html" or start.startswith(("<!doctype html", "<html"))
            or (start.startswith("<") and h.name.endswith((".html", ".htm", ".xhtml"))))


#: (format, test on the file's head), tried in order
_SNIFF_RULES: list[tuple[str, Callable[[Head], bool]]] = [
    ("pubmed_xml", lambda h: h.root in {"PubmedArticleSet", "MedlineCitationSet", "PubmedArticle",
                                        "MedlineCitation"}),
    ("medquad", lambda h: h.root in {"Document", "doc", "DiseaseFile"}
     and bool(h.tags & {"QAPairs", "qaPairs", "Focus", "doctitle-focus"})),
    ("jats", lambda h: h.root == "pmc-articleset" or (h.root == "article" and "front" in h.tags)),
    ("ngc", lambda h: h.root == "Version" and {"Section", "Field"} <= h.tags),
    ("pdf", lambda h: "%PDF-" in h.text[:1024]),
    ("mimic3_notes", lambda h: h.root is None and notes.mimic3_header(h.text)),
    ("mimic4_notes", lambda h: h.root is None and notes.mimic4_header(h.text)),
    ("notes_jsonl", lambda h: notes.notes_jsonl_keys(_jsonl_keys(h))),
    ("notes_text", lambda h: h.textual and h.root is None and notes.looks_like_note(h.text)),
    ("pubmedqa", lambda h: h.root is None and "CONTEXTS" in _object_keys(h.text, nested=True)),
    ("bioasq_snippets", lambda h: {"pmid", "section", "offset", "text"} <= _jsonl_keys(h)),
    ("jsonl", lambda h: "text" in _jsonl_keys(h)),
    ("medline_text", lambda h: h.first_line.startswith("PMID-")),
    ("pubtator", lambda h: bool(_PUBTATOR.match(h.first_line))),
    ("html", lambda h: not h.binary and _is_html(h)),
    ("markdown", lambda h: h.textual and h.name.endswith((".md", ".markdown"))),
    ("text", lambda h: h.textual and (h.explicit and h.root is None and h.text.lstrip()[:1] not in ("<", "{", "[")
                                      or h.name.endswith(".txt") and h.prose)),
]


def _head(path: Path, size: int = 8192, *, explicit: bool = False) -> Head:
    """Peek at the first ``size`` bytes (gunzipped) and pull the element tags they open."""
    data = peek(path, size)
    parser = etree.XMLPullParser(events=("start",), **XML_SAFE)
    try:
        parser.feed(data)
    except etree.XMLSyntaxError:
        pass  # not XML, or malformed later on: the elements opened before the error still count
    tags = [etree.QName(elem).localname for _, elem in parser.read_events()]
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    return Head(text=text, root=tags[0] if tags else None, tags=frozenset(tags), name=path.name.lower(),
                binary=b"\x00" in data, explicit=explicit)


def _match(head: Head) -> str | None:
    """The first format whose sniff rule accepts the head."""
    return next((fmt for fmt, test in _SNIFF_RULES if test(head)), None)


def sniff(path: str | Path, *, explicit: bool = False) -> str | None:
    """The format of a file judged by its content (its first 8 KB), or None when unknown.

    ``explicit``: the file was named by the user, so README-like names and a missing ``.txt`` do not
    keep it from being read as text (see the module docstring).
    """
    try:
        return _match(_head(Path(path), explicit=explicit))
    except (OSError, EOFError, zlib.error) as e:
        log.debug("cannot sniff %s: %s", path, e)
        return None


#: formats whose reader de-identifies every note before yielding it
NOTE_FORMATS = frozenset({"mimic3_notes", "mimic4_notes", "notes_csv", "notes_jsonl", "notes_text"})
#: what a clinical-note source sniffed as a generic format is read as instead (never without de-identification)
AS_NOTES = {"text": "notes_text", "markdown": "notes_text", "jsonl": "notes_jsonl", "html": "notes_text"}


def read(path: str | Path, fmt: str | None = None,
         options: dict[str, object] | None = None) -> Iterator[Document | Deletion]:
    """Documents and Deletions of one file, its format sniffed unless given; errors are MedRAGError.

    ``options`` go to a reader that takes them (``reader(path, options)``: the notes readers); naming
    options for a reader that takes none is an error."""
    path = Path(path)
    if not path.is_file():
        raise MedRAGError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise MedRAGError(f"{path}: empty file")
    if fmt is None:
        with parse_errors(path):
            fmt = _match(_head(path, explicit=True))
        if fmt is None:
            raise MedRAGError(f"{path}: unknown format ({_EXPECTED})")
    reader = READERS.get(fmt) or (import_object(fmt) if DOTTED.match(fmt) else None)  # package.module:function
    if reader is not None:
        if not options:
            return reader(path)
        if len(inspect.signature(reader).parameters) < 2:
            raise MedRAGError(f"{path}: format {fmt!r} takes no options (got {', '.join(sorted(options))})")
        return reader(path, options)
    raise MedRAGError(f"{path}: unknown format {fmt!r} (known: {', '.join(sorted(READERS))}, "
                      f"or package.module:function)")


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files to read: named files as given, folders expanded recursively in sorted order.

    Hidden files and folders are skipped, and so are files in a folder whose format is unknown
    (with a warning) or that are junk beside a corpus (README, LICENSE, checksums: see the module
    docstring); a missing path raises MedRAGError.
    """
    for path in map(Path, paths):
        if not path.exists():
            raise MedRAGError(f"no such file or directory: {path}")
        if not path.is_dir():
            yield path
            continue
        for child in _walk(path):
            if sniff(child) is not None:
                yield child
            elif _junk(child.name):
                log.warning("skipping %s: a README, licence or checksum file", child)
            else:
                log.warning("skipping %s: unknown format (%s)", child, _EXPECTED)


def _walk(folder: Path) -> Iterator[Path]:
    """The non-hidden files under ``folder``, recursively, in sorted order."""
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            yield from _walk(child)
        elif child.is_file():
            yield child


def __getattr__(name: str) -> object:
    if name == "REGISTRY":  # the readers as a Registry (``medrag.registry.registry("reader")``)
        return Registry("reader", {fmt: f"{fn.__module__}:{fn.__name__}" for fmt, fn in READERS.items()})
    raise AttributeError(f"module 'medrag.readers' has no attribute {name!r}")
