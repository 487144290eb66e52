"""PDF with a text layer, via pypdf: one Document per file, the pages' text joined by blank lines.

The title is the PDF's own ``/Title`` metadata, else its first line when short. A PDF whose pages
hold no extractable text (a scan, an image) is an error: OCR is out of scope. So are encrypted and
malformed PDFs; each error is one line naming the file.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.readers._util import local_document, norm, reader, tidy

log = logging.getLogger(__name__)


@reader
def read(path: Path) -> Iterator[Document | Deletion]:
    """Yield the file's one Document."""
    pypdf_log = logging.getLogger("pypdf")
    level = pypdf_log.level
    pypdf_log.setLevel(logging.ERROR)  # its warnings on damaged files would print beside our one-line error
    try:
        pdf = PdfReader(path)
        if pdf.is_encrypted:
            raise MedRAGError(f"{path}: PDF is encrypted")
        pages = [tidy(page.extract_text() or "") for page in pdf.pages]
        title = norm((pdf.metadata or {}).get("/Title"))
    except PyPdfError as e:
        raise MedRAGError(f"{path}: malformed PDF ({e})") from e
    finally:
        pypdf_log.setLevel(level)
    text = "\n\n".join(p for p in pages if p)
    if not text:
        raise MedRAGError(f"{path}: PDF has no text layer (scanned?)")
    yield local_document(path, text, title=title or None, pages=len(pages))
