"""Helpers shared by the readers: opening (gzip or not), peeking, text clean-up, error wrapping."""
from __future__ import annotations

import functools
import gzip
import json
import logging
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from lxml import etree

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

Reader = Callable[[Path], Iterator[Document | Deletion]]

#: lxml parser options for untrusted input: no entity expansion, no DTD, no network
XML_SAFE: dict[str, Any] = {"resolve_entities": False, "no_network": True, "load_dtd": False}

_GZIP_MAGIC = b"\x1f\x8b"
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


def norm(text: str | None) -> str:
    """Collapse every run of whitespace to one space and strip."""
    return " ".join(text.split()) if text else ""


def inner_text(elem: etree._Element | None) -> str:
    """All text inside an element (inline markup included), whitespace-normalised."""
    if elem is None:
        return ""
    return norm("".join(elem.itertext()) if len(elem) else elem.text)


@contextmanager
def parse_errors(path: Path) -> Iterator[None]:
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


def compact(metadata: dict[str, Any]) -> dict[str, Any]:
    """Drop the metadata entries a source did not provide (None or empty string)."""
    return {k: v for k, v in metadata.items() if v is not None and v != ""}
