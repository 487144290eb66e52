"""medrag serve: the HTTP API on a real uvicorn server on 127.0.0.1 over a small real index (real MiniLM, FAISS).

The fixtures here (a small index with an XSS payload document, a keys file, a running server) are imported
by test_server_clients.py and test_server_browser.py.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from medrag import MedRAG, Settings
from medrag.server import cli as server_cli
from medrag.server.app import ServerConfig, create_app
from medrag.server.audit import load_salt, question_hash, salt_path
from medrag.server.keys import KeyStore
from medrag.server.limits import RateLimiter
from medrag.server.testing import ServerThread, free_port
from tests.conftest import MEDQUAD

MPLUS = MEDQUAD / "4_MPlus_Health_Topics_QA"
#: high blood pressure and its medicines (MedlinePlus, NHLBI): cited answers with URLs
SERVED_FILES = [MPLUS / "0000107.xml", MPLUS / "0000471.xml", MEDQUAD / "8_NHLBI_QA_XML" / "0000071.xml"]
#: added by a live ingest in the hot-reload test
NEW_FILE = MPLUS / "0000029.xml"  # anabolic steroids
QUESTION = "What are the symptoms of high blood pressure?"
XSS_QUESTION = "How is quokka fever treated?"
XSS_PMID = "99999901"
XSS_DOCUMENT = {
    "id": "xss-quokka", "pmid": XSS_PMID, "url": "javascript:window.__xss=3",
    "title": 'Quokka fever <img src=x onerror="window.__xss=4">',
    "text": ("Quokka fever is treated with rest, fluids and doxycycline for two weeks. "
             "<script>window.__xss=1</script> Quokka fever causes a rash <img src=x onerror=\"window.__xss=2\"> "
             "on the arms and a high fever."),
}


def build_index(directory: Path, embedder: Any, extra: list[Path] = ()) -> Path:
    """A small saved index of ``SERVED_FILES`` and the XSS document (one thread, the session's embedder)."""
    payload = directory.parent / "quokka.jsonl"
    payload.write_text(json.dumps(XSS_DOCUMENT) + "\n")
    rag = MedRAG(Settings(threads=1))
    rag.embedder = embedder
    rag.ingest([*SERVED_FILES, payload, *extra], save_to=directory, progress=False)
    return directory


def load_served(directory: Path, embedder: Any) -> MedRAG:
    rag = MedRAG.load(directory, threads=1)
    rag.embedder = embedder
    return rag


def wait_ready(client: httpx.Client, timeout: float = 120, process: subprocess.Popen[bytes] | None = None,
               err: Path | None = None) -> dict[str, Any]:
    """``/ready``'s body once the server says so; a server ``process`` still starting may refuse connections,
    and its exit fails at once (with its stderr, from ``err``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = client.get("/ready")
        except httpx.TransportError:
            if process is None:
                raise
            response = None
        if response is not None and response.status_code == 200:
            return response.json()
        if process is not None:
            assert process.poll() is None and time.monotonic() < deadline, err.read_text() if err else ""
        elif time.monotonic() > deadline:
            raise AssertionError(f"server not ready: {response.status_code} {response.text}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def served_index(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    return build_index(tmp_path_factory.mktemp("served") / "index", embedder)


@pytest.fixture(scope="module")
def served_rag(served_index: Path, embedder: Any) -> MedRAG:
    return load_served(served_index, embedder)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A keys file with the key ``alice`` (returned) and ``bob``."""
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    store = KeyStore(path)
    token = store.add("alice")
    store.add("bob")
    return path, token


@pytest.fixture(scope="module")
def server(served_index: Path, served_rag: MedRAG, keys: tuple[Path, str],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The served index behind keys, with an audit log; yields url, key, client, app, audit path."""
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    config = ServerConfig(index=served_index, keys=keys[0], audit=audit, rate_limit=0, reload_interval=0, workers=2)
    app = create_app(config, rag=served_rag)
    with ServerThread(app) as url:
        client = httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {keys[1]}"})
        wait_ready(client)
        yield {"url": url, "key": keys[1], "client": client, "app": app, "audit": audit}
        client.close()


def error_of(response: httpx.Response, status: int) -> str:
    """The message of an error response in OpenAI's shape (asserting the status and the shape)."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    assert error["message"] and "\n" not in error["message"]
    return error["message"]


# -- the page shell and security headers -----------------------------------------------------------
def test_page_and_health_need_no_key_and_carry_a_strict_csp(server: dict[str, Any]) -> None:
    bare = httpx.Client(base_url=server["url"])
    assert bare.get("/health").json() == {"status": "ok"}
    page = bare.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    # no CDN, no inline script: every asset is the package's own
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page.text)
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/app.js" defer>']
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        asset = bare.get(f"/static/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
    assert "innerHTML" not in bare.get("/static/app.js").text
    assert bare.get("/static/keys.py").status_code == 404
    assert bare.get("/static/..%2Fkeys.py").status_code == 404


def test_every_other_endpoint_needs_a_valid_key(server: dict[str, Any], keys: tuple[Path, str]) -> None:
    bare = httpx.Client(base_url=server["url"])
    for method, path in (("GET", "/ready"), ("GET", "/metrics"), ("GET", "/v1/models"), ("POST", "/v1/ask"),
                         ("POST", "/v1/search"), ("POST", "/v1/chat/completions")):
        assert "API key" in error_of(bare.request(method, path, json={"question": QUESTION}), 401)
        wrong = bare.request(method, path, headers={"Authorization": "Bearer mrg_not-a-key"})
        assert error_of(wrong, 401) == "invalid API key"
    assert error_of(bare.get("/v1/models", headers={"Authorization": f"Basic {server['key']}"}), 401)
    models = server["client"].get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["medrag"]

    # a key added and revoked while the server runs: the file is re-read
    carol = KeyStore(keys[0]).add("carol")
    assert bare.get("/v1/models", headers={"Authorization": f"Bearer {carol}"}).status_code == 200
    assert server_cli.main(["keys", "revoke", "carol", "--keys", str(keys[0])]) == 0
    assert error_of(bare.get("/v1/models", headers={"Authorization": f"Bearer {carol}"}), 401) == "invalid API key"


def test_keys_file_stores_only_salted_digests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.json"
    assert server_cli.main(["keys", "add", "ward-7", "--keys", str(path)]) == 0
    key = capsys.readouterr().out.strip()
    assert re.fullmatch(r"mrg_[A-Za-z0-9_-]{43}", key)
    text = path.read_text()
    assert key not in text and key[4:] not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyStore(path).verify(key) == "ward-7" and KeyStore(path).verify(key[:-1] + "x") is None
    assert server_cli.main(["keys", "add", "nurse", "--keys", str(path)]) == 0
    assert server_cli.main(["keys", "list", "--keys", str(path)]) == 0
    listed = capsys.readouterr().out
    assert "ward-7" in listed and "nurse" in listed and key not in listed
    assert server_cli.main(["keys", "add", "nurse", "--keys", str(path)]) == 2  # names are unique
    assert "already exists" in capsys.readouterr().err
    assert server_cli.main(["keys", "revoke", "ward-7", "--keys", str(path)]) == 0
    assert KeyStore(path).verify(key) is None
    assert server_cli.main(["keys", "revoke", "ward-7", "--keys", str(path)]) == 2


# -- ask, search, errors -------------------------------------------------------------------------------
def test_ask_returns_exactly_the_answer_json(server: dict[str, Any], served_rag: MedRAG) -> None:
    response = server["client"].post("/v1/ask", json={"question": QUESTION, "k": 4})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    assert data == served_rag.ask(QUESTION, k=4).to_dict()
    assert data["citations"] and re.search(r"\[\d\]", data["text"])
    assert all(c["url"].startswith("http") for c in data["citations"])


def test_ask_options_context_filter_strict_generator(server: dict[str, Any]) -> None:
    client = server["client"]
    plain = client.post("/v1/ask", json={"question": QUESTION}).json()
    shaped = client.post("/v1/ask", json={"question": QUESTION, "context": "8-year-old child", "strict": True,
                                          "retriever": "bm25", "filter": "source_type=text",
                                          "generator": "extractive"}).json()
    assert [r["doc_id"] for r in shaped["retrieved"]] == ["xss-quokka"]  # the filter held
    assert plain["retrieved"] != shaped["retrieved"]
    assert "not served" in error_of(client.post("/v1/ask", json={"question": QUESTION, "generator": "gpt2"}), 422)


def test_search_returns_ranked_passages(server: dict[str, Any], served_rag: MedRAG) -> None:
    response = server["client"].post("/v1/search", json={"query": QUESTION, "k": 3})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["rank"] for r in results] == [1, 2, 3]
    assert [r["chunk_id"] for r in results] == [h.chunk.id for h in served_rag.retrieve(QUESTION, k=3)]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert {"title", "text", "url", "pmid", "doc_id", "metadata"} <= set(results[0])
    dense = server["client"].post("/v1/search", json={"query": XSS_QUESTION, "k": 1, "retriever": "dense"}).json()
    assert dense["results"][0]["pmid"] == XSS_PMID and dense["results"][0]["dense"] > 0.5


def test_bad_requests_get_one_clear_message_and_the_server_keeps_serving(server: dict[str, Any]) -> None:
    client = server["client"]
    assert "malformed JSON" in error_of(client.post("/v1/ask", content=b'{"question": '), 400)
    assert "not UTF-8" in error_of(client.post("/v1/ask", content=b'\xff\xfe{"question"}'), 400)
    assert "empty request body" in error_of(client.post("/v1/search", content=b""), 400)
    assert "too large" in error_of(client.post("/v1/ask", content=b"x" * 70_000), 413)
    chunked = client.post("/v1/ask", content=iter([b'{"question": "', b"a" * 65_536, b'"}']))  # no Content-Length
    assert "too large" in error_of(chunked, 413)
    assert "empty question" in error_of(client.post("/v1/ask", json={"question": "   "}), 422)
    assert "2,000" in error_of(client.post("/v1/ask", json={"question": "why " * 600}), 422)
    assert "empty query" in error_of(client.post("/v1/search", json={"query": ""}), 422)
    assert error_of(client.post("/v1/ask", json={"questoin": QUESTION}), 422).startswith("question:")
    assert "unknown field" in error_of(client.post("/v1/ask", json={"question": QUESTION, "kk": 3}), 422)
    assert error_of(client.post("/v1/ask", json={"question": QUESTION, "k": 0}), 422).startswith("k:")
    assert "JSON object" in error_of(client.post("/v1/ask", json=[QUESTION]), 422)
    assert "retriever" in error_of(client.post("/v1/search", json={"query": QUESTION, "retriever": "magic"}), 422)
    assert "filter" in error_of(client.post("/v1/search", json={"query": QUESTION, "filter": "colour=red"}), 422)
    assert error_of(client.get("/v1/ask"), 405)
    assert error_of(client.get("/nowhere"), 404)
    assert client.post("/v1/ask", json={"question": QUESTION}).status_code == 200


def test_rate_limit_answers_429_with_retry_after(served_index: Path, served_rag: MedRAG,
                                                 keys: tuple[Path, str]) -> None:
    app = create_app(ServerConfig(index=served_index, keys=keys[0], rate_limit=3, reload_interval=0), rag=served_rag)
    with ServerThread(app) as url:
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys[1]}"})
        assert [client.get("/v1/models").status_code for _ in range(3)] == [200, 200, 200]
        limited = client.get("/v1/models")
        assert "rate limit" in error_of(limited, 429)
        assert 1 <= int(limited.headers["retry-after"]) <= 20
        other = KeyStore(keys[0]).add("dave")  # limits are per key
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {other}"}).status_code == 200
        KeyStore(keys[0]).revoke("dave")


def test_rate_limiter_refills_over_time() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert all(limiter.take("a") == 0 for _ in range(60))
    assert limiter.take("a") == 1
    now[0] += 1.0
    assert limiter.take("a") == 0 and limiter.take("b") == 0
    assert RateLimiter(0).take("a") == 0


# -- micro-batching, metrics, audit -------------------------------------------------------------------
def test_concurrent_searches_share_one_retrieve_batch(served_index: Path, served_rag: MedRAG) -> None:
    app = create_app(ServerConfig(index=served_index, reload_interval=0, batch_window_ms=300, rate_limit=0),
                     rag=served_rag)
    queries = ["high blood pressure symptoms", "blood pressure medicines", "quokka fever", "hypertension in children",
               "stroke risk", "kidney failure", "diuretics side effects", "lifestyle changes"]
    with ServerThread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        wait_ready(client)
        batcher = app.state.service.batcher
        before = batcher.calls
        with concurrent.futures.ThreadPoolExecutor(len(queries) + 2) as pool:
            same = list(pool.map(lambda q: client.post("/v1/search", json={"query": q, "k": 3}), queries))
        assert batcher.calls == before + 1  # eight requests, one embedding call and one FAISS search
        for query, response in zip(queries, same):
            assert [r["chunk_id"] for r in response.json()["results"]] == \
                   [h.chunk.id for h in served_rag.retrieve(query, k=3)]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:  # different k: grouped apart
            mixed = list(pool.map(lambda k: client.post("/v1/search", json={"query": QUESTION, "k": k}), [2, 2, 5, 5]))
        assert batcher.calls == before + 3
        assert [len(r.json()["results"]) for r in mixed] == [2, 2, 5, 5]
        assert "medrag_search_batch_size_bucket" in client.get("/metrics").text


def test_metrics_count_requests_by_endpoint_and_status(server: dict[str, Any]) -> None:
    client = server["client"]
    client.post("/v1/search", json={"query": QUESTION})
    client.post("/v1/search", json={"query": ""})
    text = client.get("/metrics").text
    assert re.search(r'medrag_requests_total\{endpoint="/v1/search",status="200"\} [1-9]', text)
    assert re.search(r'medrag_requests_total\{endpoint="/v1/search",status="422"\} [1-9]', text)
    assert 'medrag_request_seconds_bucket{endpoint="/v1/search"' in text
    chunks = served_chunks = server["app"].state.service.watcher.current.chunks
    assert f"medrag_index_chunks {float(chunks)}" in text and served_chunks > 0
    assert "medrag_ready 1.0" in text


def test_audit_log_records_requests_with_the_question_only_hashed(server: dict[str, Any]) -> None:
    question = f"What are the symptoms of high blood pressure? audit-{uuid.uuid4().hex}"
    server["client"].post("/v1/ask", json={"question": question})
    server["client"].post("/v1/ask", json={"question": ""})
    audit = server["audit"]
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    salt = load_salt(salt_path(audit), create=False)
    asked = [r for r in lines if r["question_hmac"] == question_hash(salt, question)]
    assert len(asked) == 1
    record = asked[0]
    assert record["key"] == "alice" and record["endpoint"] == "/v1/ask" and record["status"] == 200
    assert record["latency_ms"] > 0 and record["sources"] and all(s.startswith("http") for s in record["sources"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["time"])
    assert any(r["status"] == 422 and r["endpoint"] == "/v1/ask" for r in lines)
    assert any(r["status"] == 401 and r["key"] is None for r in lines)
    assert question not in audit.read_text() and "audit-" not in audit.read_text()
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600
    assert stat.S_IMODE(salt_path(audit).stat().st_mode) == 0o600
    assert not any(r["endpoint"] in ("/health", "/") for r in lines)
    # the documented check: hash known questions with the salt and count the lines carrying them
    check = subprocess.run([sys.executable, "-m", "medrag.server.audit", str(audit)], input=question + "\n",
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.stdout.split() == [question_hash(salt, question), "1"]


# -- hot reload --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_hot_reload_while_ingesting_fails_no_request(served_index: Path, embedder: Any, tmp_path: Path) -> None:
    directory = Path(shutil.copytree(served_index, tmp_path / "index"))
    rag = load_served(directory, embedder)
    app = create_app(ServerConfig(index=directory, reload_interval=0.2, rate_limit=0, workers=2), rag=rag)
    errors: list[str] = []
    seen: list[int] = []
    stop = threading.Event()

    def loop(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
        while not stop.is_set():
            response = client.post(path, json=body)
            if response.status_code != 200:
                errors.append(f"{path} {response.status_code} {response.text}")
            else:
                seen.append(int(response.headers["x-medrag-generation"]))
            time.sleep(0.05)  # leave the ingest some of the two CPUs

    with ServerThread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        first = wait_ready(client)["generation"]
        threads = [threading.Thread(target=loop, args=(client, "/v1/search", {"query": "anabolic steroids", "k": 3})),
                   threading.Thread(target=loop, args=(client, "/v1/ask", {"question": QUESTION}))]
        for thread in threads:
            thread.start()
        script = Path(sys.executable).parent / "medrag"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "medrag.cli"]
        ingest = subprocess.run([*command, "ingest", str(NEW_FILE), "--index", str(directory), "--quiet",
                                 "--threads", "1"], capture_output=True, text=True, timeout=300, check=False,
                                env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert ingest.returncode == 0, ingest.stderr
        deadline = time.monotonic() + 60
        while client.get("/ready").json()["generation"] == first and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # a few requests on the new generation
        stop.set()
        for thread in threads:
            thread.join()
        assert errors == []
        assert seen and seen[0] == first and max(seen) > first
        assert sum(g > first for g in seen) >= 1
        top = client.post("/v1/search", json={"query": "What are anabolic steroids?", "k": 1}).json()
        assert top["generation"] > first and "anabolicsteroids" in top["results"][0]["url"]


# -- the command line ------------------------------------------------------------------------------------
def test_serve_refuses_a_public_host_without_keys(served_index: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "medrag.server.cli", "serve", "--index", str(served_index),
                             "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "refusing to serve on 0.0.0.0 without --keys" in result.stderr
    assert server_cli.is_loopback("127.0.0.1") and server_cli.is_loopback("::1")
    assert server_cli.is_loopback("localhost") and not server_cli.is_loopback("10.0.0.5")
    missing = subprocess.run([sys.executable, "-m", "medrag.server.cli", "serve", "--index",
                              str(served_index.parent / "nothing")], capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2 and missing.stderr.startswith("medrag: error: index directory")


@pytest.mark.slow
def test_no_question_or_context_in_any_file_or_output(served_index: Path, tmp_path: Path) -> None:
    """A unique question token and context token through every endpoint: neither in any file the server wrote
    (audit log, salt, keys, the index directory) nor in its stdout/stderr."""
    work = tmp_path / "work"
    work.mkdir()
    directory = Path(shutil.copytree(served_index, work / "index"))
    keys_path = work / "keys.json"
    key = KeyStore(keys_path).add("privacy")
    question_token, context_token = f"qtok{uuid.uuid4().hex}", f"ctok{uuid.uuid4().hex}"
    question = f"What are the symptoms of high blood pressure {question_token}?"
    context = f"72-year-old woman {context_token} on metformin"
    port = free_port()
    out, err = work / "server.out", work / "server.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "medrag.server.cli", "serve", "--index", str(directory),
                                    "--keys", str(keys_path), "--port", str(port), "--threads", "1",
                                    "--rate-limit", "0"], cwd=work, stdout=stdout, stderr=stderr,
                                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                              headers={"Authorization": f"Bearer {key}"})
        wait_ready(client, 120, process, err)
        chat = {"model": "medrag", "messages": [{"role": "user", "content": question}], "medrag_context": context}
        sent = [
            client.post("/v1/ask", json={"question": question, "context": context}),
            client.post("/v1/search", json={"query": question}),
            client.post("/v1/chat/completions", json=chat),
            client.post("/v1/chat/completions", json={**chat, "stream": True}),
            client.post("/v1/ask", json={"question": question, "context": context, "k": question_token}),
            client.post("/v1/ask", json={"question": question * 40, "context": context}),
            client.post("/v1/ask", json={question_token: context}),
            client.post("/v1/ask", content=f'{{"question": "{question}", "context": "{context}"'.encode()),
            client.post("/v1/chat/completions", json={**chat, "model": question_token}),
            client.get(f"/v1/search?query={question_token}&context={context_token}"),
            client.get(f"/{question_token}?context={context_token}"),
            httpx.post(f"http://127.0.0.1:{port}/v1/ask", json={"question": question, "context": context}),
        ]
        assert [r.status_code for r in sent] == [200, 200, 200, 200, 422, 422, 422, 400, 404, 405, 404, 401]
        assert question_token in sent[0].json()["question"]  # the asker gets their own question back
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    written = [p for p in work.rglob("*") if p.is_file()]
    audit = work / "audit.jsonl"
    assert audit in written and salt_path(audit) in written
    assert len(audit.read_text().splitlines()) >= len(sent)
    assert "/v1/ask" in err.read_text()  # the access lines are there, without content
    for path in written:
        data = path.read_bytes()
        for token in (question_token, context_token):
            assert token.encode() not in data, f"{token} found in {path}"
