"""``medrag serve``, ``medrag keys add|list|revoke`` and ``medrag mcp``: registered on medrag's CLI.

``register(subparsers)`` adds the three commands; ``python -m medrag.server.cli ...`` runs them alone.
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from medrag.errors import MedRAGError

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_serving(host: str, keys: Path | None, certfile: Path | None, keyfile: Path | None) -> None:
    """Refuse what would expose the index: a non-loopback host without keys, half a TLS pair."""
    if keys is None and not is_loopback(host):
        raise MedRAGError(f"refusing to serve on {host} without --keys: anyone who can reach it could query the "
                          f"index; create a key with 'medrag keys add NAME --keys FILE' and pass --keys FILE")
    if (certfile is None) != (keyfile is None):
        raise MedRAGError("--ssl-certfile and --ssl-keyfile go together")
    for path in (certfile, keyfile):
        if path is not None and not path.is_file():
            raise MedRAGError(f"TLS file {path} does not exist")


def holds_notes(index: Path, manifest: dict, key: str | None = None) -> bool:
    """Whether an index holds clinical notes (read from its chunk store's per-source counts; an encrypted
    index's is decrypted in memory with ``key``, default ``$MEDRAG_INDEX_KEY``)."""
    from medrag.stores import layout, sealed
    from medrag.stores.chunks import ChunkStore

    if layout.is_encrypted(manifest):
        index_key = layout.unlock(index, manifest, key if key is not None else sealed.passphrase())
        store = ChunkStore.from_bytes(layout.read_part(index, manifest, "chunks", index_key), f"the chunks of {index}")
    else:
        store = ChunkStore.load(Path(index) / manifest["files"]["chunks"])
    return "clinical_note" in store.summary()


def _cmd_serve(args: argparse.Namespace) -> int:
    check_serving(args.host, args.keys, args.ssl_certfile, args.ssl_keyfile)
    from medrag.stores import layout, sealed

    manifest = layout.read_manifest(args.index)  # a missing or broken index: one line now, not a server that never gets ready
    passphrase = sealed.passphrase(args.key_file)
    if layout.is_encrypted(manifest):  # a missing or wrong key too
        layout.unlock(args.index, manifest, passphrase)
    if args.keys is None and holds_notes(args.index, manifest, passphrase):
        raise MedRAGError(f"refusing to serve {args.index} without --keys: it holds clinical notes; create a key with "
                          f"'medrag keys add NAME --keys FILE' and pass --keys FILE")
    try:
        import uvicorn

        from medrag.server.app import ServerConfig, create_app
    except ImportError as exc:
        raise MedRAGError(f"medrag serve needs the serve extra: pip install 'medrag[serve]' ({exc.name} is missing)")
    from medrag.server.keys import KeyStore

    if args.keys is not None and not KeyStore.open_existing(args.keys).records():
        log.warning("keys file %s holds no key: every request will be refused until 'medrag keys add'", args.keys)
    audit = args.audit
    if audit is None and args.keys is not None and not args.no_audit:
        audit = args.keys.resolve().parent / "audit.jsonl"
    config = ServerConfig(index=args.index, keys=args.keys, audit=None if args.no_audit else audit,
                          generators=tuple(args.generator or ("extractive",)), rate_limit=args.rate_limit,
                          threads=args.threads, workers=args.workers, batch_window_ms=args.batch_window_ms,
                          batch_concurrency=args.batch_concurrency,
                          reload_interval=args.reload_interval, tls=args.ssl_certfile is not None, key=passphrase)
    _server_logging()
    scheme = "https" if config.tls else "http"
    print(f"medrag: serving {args.index} on {scheme}://{args.host}:{args.port}/ "
          f"(keys: {args.keys or 'none, loopback only'}; audit log: {config.audit or 'off'}); "
          f"loading the index, /ready says when", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(
        create_app(config), host=args.host, port=args.port, log_config=None, access_log=False, server_header=False,
        ssl_certfile=str(args.ssl_certfile) if args.ssl_certfile else None,
        ssl_keyfile=str(args.ssl_keyfile) if args.ssl_keyfile else None, timeout_graceful_shutdown=10))
    server.run()
    return 0


def _server_logging() -> None:
    """Our info lines (generation swaps, access lines without content) and uvicorn's start-up line on stderr."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("medrag.server", "uvicorn.error"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)


def _cmd_keys(args: argparse.Namespace) -> int:
    from medrag.server.keys import KeyStore

    if args.keys_command == "add":
        key = KeyStore(args.keys).add(args.name)
        print(f"added key {args.name!r} to {args.keys}; it is shown only now, store it safely:", file=sys.stderr)
        print(key)
    elif args.keys_command == "list":
        if not args.keys.is_file():
            raise MedRAGError(f"keys file {args.keys} does not exist")
        records = KeyStore(args.keys).records()
        for record in records:
            print(f"{record.name}\tcreated {record.created}")
        if not records:
            print(f"no keys in {args.keys}", file=sys.stderr)
    else:
        if not args.keys.is_file():
            raise MedRAGError(f"keys file {args.keys} does not exist")
        KeyStore(args.keys).revoke(args.name)
        print(f"revoked key {args.name!r} (a running server refuses it from its next request)", file=sys.stderr)
    return 0


def _cmd_mcp(args: argparse.Namespace) -> int:
    from medrag.stores import layout

    layout.read_manifest(args.index)
    try:
        from medrag.server.mcp_tools import serve_stdio
    except ImportError as exc:
        raise MedRAGError(f"medrag mcp needs the serve extra: pip install 'medrag[serve]' ({exc.name} is missing)")
    serve_stdio(args.index, threads=args.threads, generators=tuple(args.generator or ("extractive",)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``serve``, ``keys`` and ``mcp`` to medrag's subcommands."""
    serve = sub.add_parser("serve", help="serve an index over HTTP: ask, search, OpenAI-compatible chat, a web page")
    serve.add_argument("--index", required=True, type=Path, help="index directory (reloaded as ingests commit)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; any other "
                                                           "needs --keys)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--keys", type=Path, help="API keys file (medrag keys add); every request then needs a key")
    serve.add_argument("--key-file", type=Path, help="an encrypted index's key (passphrase) file (default: "
                                                     "$MEDRAG_INDEX_KEY)")
    serve.add_argument("--audit", type=Path, help="audit log, JSON lines (default: audit.jsonl beside --keys)")
    serve.add_argument("--no-audit", action="store_true", help="write no audit log")
    serve.add_argument("--generator", action="append", metavar="SPEC",
                       help="a generator requests may use (repeatable; the first is the default; default extractive)")
    serve.add_argument("--rate-limit", type=int, default=60, metavar="N",
                       help="requests per minute per key (default 60; 0: unlimited)")
    serve.add_argument("--threads", type=int, help="CPU threads for torch and FAISS (default: the index's setting)")
    serve.add_argument("--workers", type=int, default=4, help="threads running model work (default 4)")
    serve.add_argument("--batch-window-ms", type=float, default=0.0,
                       help="how long a search waits for others to share its batch (default 0: only those queued)")
    serve.add_argument("--batch-concurrency", type=int, default=1,
                       help="search batches run at once (default 1; raise it with --threads 1 on many cores)")
    serve.add_argument("--reload-interval", type=float, default=2.0,
                       help="seconds between checks for a new index generation (default 2; 0: never)")
    serve.add_argument("--ssl-certfile", type=Path, help="TLS certificate (PEM) to serve HTTPS")
    serve.add_argument("--ssl-keyfile", type=Path, help="TLS private key (PEM)")
    serve.set_defaults(run=_cmd_serve)

    keys = sub.add_parser("keys", help="manage the API keys of medrag serve")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    for name, help_text in (("add", "create a key and print it once"), ("list", "list key names"),
                            ("revoke", "remove a key")):
        parser = keys_sub.add_parser(name, help=help_text)
        if name != "list":
            parser.add_argument("name", help="who the key is for, e.g. ward-7 or alice")
        parser.add_argument("--keys", required=True, type=Path, help="keys file (created by the first add)")
        parser.set_defaults(run=_cmd_keys)

    mcp = sub.add_parser("mcp", help="serve search and ask as Model Context Protocol tools over stdio")
    mcp.add_argument("--index", required=True, type=Path, help="index directory")
    mcp.add_argument("--threads", type=int, help="CPU threads for torch and FAISS")
    mcp.add_argument("--generator", action="append", metavar="SPEC",
                     help="a generator the ask tool may use (repeatable; the first is the default)")
    mcp.set_defaults(run=_cmd_mcp)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m medrag.server.cli serve|keys|mcp ...`` (the same commands as ``medrag``)."""
    parser = argparse.ArgumentParser(prog="medrag", description="medrag as a service")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return args.run(args)
    except MedRAGError as exc:
        print(f"medrag: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
