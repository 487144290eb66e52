"""Request bodies of the HTTP API and the checks shared with the MCP tools (one clear message each)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medrag.errors import MedRAGError

MAX_QUESTION = 2000  # characters
MAX_K = 50


class AskRequest(BaseModel):
    """``POST /v1/ask``: the question and the options of ``medrag ask``."""

    model_config = ConfigDict(extra="forbid")
    question: str
    k: int | None = Field(None, ge=1, le=MAX_K)
    retriever: str | None = None
    filter: str | None = None
    context: str | None = Field(None, max_length=MAX_QUESTION)
    strict: bool | None = None
    generator: str | None = None


class CaseRequest(BaseModel):
    """``POST /v1/case``: a clinical note (de-identified in memory, stored nowhere) and the options of ``medrag case``."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field(..., min_length=1, max_length=60_000)
    k: int | None = Field(None, ge=1, le=MAX_K)
    similar: int = Field(0, ge=0, le=MAX_K)
    strict: bool | None = None


class SearchRequest(BaseModel):
    """``POST /v1/search``: ranked passages only."""

    model_config = ConfigDict(extra="forbid")
    query: str
    k: int | None = Field(None, ge=1, le=MAX_K)
    filter: str | None = None
    retriever: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions`` (OpenAI's fields; sampling options are accepted and ignored)."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    medrag_context: str | None = Field(None, max_length=MAX_QUESTION)


class InvalidRequest(MedRAGError):
    """A request that breaks the API's rules: the server answers 422 with this message."""


def parse(model: type[BaseModel], data: Any) -> Any:
    """``data`` validated as ``model``; the first problem as one line that never repeats the input."""
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        raise InvalidRequest(f"{where}: {message}") from None


def check_question(text: str, what: str = "question", limit: int = MAX_QUESTION) -> str:
    """``text`` stripped, or an error when it is empty or longer than ``limit`` characters."""
    stripped = text.strip()
    if not stripped:
        raise InvalidRequest(f"empty {what}: ask something, e.g. \"What causes anemia?\"")
    if len(stripped) > limit:
        raise InvalidRequest(f"{what} too long: {len(stripped):,} characters, the limit is {limit:,}")
    return stripped


def chat_question(request: ChatRequest) -> str:
    """The text of the last user message (string content or OpenAI's text parts)."""
    for message in reversed(request.messages):
        if message.role != "user":
            continue
        content = message.content
        if isinstance(content, list):
            content = " ".join(str(part.get("text", "")) for part in content if part.get("type") == "text")
        return check_question(content or "")
    raise InvalidRequest("messages: no user message; the last user message is the question")


def source_of(item: dict[str, Any]) -> str | None:
    """``pmid:N`` for a PubMed source, else its URL."""
    return f"pmid:{item['pmid']}" if item.get("pmid") else item.get("url")


def hit_json(rank: int, hit: Any) -> dict[str, Any]:
    """A retrieved passage as the API returns it."""
    chunk = hit.chunk
    return {"rank": rank, "score": round(float(hit.score), 4),
            "dense": None if getattr(hit, "dense", None) is None else round(float(hit.dense), 4),
            "chunk_id": chunk.id, "doc_id": chunk.doc_id, "title": chunk.title, "text": chunk.text,
            "pmid": chunk.pmid, "url": chunk.url, "metadata": chunk.metadata}
