"""The FastAPI app: ask, search, OpenAI-compatible chat, the web page, health, readiness and metrics.

``create_app(ServerConfig(index=DIR, keys=FILE))`` returns an ASGI app; ``medrag serve`` runs it on uvicorn.
The index loads once, in the background (``/ready`` answers 503 until it has); model work runs in a
thread pool, never on the event loop; concurrent searches share one ``retrieve_batch`` call
(``batching``); a new index generation is swapped in as it is committed (``reload``).
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from medrag.errors import MedRAGError
from medrag.server import schemas
from medrag.server.audit import AuditLog
from medrag.server.batching import SearchBatcher
from medrag.server.keys import KeyStore
from medrag.server.limits import RateLimiter
from medrag.server.reload import Generation, GenerationWatcher, warm

log = logging.getLogger(__name__)
access_log = logging.getLogger("medrag.server.access")

MODEL = "medrag"
MAX_BODY = 64 * 1024
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff",
                    "referrer-policy": "no-referrer", "x-frame-options": "DENY",
                    "cross-origin-opener-policy": "same-origin",
                    "permissions-policy": "camera=(), microphone=(), geolocation=()"}
PAGE_FILES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
UNAUDITED = {"/health", "/", "/static/{name}"}  # the page shell and liveness: no key, nothing private


@dataclass
class ServerConfig:
    """How ``medrag serve`` serves an index (flags of the same names)."""

    index: Path
    keys: Path | None = None  # None: no authentication (loopback only; the CLI enforces it)
    audit: Path | None = None  # JSON-lines audit log; None: no audit log
    generators: tuple[str, ...] = ("extractive",)  # the first is the default
    rate_limit: int = 60  # requests per minute per key; 0: unlimited
    threads: int | None = None  # torch/FAISS threads of the loaded pipeline (None: the index's setting)
    workers: int = 4  # threads running model work
    batch_window_ms: float = 0.0  # how long a search waits for others to share its batch (0: only queued ones)
    max_batch: int = 64
    batch_concurrency: int = 1  # search batches running at once (more: use more cores at torch threads=1)
    reload_interval: float = 2.0  # seconds between manifest checks; 0: never reload
    max_body: int = MAX_BODY
    max_question: int = schemas.MAX_QUESTION
    tls: bool = False  # served over HTTPS (adds Strict-Transport-Security)
    key: str | None = field(default=None, repr=False)  # an encrypted index's passphrase (None: $MEDRAG_INDEX_KEY)

    def __post_init__(self) -> None:
        self.index = Path(self.index)
        self.generators = tuple(dict.fromkeys(self.generators or ("extractive",)))


class ApiError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "code"}}``."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.headers = status, message, type, code, headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "type": self.type, "code": self.code}},
                            status_code=self.status, headers=self.headers)


class Metrics:
    """Prometheus metrics in the app's own registry (several apps in one process do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("medrag_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
                                registry=r)
        self.latency = Histogram("medrag_request_seconds", "Request latency by endpoint", ["endpoint"], registry=r,
                                 buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.batch = Histogram("medrag_search_batch_size", "Searches answered by one retrieve_batch call",
                               registry=r, buckets=(1, 2, 4, 8, 16, 32, 64))
        self.documents = Gauge("medrag_index_documents", "Documents in the served index", registry=r)
        self.chunks = Gauge("medrag_index_chunks", "Chunks (vectors) in the served index", registry=r)
        self.generation = Gauge("medrag_index_generation", "Generation of the served index", registry=r)
        self.ready = Gauge("medrag_ready", "1 once the index is loaded", registry=r)

    def served(self, generation: Generation) -> None:
        self.documents.set(generation.documents)
        self.chunks.set(generation.chunks)
        self.generation.set(generation.number or 0)
        self.ready.set(1)


def default_loader(config: ServerConfig) -> Callable[[Any | None], Any]:
    """Open the index with ``MedRAG.load``, reusing ``previous``'s loaded models when the build settings
    match, then warm it (embedder, search, generators) so the first request pays no start-up."""
    from medrag import MedRAG

    def load(previous: Any | None) -> Any:
        rag = None
        if previous is not None:
            try:
                rag = MedRAG.load(config.index, settings=previous.settings, key=config.key)
            except MedRAGError as exc:
                log.info("new generation differs in build settings, loading its own models: %s", exc)
            else:
                for part in ("embedder", "reranker"):
                    try:
                        setattr(rag, part, getattr(previous, part))
                    except AttributeError:
                        pass
        if rag is None:
            changes = {"threads": config.threads} if config.threads is not None else {}
            rag = MedRAG.load(config.index, key=config.key, **changes)
        warm(rag, config.generators)
        return rag

    return load


class Service:
    """Everything the endpoints share: the served generation, the pool, the batcher, keys, audit, metrics."""

    def __init__(self, config: ServerConfig, rag: Any | None, loader: Callable[[Any | None], Any] | None) -> None:
        self.config = config
        self.initial = rag
        self.keys = KeyStore.open_existing(config.keys) if config.keys else None
        self.audit = AuditLog(config.audit) if config.audit else None
        self.limiter = RateLimiter(config.rate_limit)
        self.metrics = Metrics()
        self.executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="medrag-worker")
        self.batcher = SearchBatcher(self.executor, window=config.batch_window_ms / 1000, max_batch=config.max_batch,
                                     concurrency=config.batch_concurrency, on_batch=self.metrics.batch.observe)
        self.watcher = GenerationWatcher(config.index, loader or default_loader(config),
                                         interval=config.reload_interval, on_swap=self.metrics.served)

    async def start(self) -> None:
        self.batcher.start()
        await self.watcher.start(self.initial)
        self.initial = None

    async def stop(self) -> None:
        await self.watcher.stop()
        await self.batcher.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.audit is not None:
            self.audit.close()

    def generation(self) -> Generation:
        """The generation this request will use from start to end (read once)."""
        current = self.watcher.current
        if current is None:
            message = self.watcher.error or "the index is still loading; retry shortly"
            raise ApiError(503, message, "service_unavailable", "not_ready", {"Retry-After": "5"})
        return current

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in the thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(fn, *args, **kwargs))

    def generator(self, name: str | None) -> str:
        if name is None:
            return self.config.generators[0]
        if name not in self.config.generators:
            raise ApiError(422, f"generator {name!r} is not served here; choose from "
                                f"{', '.join(self.config.generators)}", code="invalid_generator")
        return name


# -- request helpers -------------------------------------------------------------------------------
def service(request: Request) -> Service:
    return request.app.state.service


async def authorize(request: Request) -> str:
    """The key name of the request (``local`` without a keys file); 401 or 429 otherwise."""
    svc = service(request)
    name = "local"
    if svc.keys is not None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing API key: send the header 'Authorization: Bearer KEY'",
                           "authentication_error", "missing_api_key")
        found = svc.keys.verify(token.strip())
        if found is None:
            raise ApiError(401, "invalid API key", "authentication_error", "invalid_api_key")
        name = found
    request.state.key = name
    wait = svc.limiter.take(name)
    if wait:
        raise ApiError(429, f"rate limit exceeded: {svc.config.rate_limit} requests per minute for key {name!r}; "
                            f"retry in {wait} s", "rate_limit_error", "rate_limit_exceeded", {"Retry-After": str(wait)})
    return name


async def read_json(request: Request) -> Any:
    """The request body as JSON: 413 over the size limit, 400 when it is not JSON."""
    limit = service(request).config.max_body
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise ApiError(413, f"request body too large: {int(length):,} bytes, the limit is {limit:,}",
                       code="request_too_large")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise ApiError(413, f"request body too large: over {limit:,} bytes", code="request_too_large")
    if not body.strip():
        raise ApiError(400, "empty request body: send a JSON object", code="invalid_json")
    try:
        return json.loads(body.decode("utf-8"))  # JSON over HTTP is UTF-8 (RFC 8259)
    except UnicodeDecodeError:
        raise ApiError(400, "malformed JSON: the body is not UTF-8", code="invalid_json") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                       code="invalid_json") from None


def note_audit(request: Request, text: str, sources: list[str]) -> None:
    """What the audit record of this request holds beyond status and time: the hashed question, sources."""
    svc = service(request)
    if svc.audit is not None:
        request.state.audit = {"question_hash": svc.audit.hash(text), "sources": sources}


def sse_pieces(text: str) -> list[str]:
    """The answer text in sentence-sized pieces whose concatenation is exactly ``text``."""
    return [piece for piece in re.split(r"(?<=\n\n)|(?<=\] )", text) if piece]


# -- middleware --------------------------------------------------------------------------------------
class Observe:
    """Security headers on every response; metrics, the access log line and the audit record per request.

    The access log names the route template (never the raw path or query string), status, latency and key.
    """

    def __init__(self, app: Any, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status, started = 500, False
        svc = self.service

        async def send_with_headers(message: dict) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if not scope["path"].startswith("/static/"):
                    headers.setdefault("cache-control", "no-store")
                if svc.config.tls:
                    headers.setdefault("strict-transport-security", "max-age=31536000")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # noqa: BLE001 - answered here, so that nothing above logs its message
            # the message may quote the question: log the exception's type and where it arose, not its text
            where = "".join(traceback.format_tb(exc.__traceback__)[-4:])
            log.error("internal error (%s) in %s:\n%s", type(exc).__name__, scope["path"], where)
            if not started:
                await ApiError(500, f"internal error ({type(exc).__name__}); the server logged where",
                               "server_error", "internal_error").response()(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            state = scope.get("state") or {}
            key = state.get("key")
            svc.metrics.requests.labels(endpoint, str(status)).inc()
            svc.metrics.latency.labels(endpoint).observe(seconds)
            access_log.info("%s %s %d %.1f ms key=%s", scope["method"], endpoint, status, seconds * 1000, key or "-")
            if svc.audit is not None and endpoint not in UNAUDITED:
                extra = state.get("audit") or {}
                svc.audit.write(key=key, endpoint=endpoint, status=status, latency_ms=seconds * 1000,
                                question_hash=extra.get("question_hash"), sources=extra.get("sources", []))


# -- the app -------------------------------------------------------------------------------------------
def create_app(config: ServerConfig, rag: Any | None = None,
               loader: Callable[[Any | None], Any] | None = None) -> FastAPI:
    """The medrag service for ``config``; ``rag``: an already loaded pipeline to serve first (tests),
    ``loader(previous)``: how a generation is opened (default: ``MedRAG.load`` sharing models)."""
    svc = Service(config, rag, loader)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await svc.start()
        try:
            yield
        finally:
            await svc.stop()

    app = FastAPI(title="medrag", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.service = svc
    app.add_middleware(Observe, service=svc)
    page = _page()
    authorized = [Depends(authorize)]

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(MedRAGError)
    async def _medrag_error(request: Request, exc: MedRAGError) -> JSONResponse:
        return ApiError(422, str(exc), code="invalid_value").response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return ApiError(exc.status_code, str(exc.detail), kind, None, dict(exc.headers or {})).response()

    # -- the page shell (no key) ------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(page["index.html"], media_type="text/html; charset=utf-8")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in PAGE_FILES:
            raise ApiError(404, "not found", "not_found_error")
        return Response(page[name], media_type=PAGE_FILES[name], headers={"cache-control": "no-cache"})

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    # -- keyed endpoints -----------------------------------------------------------------------------
    @app.get("/ready", dependencies=authorized)
    async def ready() -> dict[str, Any]:
        gen = svc.generation()
        return {"status": "ready", "generation": gen.number, "documents": gen.documents, "chunks": gen.chunks,
                "generators": list(config.generators)}

    @app.get("/metrics", dependencies=authorized)
    async def metrics() -> Response:
        return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/search", dependencies=authorized)
    async def search(request: Request) -> JSONResponse:
        body = schemas.parse(schemas.SearchRequest, await read_json(request))
        query = schemas.check_question(body.query, "query", config.max_question)
        gen = svc.generation()
        hits = await svc.batcher.search(gen.rag, query, body.k, body.filter, body.retriever)
        results = [schemas.hit_json(rank, hit) for rank, hit in enumerate(hits, 1)]
        note_audit(request, query, [s for s in map(schemas.source_of, results) if s])
        return JSONResponse({"object": "list", "generation": gen.number, "results": results},
                            headers={"x-medrag-generation": str(gen.number)})

    async def answer(request: Request, question: str, *, generator: str | None = None, **options: Any) -> tuple[
            dict[str, Any], Generation]:
        gen = svc.generation()
        result = await svc.run(gen.rag.ask, question, generator=svc.generator(generator), **options)
        data = result.to_dict()
        note_audit(request, question, [s for s in map(schemas.source_of, data.get("citations", [])) if s])
        return data, gen

    @app.post("/v1/ask", dependencies=authorized)
    async def ask(request: Request) -> JSONResponse:
        body = schemas.parse(schemas.AskRequest, await read_json(request))
        question = schemas.check_question(body.question, limit=config.max_question)
        data, gen = await answer(request, question, generator=body.generator, k=body.k, where=body.filter,
                                 retriever=body.retriever, context=body.context, strict=body.strict)
        return JSONResponse(data, headers={"x-medrag-generation": str(gen.number)})

    @app.post("/v1/case", dependencies=authorized)
    async def case(request: Request) -> JSONResponse:
        body = schemas.parse(schemas.CaseRequest, await read_json(request))
        gen = svc.generation()
        result = await svc.run(gen.rag.case, body.note, k=body.k, similar=body.similar, strict=body.strict)
        data = result.to_dict()
        sources = [s for p in data["problems"] for s in map(schemas.source_of, p["answer"]["citations"]) if s]
        note_audit(request, body.note, sources)  # the note only as a salted hash, like a question
        return JSONResponse(data, headers={"x-medrag-generation": str(gen.number)})

    @app.get("/v1/models", dependencies=authorized)
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "medrag"}
                                           for name in _model_names(config)]}

    @app.post("/v1/chat/completions", dependencies=authorized)
    async def chat(request: Request) -> Response:
        body = schemas.parse(schemas.ChatRequest, await read_json(request))
        names = _model_names(config)
        if body.model not in names:
            raise ApiError(404, f"the model {body.model!r} does not exist here; use one of {', '.join(names)}",
                           "invalid_request_error", "model_not_found")
        question = schemas.chat_question(body)
        generator = body.model.partition(":")[2] or None
        data, gen = await answer(request, question, generator=generator, context=body.medrag_context)
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        headers = {"x-medrag-generation": str(gen.number)}
        common = {"id": completion_id, "created": created, "model": body.model,
                  "system_fingerprint": f"medrag-generation-{gen.number}"}
        if not body.stream:
            return JSONResponse({**common, "object": "chat.completion",
                                 "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                              "message": {"role": "assistant", "content": data["text"]}}],
                                 "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                                 "citations": data["citations"]}, headers=headers)

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            payload = {**common, "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        async def events() -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            for piece in sse_pieces(data["text"]):
                yield chunk({"content": piece})
            yield chunk({}, "stop", citations=data["citations"])
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={**headers, "x-accel-buffering": "no"})

    return app


def _model_names(config: ServerConfig) -> list[str]:
    """``medrag`` (the default generator) and ``medrag:GENERATOR`` for every other served one."""
    return [MODEL, *(f"{MODEL}:{name}" for name in config.generators[1:])]


def _page() -> dict[str, bytes]:
    folder = resources.files("medrag.server") / "page"
    return {name: (folder / name).read_bytes() for name in ("index.html", *PAGE_FILES)}


def _version() -> str:
    from medrag import __version__

    return __version__
