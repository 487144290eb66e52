"""The OpenAI-compatible chat backend and streaming, against a real HTTP server on 127.0.0.1 that answers the
chat-completions protocol with the tiny GPT-2 (random weights, real tokenizer), greedy."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from medrag import MedRAG, MedRAGError
from medrag.generation import clean_citations
from medrag.generation.hf import HFGenerator

from .conftest import QUESTION, TINY_GPT2, medrag_cli


class ChatServer(ThreadingHTTPServer):
    """``POST /v1/chat/completions`` answered by the tiny GPT-2; every request is logged."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(TINY_GPT2)
        self.model = AutoModelForCausalLM.from_pretrained(TINY_GPT2).eval()
        self.requests: list[dict[str, Any]] = []
        self.replies: list[str] = []
        self.fail = fail  # answer this many requests with HTTP 503 first
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def complete(self, body: dict[str, Any]) -> list[str]:
        """The greedy continuation of the last user message, as decoded pieces (one per token)."""
        import torch

        prompt = body["messages"][-1]["content"]
        ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"][:, -(1024 - body["max_tokens"]):]
        with self.lock, torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                      max_new_tokens=body["max_tokens"], do_sample=False,
                                      pad_token_id=self.tokenizer.eos_token_id)
        new = out[0, ids.shape[1]:].tolist()
        pieces, text = [], ""
        for i in range(1, len(new) + 1):  # decoded prefix by prefix, so the pieces join to the whole text
            whole = self.tokenizer.decode(new[:i], skip_special_tokens=True)
            pieces.append(whole[len(text):])
            text = whole
        return pieces


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        if self.server.fail > 0:
            self.server.fail -= 1
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        pieces = self.server.complete(body)
        self.server.replies.append("".join(pieces))
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in pieces:
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        reply = json.dumps({"object": "chat.completion", "model": body["model"], "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "".join(pieces)}, "finish_reason": "stop"}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply.encode())


@pytest.fixture()
def server() -> Iterator[ChatServer]:
    srv = ChatServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_openai_backend_speaks_chat_completions(small_index: Path, server: ChatServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDRAG_TEST_KEY", "sk-local-test")
    rag = MedRAG.load(small_index, openai_base_url=server.url, openai_api_key_env="MEDRAG_TEST_KEY",
                      max_new_tokens=24)
    passages = [h.chunk for h in rag.retrieve(QUESTION, k=5)]
    gen = rag.generator("openai:tiny-gpt2")
    result = gen.generate(QUESTION, passages)
    sent = server.requests[-1]
    assert sent["auth"] == "Bearer sk-local-test"
    body = sent["body"]
    assert body["model"] == "tiny-gpt2" and body["temperature"] == 0 and body["max_tokens"] == 24
    prompt = body["messages"][-1]["content"]
    assert "[1]" in prompt and QUESTION in prompt and "not a doctor" in prompt
    assert result.generator == "openai:tiny-gpt2"
    assert result.text == clean_citations(server.replies[-1].strip(), set(result.in_prompt))[0]
    assert server.replies[-1].strip()  # the tiny model did write something

    pieces: list[str] = []
    streamed = gen.generate(QUESTION, passages, on_token=pieces.append)
    assert server.requests[-1]["body"]["stream"] is True
    assert len(pieces) > 1 and "".join(pieces) == server.replies[-1]
    assert streamed.text == result.text  # greedy: the same answer either way


def test_openai_retries_then_one_line_errors(small_index: Path, server: ChatServer) -> None:
    rag = MedRAG.load(small_index, openai_base_url=server.url, max_new_tokens=8)
    passages = [h.chunk for h in rag.retrieve(QUESTION, k=2)]
    server.fail = 2  # two 503s, then an answer
    assert rag.generator("openai:m").generate(QUESTION, passages).generator == "openai:m"
    assert len(server.requests) == 3
    server.fail = 10
    with pytest.raises(MedRAGError, match="HTTP 503"):
        rag.generator("openai:m").generate(QUESTION, passages)
    dead = MedRAG.load(small_index, openai_base_url="http://127.0.0.1:9/v1", max_new_tokens=8)
    with pytest.raises(MedRAGError, match="cannot reach"):
        dead.generator("openai:m").generate(QUESTION, passages)


def test_cli_streams_then_prints_the_checked_answer(small_index: Path, server: ChatServer) -> None:
    result = medrag_cli("ask", QUESTION, "--index", small_index, "--generator", "openai:tiny-gpt2", "--base-url",
                        server.url, "--stream", "--set", "max_new_tokens=16", "--set", "abstain_threshold=-2",
                        check=True)
    assert server.requests and server.requests[-1]["body"]["stream"] is True
    raw, _, checked = result.stdout.partition("--- checked answer ---")
    assert server.replies[-1].strip() and server.replies[-1].strip()[:20] in raw
    assert "not medical advice" in checked


def test_hf_generator_streams_its_tokens() -> None:
    from medrag.documents import Chunk

    gen = HFGenerator(str(TINY_GPT2), max_new_tokens=12)
    chunk = Chunk(doc_id="d1", index=0, text="High blood pressure often has no symptoms.", title="Hypertension")
    pieces: list[str] = []
    streamed = gen.generate(QUESTION, [chunk], on_token=pieces.append)
    plain = gen.generate(QUESTION, [chunk])
    assert pieces and streamed.text == plain.text
    assert clean_citations("".join(pieces).strip(), {1})[0] == plain.text
