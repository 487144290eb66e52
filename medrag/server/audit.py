"""The audit log: one JSON line per request (time, key name, endpoint, status, latency, cited sources).

Questions are recorded only as an HMAC-SHA256 under a secret salt kept in ``AUDIT.salt`` beside the log
(created once, mode 0600): an auditor holding the salt can check whether a known question was asked,
while the log alone reveals nothing (a plain hash of a short question could be guessed by trying
questions). Patient context is never recorded, not even hashed.

Check questions against a log: ``python -m medrag.server.audit AUDIT.jsonl < questions.txt``
(one question a line; prints each question's hash and how many log lines carry it).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medrag.errors import MedRAGError
from medrag.server.keys import write_private

log = logging.getLogger(__name__)


def salt_path(audit_path: Path) -> Path:
    """Where the salt of the audit log at ``audit_path`` lives."""
    return audit_path.with_name(audit_path.name + ".salt")


def load_salt(path: Path, create: bool = True) -> bytes:
    """The salt in ``path``; created (32 random bytes, hex, mode 0600) when missing and ``create``."""
    if not path.exists():
        if not create:
            raise MedRAGError(f"no audit salt at {path}")
        write_private(path, (secrets.token_hex(32) + "\n").encode())
        log.info("created audit salt %s", path)
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise MedRAGError(f"cannot read audit salt {path}: {exc}") from exc


def question_hash(salt: bytes, question: str) -> str:
    """HMAC-SHA256 of the question with runs of whitespace collapsed (case and wording kept)."""
    return hmac.new(salt, " ".join(question.split()).encode("utf-8"), hashlib.sha256).hexdigest()


class AuditLog:
    """Appends audit records as JSON lines (thread-safe, flushed per line, file mode 0600)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.salt = load_salt(salt_path(self.path))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._fh = os.fdopen(fd, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def hash(self, question: str) -> str:
        return question_hash(self.salt, question)

    def write(self, *, key: str | None, endpoint: str, status: int, latency_ms: float,
              question_hash: str | None = None, sources: Sequence[str] = (), **extra: Any) -> None:
        """One record; ``sources`` are the cited PMIDs (``pmid:N``) or URLs."""
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "key": key, "endpoint": endpoint,
                  "status": status, "latency_ms": round(latency_ms, 2), "question_hmac": question_hash,
                  "sources": list(sources), **extra}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Hash questions read from stdin with an audit log's salt and count the log lines that carry each."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m medrag.server.audit AUDIT.jsonl < questions.txt", file=sys.stderr)
        return 2
    path = Path(args[0])
    try:
        salt = load_salt(salt_path(path), create=False)
    except MedRAGError as exc:
        print(f"medrag: error: {exc}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            value = json.loads(line).get("question_hmac")
            counts[value] = counts.get(value, 0) + 1
    for question in sys.stdin:
        if question.strip():
            value = question_hash(salt, question)
            print(f"{value} {counts.get(value, 0)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
