"""Web pages (HTML, UTF-8): the main text with navigation, headers, footers and other boilerplate removed
by trafilatura. One Document per page: ``title`` from the page's metadata (``<title>``, OpenGraph,
``<h1>``), ``url`` from its canonical link (else the file's own ``file://`` URL), ``year`` from a date
the page declares, ``source`` its site name. The id is ``url:{canonical url}`` when the page names one,
so the same page saved twice is one document, else the file's path.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.readers._util import compact, file_id, file_url, join_blocks, norm, read_text, reader, year_of

log = logging.getLogger(__name__)


@reader
def read(path: Path) -> Iterator[Document | Deletion]:
    """Yield the page's one Document; a page with no main text is an error."""
    import trafilatura  # imported here: it takes ~0.3 s, and most runs read no HTML

    page = trafilatura.bare_extraction(
        read_text(path), with_metadata=True, include_comments=False, include_tables=True,
        date_extraction_params={"extensive_search": False, "original_date": True})
    lines = [norm(line) for line in (page.text or "").splitlines()] if page is not None else []
    if not any(lines):
        raise MedRAGError(f"{path}: no main text found in the HTML page")
    title = norm(page.title)
    if lines[0] == title:
        lines = lines[1:]  # the page's <h1> repeats the title the chunks already start with
    yield Document(
        id=f"url:{page.url}" if page.url else file_id(path),
        title=title,
        text=join_blocks(lines),
        metadata=compact({"title": title, "year": year_of(page.date), "url": page.url or file_url(path),
                          "source": norm(page.sitename), "source_type": "web"}),
    )
