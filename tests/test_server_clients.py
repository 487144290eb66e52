"""Real clients against medrag's service: the official ``openai`` package (chat completions, streaming, errors)
on a server on 127.0.0.1, and the ``mcp`` SDK's own stdio client against ``medrag mcp``."""
# ruff: noqa: F811  (the fixtures imported from test_server are the parameters of the tests here)
from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("mcp")

from medrag.server.app import ServerConfig, create_app
from medrag.server.testing import ServerThread
from tests.test_server import QUESTION, XSS_PMID, XSS_QUESTION, keys, served_index, served_rag  # noqa: F401 (fixtures)

DISCLAIMER_START = "This answer summarises published sources"


@pytest.fixture(scope="module")
def api(served_index: Path, served_rag: Any, keys: tuple[Path, str]) -> Iterator[dict[str, Any]]:
    app = create_app(ServerConfig(index=served_index, keys=keys[0], rate_limit=0, reload_interval=0),
                     rag=served_rag)
    with ServerThread(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=keys[1], max_retries=0, timeout=60)
        yield {"url": url, "client": client, "key": keys[1]}


def test_openai_client_lists_the_model_and_gets_a_cited_answer(api: dict[str, Any], served_rag: Any) -> None:
    client = api["client"]
    assert [m.id for m in client.models.list()] == ["medrag"]
    completion = client.chat.completions.create(
        model="medrag", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}])
    content = completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop" and completion.object == "chat.completion"
    assert content == served_rag.ask(QUESTION).text
    assert re.search(r"\[\d\]", content) and DISCLAIMER_START in content
    citations = completion.model_extra["citations"]  # medrag's extra field beside the standard ones
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", content)}
    assert {c["n"] for c in citations} == cited and all(c["url"] for c in citations)


def test_openai_client_streams_the_same_answer(api: dict[str, Any]) -> None:
    client = api["client"]
    messages = [{"role": "user", "content": XSS_QUESTION}]
    whole = client.chat.completions.create(model="medrag", messages=messages).choices[0].message.content
    stream = client.chat.completions.create(model="medrag", messages=messages, stream=True)
    chunks = list(stream)
    assert len(chunks) >= 3 and chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert XSS_PMID in {c["pmid"] for c in chunks[-1].model_extra["citations"]}


def test_openai_client_passes_patient_context(api: dict[str, Any], served_rag: Any) -> None:
    context = "8-year-old child"
    completion = api["client"].chat.completions.create(
        model="medrag", messages=[{"role": "user", "content": QUESTION}], extra_body={"medrag_context": context})
    assert completion.choices[0].message.content == served_rag.ask(QUESTION, context=context).text


def test_openai_client_sees_errors_in_openai_shape(api: dict[str, Any]) -> None:
    client = api["client"]
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    assert missing.value.code == "model_not_found" and "gpt-4o" in missing.value.message
    with pytest.raises(openai.UnprocessableEntityError) as empty:
        client.chat.completions.create(model="medrag", messages=[{"role": "user", "content": "  "}])
    assert "empty question" in empty.value.message
    with pytest.raises(openai.UnprocessableEntityError, match="no user message"):
        client.chat.completions.create(model="medrag", messages=[{"role": "system", "content": "hi"}])
    stranger = openai.OpenAI(base_url=f"{api['url']}/v1", api_key="mrg_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        stranger.chat.completions.create(model="medrag", messages=[{"role": "user", "content": QUESTION}])
    assert denied.value.code == "invalid_api_key"
    assert client.chat.completions.create(model="medrag", messages=[{"role": "user", "content": QUESTION}])


@pytest.mark.slow
def test_mcp_stdio_client_lists_and_calls_both_tools(served_index: Path, tmp_path: Path) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    token = f"mcptok{uuid.uuid4().hex}"
    errlog_path = tmp_path / "mcp.err"
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "medrag.server.cli", "mcp", "--index", str(served_index),
                                         "--threads", "1"],
                                   env={"HF_HUB_OFFLINE": "1", "PYTHONPATH": os.environ.get("PYTHONPATH", "")})

    async def session_run(errlog: Any) -> dict[str, Any]:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            search = await session.call_tool("search", {"query": XSS_QUESTION, "k": 2})
            ask = await session.call_tool("ask", {"question": QUESTION, "context": f"72-year-old woman {token}"})
            bad = await session.call_tool("ask", {"question": " "})
            return {"tools": tools, "search": search, "ask": ask, "bad": bad}

    with open(errlog_path, "w") as errlog:
        result = asyncio.run(asyncio.wait_for(session_run(errlog), timeout=240))
    assert {tool.name for tool in result["tools"].tools} == {"search", "ask"}

    def structured(call: Any) -> dict[str, Any]:
        assert not _is_error(call)
        data = getattr(call, "structured_content", None) or getattr(call, "structuredContent", None)
        return data.get("result", data)

    hits = structured(result["search"])["results"]
    assert len(hits) == 2 and hits[0]["pmid"] == XSS_PMID
    answer = structured(result["ask"])
    assert re.search(r"\[\d\]", answer["text"]) and answer["citations"] and answer["disclaimer"]
    assert _is_error(result["bad"]) and "empty question" in result["bad"].content[0].text
    assert token not in errlog_path.read_text()


def _is_error(call: Any) -> bool:
    return bool(getattr(call, "is_error", None) or getattr(call, "isError", None))
