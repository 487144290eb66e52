"""Helpers shared by the readers: opening (gzip or not), peeking, text clean-up, ids, error wrapping."""
from __future__ import annotations

import functools
import gzip
import io
import json
import logging
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TextIO

from lxml import etree

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

Reader = Callable[[Path], Iterator[Document | Deletion]]

#: lxml parser options for untrusted input: no entity expansion, no DTD, no network
XML_SAFE: dict[str, Any] = {"resolve_entities": False, "no_network": True, "load_dtd": False}

_GZIP_MAGIC = b"\x1f\x8b"
_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?!\d)")
_LXML_WHERE = re.compile(r",? line \d+, column \d+$")  # lxml's own position suffix, said once by us


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its extension)."""
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def open_bytes(path: Path) -> IO[bytes]:
    """Open a file for binary reading, transparently gunzipping it when it is gzip-compressed."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def peek(path: Path, size: int = 8192) -> bytes:
    """The first ``size`` (decompressed) bytes; a truncated gzip gives what could be decompressed."""
    with open(path, "rb") as fh:
        raw = fh.read(size)
        if not raw.startswith(_GZIP_MAGIC):
            return raw
        out, inflater = b"", zlib.decompressobj(wbits=31)
        while len(out) < size and raw:
            out += inflater.decompress(raw, size - len(out))
            raw = inflater.unconsumed_tail or fh.read(size)
        return out


def open_text(path: Path) -> TextIO:
    """Open a (possibly gzipped) file as strict UTF-8 text; a leading byte-order mark is dropped."""
    return io.TextIOWrapper(open_bytes(path), encoding="utf-8-sig", errors="strict")


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSON Lines file; a line that is not a JSON object
    is an error."""
    with open_text(path) as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise MedRAGError(f"{path}: malformed JSON at line {line_no}: {e.msg}") from e
            if not isinstance(record, dict):
                raise MedRAGError(f"{path}: line {line_no} is not a JSON object")
            yield line_no, record


def read_text(path: Path) -> str:
    """The whole file as strict UTF-8 text (``UnicodeDecodeError`` when it is not)."""
    with open_text(path) as fh:
        return fh.read()


def norm(text: str | None) -> str:
    """Collapse every run of whitespace to one space and strip."""
    return " ".join(text.split()) if text else ""


def inner_text(elem: etree._Element | None) -> str:
    """All text inside an element (inline markup included), whitespace-normalised."""
    if elem is None:
        return ""
    return norm("".join(elem.itertext()) if len(elem) else elem.text)


def tidy(text: str) -> str:
    """Lines whitespace-normalised, blank-line runs collapsed: paragraphs separated by one blank line."""
    paragraphs = ("\n".join(filter(None, map(norm, block.splitlines())))
                  for block in re.split(r"\n[^\S\n]*\n", text.replace("\r\n", "\n")))
    return "\n\n".join(p for p in paragraphs if p)


def join_blocks(blocks: Iterable[str]) -> str:
    """Blocks of text as paragraphs (blank line between), ``- `` bullets one per line under the previous."""
    out = ""
    for block in map(norm, blocks):
        if block:
            out += ("\n" if block.startswith("- ") else "\n\n") + block if out else block
    return out


def split_title(text: str, limit: int = 150) -> tuple[str, str]:
    """(first line, rest) when the first line is short and more follows, else ("", text)."""
    first, _, rest = text.strip().partition("\n")
    return (norm(first), rest.strip()) if len(first) <= limit and rest.strip() else ("", text.strip())


def year_of(text: str | None, *, last: bool = False) -> int | None:
    """The first (or last) plausible 4-digit year in a date string such as ``2008 Jul-Aug``."""
    years = _YEAR.findall(text or "")
    return int(years[-1 if last else 0]) if years else None


def file_id(path: Path, part: object | None = None) -> str:
    """A stable id for a document read from a local file: its resolved path, and ``#part`` within it."""
    return f"file:{path.resolve()}" + (f"#{part}" if part is not None else "")


def file_url(path: Path) -> str:
    """The file:// URL of a local file (the citation link of documents with no web address)."""
    return path.resolve().as_uri()


@contextmanager
def parse_errors(path: Path | str) -> Iterator[None]:
    """Turn the ways a file can fail to parse into one-line ``MedRAGError``s naming the file."""
    try:
        yield
    except etree.XMLSyntaxError as e:
        line, column = e.position if e.position and e.position[0] else (e.lineno or "?", "?")
        msg = _LXML_WHERE.sub("", e.msg or str(e))
        raise MedRAGError(f"{path}: malformed XML at line {line}, column {column}: {msg}") from e
    except json.JSONDecodeError as e:
        raise MedRAGError(f"{path}: malformed JSON at line {e.lineno}: {e.msg}") from e
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise MedRAGError(f"{path}: truncated or corrupt gzip file ({e})") from e
    except UnicodeDecodeError as e:
        raise MedRAGError(f"{path}: not valid UTF-8 text ({e.reason})") from e
    except OSError as e:
        raise MedRAGError(f"{path}: cannot read file ({e.strerror or e})") from e


def reader(fn: Reader) -> Reader:
    """Decorate a format reader so that its parse errors surface as ``MedRAGError``."""

    @functools.wraps(fn)
    def wrapped(path: Path) -> Iterator[Document | Deletion]:
        path = Path(path)
        with parse_errors(path):
            yield from fn(path)

    return wrapped


def pubmed_url(pmid: str) -> str:
    """The PubMed page of a PMID."""
    return f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


def local_document(path: Path, text: str, *, title: str | None = None, part: object | None = None,
                   **metadata: Any) -> Document:
    """A Document of text from a local file (text, Markdown, PDF): id and URL from its path, source_type
    "text"; with no ``title`` given, a short first line is split off as the title."""
    if title is None:
        title, text = split_title(text)
    return Document(id=file_id(path, part), title=title, text=text, metadata=compact({
        "title": title, **metadata, "url": file_url(path), "source_type": "text"}))


def pmc_url(pmcid: str) -> str:
    """The PubMed Central page of a PMCID (``PMC123``)."""
    return f"https://pmc.ncbi.nlm.nih.gov/articles/{pmcid}/"


def pubmed_record(pmid: str, title: str, text: str, source: str, **metadata: Any) -> Document:
    """The Document of one PubMed citation, id ``pmid:N`` whatever format it came in."""
    return Document(id=f"pmid:{pmid}", title=title, text=text, metadata=compact({
        "pmid": pmid, "title": title, **metadata, "url": pubmed_url(pmid), "source": source,
        "source_type": "pubmed"}))


def compact(metadata: dict[str, Any]) -> dict[str, Any]:
    """Drop the metadata entries a source did not provide (None or empty string)."""
    return {k: v for k, v in metadata.items() if v is not None and v != ""}
