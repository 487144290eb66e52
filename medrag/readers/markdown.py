"""Markdown (UTF-8, CommonMark with tables, parsed by markdown-it-py) as plain text.

The title is the first heading. The file is split into one Document per top-level section: at the
headings of the shallowest level below a lone title heading (``#`` title, ``##`` sections), or of
the shallowest level used when no heading stands alone as title; ``section`` is the heading's text
and deeper headings stay in as paragraphs. Text before the first such heading is a Document of its
own, without ``section``. Lists become ``- `` lines, table rows ``a | b`` lines, code blocks their
code; raw HTML blocks, link targets and image URLs are dropped (an image keeps its alt text). A file
without headings is one Document whose title is its first line when that is short.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.readers._util import join_blocks, local_document, norm, read_text, reader

log = logging.getLogger(__name__)

_MD = MarkdownIt("commonmark").enable("table")
Block = tuple[int, str]  # (heading level, or 0 for body text; text)


@reader
def read(path: Path) -> Iterator[Document | Deletion]:
    """Yield one Document per top-level section (one for a file without headings)."""
    blocks = _blocks(_MD.parse(read_text(path)))
    if not any(text for _, text in blocks):
        raise MedRAGError(f"{path}: no text in the Markdown file")
    title = ""
    if blocks[0][0] and [level for level, _ in blocks].count(blocks[0][0]) == 1:
        title, blocks = blocks[0][1], blocks[1:]  # a lone top heading: the document's title
    levels = [level for level, _ in blocks if level]
    if not levels:
        yield local_document(path, join_blocks(text for _, text in blocks), title=title or None)
        return
    top = min(levels)
    title = title or next(text for level, text in blocks if level)
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    for level, text in blocks:
        if level == top:
            sections.append((text, []))
        else:
            sections[-1][1].append(text)
    n = 0
    for name, body in sections:
        if text := join_blocks(body):
            yield local_document(path, text, title=title, part=n, section=name)
            n += 1


def _blocks(tokens: list[Token]) -> list[Block]:
    """Headings and text blocks (paragraphs, list items, table rows, code) in document order."""
    blocks: list[Block] = []
    level, row, bullet = 0, None, False
    for token in tokens:
        kind = token.type
        if kind == "heading_open":
            level = int(token.tag[1:])
        elif kind == "list_item_open":
            bullet = True
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and row is not None:
            blocks.append((0, " | ".join(row)))
            row = None
        elif kind in ("fence", "code_block"):
            blocks.append((0, token.content))
        elif kind == "inline":
            text = _inline(token)
            if row is not None:
                row.append(text)
            elif text:
                blocks.append((level, f"- {text}" if bullet and not level else text))
            level, bullet = 0, False
    return blocks


def _inline(token: Token) -> str:
    """The plain text of an inline token: text, code and image alt text; breaks become spaces."""
    return norm("".join(c.content if c.type in ("text", "code_inline", "image") else " "
                        if c.type in ("softbreak", "hardbreak") else "" for c in token.children or []))
