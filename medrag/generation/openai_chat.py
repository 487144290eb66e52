"""OpenAIChatGenerator: any server speaking the OpenAI chat-completions protocol (vLLM, llama.cpp, the API).

``--generator openai:MODEL`` with ``openai_base_url`` (default ``$OPENAI_BASE_URL``) and the key read from the
environment variable named by ``openai_api_key_env``. Greedy (temperature 0) so answers are reproducible.
The prompt is the same packed, numbered-passage prompt the local models get; with no tokenizer of the remote
model at hand, its length is counted in pieces of ``CHARS_PER_TOKEN`` characters (BPE tokenizers average
about 4 characters a token on English text, so the count errs long).
"""
from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from medrag.documents import Chunk
from medrag.errors import MedRAGError
from medrag.generation import Generation, GeneratorEnv
from medrag.generation.citations import clean_citations
from medrag.generation.prompt import pack_prompt
from medrag.retry_after import retry_after

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
CHARS_PER_TOKEN = 3
RETRIES = 3


class CharTokenizer:
    """A lossless stand-in tokenizer for prompt packing: text in pieces of ``CHARS_PER_TOKEN`` characters."""

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._ids: dict[str, int] = {}

    def __call__(self, text: str, add_special_tokens: bool = False, verbose: bool = False) -> dict[str, list[int]]:
        ids = []
        for start in range(0, len(text), CHARS_PER_TOKEN):
            piece = text[start : start + CHARS_PER_TOKEN]
            if piece not in self._ids:
                self._ids[piece] = len(self._pieces)
                self._pieces.append(piece)
            ids.append(self._ids[piece])
        return {"input_ids": ids}

    def decode(self, ids: Sequence[int], **_: object) -> str:
        return "".join(self._pieces[i] for i in ids)


class OpenAIOptions(BaseModel):
    """The OpenAI-compatible backend's options (``generation.options.openai``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = Field("", description="the chat-completions server ('' = $OPENAI_BASE_URL or OpenAI)")
    api_key_env: str = Field("OPENAI_API_KEY", description="the environment variable holding its key (never saved)")
    context_tokens: int = Field(4096, gt=0, description="the remote model's context window")


class OpenAIChatGenerator:
    """Chat completions over HTTP; ``generate`` sends one request (streamed when ``on_token`` is given)."""

    Options = OpenAIOptions

    @classmethod
    def from_settings(cls, model: str, options: OpenAIOptions, env: GeneratorEnv) -> OpenAIChatGenerator:
        return cls(model, base_url=options.base_url or None, api_key_env=options.api_key_env,
                   max_new_tokens=env.max_new_tokens, context_tokens=options.context_tokens)

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 max_new_tokens: int = 128, context_tokens: int = 4096, timeout: float = 120.0) -> None:
        if not model:
            raise MedRAGError("openai generator needs a model name: --generator openai:MODEL")
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.api_key_env = api_key_env
        self.tokenizer = CharTokenizer()
        self.max_new_tokens = max_new_tokens
        self.context_tokens = context_tokens
        self.timeout = timeout

    def _request(self, body: dict[str, Any]) -> Any:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(f"{self.base_url}/chat/completions", data=json.dumps(body).encode(),
                                         headers=headers, method="POST")
        for attempt in range(RETRIES + 1):
            try:
                return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 - a URL the user set
            except urllib.error.HTTPError as exc:
                if exc.code in (429, 500, 502, 503, 504) and attempt < RETRIES:
                    wait = retry_after(exc.headers.get("Retry-After"))
                    time.sleep(2 ** attempt if wait is None else wait)
                    continue
                detail = exc.read(300).decode("utf-8", "replace").replace("\n", " ")
                raise MedRAGError(f"{self.base_url} answered HTTP {exc.code}: {detail}") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                raise MedRAGError(f"cannot reach the chat server {self.base_url}: {getattr(exc, 'reason', exc)}") from exc
        raise AssertionError("unreachable")

    def _stream(self, response: Any) -> Iterator[str]:
        """The content pieces of a server-sent-events stream."""
        for raw in response:
            line = raw.decode("utf-8").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            for choice in json.loads(data).get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece

    def generate(self, question: str, passages: Sequence[Chunk],
                 on_token: Callable[[str], None] | None = None) -> Generation:
        """Greedy answer to ``question`` citing ``passages`` by their 1-based rank."""
        if not passages:
            return Generation("", [], 0, [], self.name)
        new_tokens = min(self.max_new_tokens, self.context_tokens // 4)  # what the packed prompt leaves room for
        packed = pack_prompt(self.tokenizer, question, passages, self.context_tokens, new_tokens)
        body = {"model": self.model, "messages": [{"role": "user", "content": packed.text}], "temperature": 0,
                "max_tokens": new_tokens, "stream": on_token is not None}
        started = time.perf_counter()
        with self._request(body) as response:
            if on_token is None:
                try:
                    reply = json.loads(response.read())
                    text = reply["choices"][0]["message"]["content"] or ""
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    raise MedRAGError(f"{self.base_url} did not answer in the chat-completions format: "
                                      f"{type(exc).__name__}: {exc}") from exc
            else:
                pieces = []
                for piece in self._stream(response):
                    on_token(piece)
                    pieces.append(piece)
                text = "".join(pieces)
        log.info("%s answered in %.2f s", self.name, time.perf_counter() - started)
        text, cited, invalid = clean_citations(text.strip(), set(packed.in_prompt))
        return Generation(text, cited, invalid, packed.in_prompt, self.name)
