"""Plain UTF-8 text: one Document per file, paragraphs kept (blank-line separated, whitespace tidied).
The title is the first line when it is short (150 characters at most) and more text follows. Text
that is not valid UTF-8 is an error naming the file, and so is a file with nothing but whitespace.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.readers._util import local_document, read_text, reader, tidy

log = logging.getLogger(__name__)


@reader
def read(path: Path) -> Iterator[Document | Deletion]:
    """Yield the file's one Document."""
    text = tidy(read_text(path))
    if not text:
        raise MedRAGError(f"{path}: no text (only whitespace)")
    yield local_document(path, text)

