"""``medrag mcp``: the same ``search`` and ``ask`` as Model Context Protocol tools over stdio (official SDK).

stdout carries the protocol, so everything else (logs, progress) goes to stderr, and the index loads
before the first message. The tools answer like the HTTP API: ``ask`` returns the Answer JSON,
``search`` the ranked passages; bad input is a tool error with one clear message.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medrag.errors import MedRAGError
from medrag.server import schemas

log = logging.getLogger(__name__)

INSTRUCTIONS = ("medrag answers medical questions from an offline index of published sources (PubMed, NIH and "
                "CDC pages, guidelines). Every answer sentence cites its sources as [n]; the answer is not "
                "medical advice. Use `search` for ranked passages, `ask` for a cited answer.")


def _sdk() -> tuple[Any, type[Exception]]:
    """The SDK's server class and the exception whose message a tool error shows (mcp 2.x, else 1.x)."""
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError:
        from mcp.server.fastmcp import FastMCP as MCPServer
        from mcp.server.fastmcp.exceptions import ToolError
    return MCPServer, ToolError


@contextlib.contextmanager
def _tool_errors(tool_error: type[Exception]) -> Iterator[None]:
    """MedRAGError -> a tool error with its one-line message; anything else -> its type only (a message may
    quote the question, and the SDK would log it). stdout goes to stderr meanwhile: it carries the protocol."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except MedRAGError as exc:
        raise tool_error(str(exc)) from None
    except Exception as exc:  # noqa: BLE001
        log.error("internal error (%s) in an MCP tool", type(exc).__name__)
        raise tool_error(f"internal error ({type(exc).__name__})") from None


def build_server(rag: Any, generators: tuple[str, ...] = ("extractive",)) -> Any:
    """An MCP server with the ``search`` and ``ask`` tools over the loaded pipeline ``rag``."""
    server_class, tool_error = _sdk()
    try:
        server = server_class("medrag", instructions=INSTRUCTIONS, log_level="WARNING")
    except TypeError:
        server = server_class("medrag", instructions=INSTRUCTIONS)

    @server.tool()
    def search(query: str, k: int = 5, filter: str | None = None, retriever: str | None = None) -> dict[str, Any]:
        """Ranked passages for a query, with scores, PMIDs/URLs and metadata (no answer).

        filter: e.g. "year>=2015,source_type=pubmed"; retriever: dense, bm25 or hybrid (default)."""
        with _tool_errors(tool_error):
            query = schemas.check_question(query, "query")
            if not 1 <= k <= schemas.MAX_K:
                raise schemas.InvalidRequest(f"k must be between 1 and {schemas.MAX_K}")
            hits = rag.retrieve(query, k, where=filter, retriever=retriever)
        return {"results": [schemas.hit_json(rank, hit) for rank, hit in enumerate(hits, 1)]}

    @server.tool()
    def ask(question: str, context: str | None = None, k: int | None = None, strict: bool | None = None,
            filter: str | None = None, retriever: str | None = None,
            generator: str | None = None) -> dict[str, Any]:
        """A cited answer: text with [n] markers, citations (PMID/URL), per-sentence support, emergency and
        abstention flags. context: optional patient details (age, conditions, drugs), used and stored nowhere."""
        with _tool_errors(tool_error):
            question = schemas.check_question(question)
            if context is not None and len(context) > schemas.MAX_QUESTION:
                raise schemas.InvalidRequest(f"context too long: the limit is {schemas.MAX_QUESTION:,} characters")
            if k is not None and not 1 <= k <= schemas.MAX_K:
                raise schemas.InvalidRequest(f"k must be between 1 and {schemas.MAX_K}")
            if generator is not None and generator not in generators:
                raise schemas.InvalidRequest(f"generator {generator!r} is not served here; choose from "
                                             f"{', '.join(generators)}")
            answer = rag.ask(question, k=k, context=context, strict=strict, where=filter, retriever=retriever,
                             generator=generator or generators[0])
        return answer.to_dict()

    return server


def serve_stdio(index: Path, *, threads: int | None = None, generators: tuple[str, ...] = ("extractive",)) -> None:
    """Load the index (its models too), then answer MCP requests on stdin/stdout until stdin closes."""
    from medrag import MedRAG
    from medrag.server.reload import warm

    with contextlib.redirect_stdout(sys.stderr):  # nothing but the protocol may reach stdout
        rag = MedRAG.load(index, **({"threads": threads} if threads is not None else {}))
        warm(rag, generators)
    log.info("medrag MCP server ready on stdio (%s)", index)
    build_server(rag, generators).run("stdio")
