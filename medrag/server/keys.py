"""API keys: random bearer tokens of which only a salted SHA-256 digest is stored.

A key is ``mrg_`` + 32 random bytes (``secrets.token_urlsafe``): 256 bits that no one can guess, so a
slow password hash (scrypt, argon2) would only add latency to every request; the per-key salt keeps equal
digests from showing up across files and rules out precomputed tables. Verification hashes the presented
token with every record's salt and compares all digests with ``hmac.compare_digest`` (constant time, no
early exit). The file (JSON, mode 0600) is re-read when it changes, so ``medrag keys revoke`` takes
effect on a running server without a restart.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from medrag.errors import MedRAGError
from medrag.fileio import write_atomic

log = logging.getLogger(__name__)

PREFIX = "mrg_"
FORMAT = 1
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class KeyRecord:
    """One key as stored: its name, salt and digest (never the key)."""

    name: str
    salt: str
    sha256: str
    created: str


def digest(salt: str, token: str) -> str:
    """The stored form of ``token``: SHA-256 over the salt bytes and the token."""
    return hashlib.sha256(bytes.fromhex(salt) + token.encode("utf-8")).hexdigest()


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, mode=0o600)


class KeyStore:
    """The keys file: add, list, revoke and verify keys (thread-safe; re-read when the file changes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._records: list[KeyRecord] = []
        self._stamp: tuple[int, int, int] | None = None
        self._refresh()

    @classmethod
    def open_existing(cls, path: str | Path) -> KeyStore:
        """The keys file a server checks requests against; a clear error when it does not exist."""
        if not Path(path).is_file():
            raise MedRAGError(f"keys file {path} does not exist; create a key first with "
                              f"'medrag keys add NAME --keys {path}'")
        return cls(path)

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._records, self._stamp = [], None
            return
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp == self._stamp:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            records = [KeyRecord(**r) for r in data["keys"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MedRAGError(f"cannot read keys file {self.path}: {exc}") from exc
        if data.get("format") != FORMAT:
            raise MedRAGError(f"keys file {self.path} has format {data.get('format')}, this medrag reads {FORMAT}")
        self._records, self._stamp = records, stamp

    def _save(self) -> None:
        data = {"format": FORMAT, "keys": [asdict(r) for r in self._records]}
        write_private(self.path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
        self._stamp = None
        self._refresh()

    def records(self) -> list[KeyRecord]:
        """The stored keys (names, salts, digests), oldest first."""
        with self._lock:
            self._refresh()
            return list(self._records)

    def add(self, name: str) -> str:
        """Create a key called ``name``; returns the key itself, which is stored nowhere."""
        if not NAME.match(name):
            raise MedRAGError(f"bad key name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
        with self._lock:
            self._refresh()
            if any(r.name == name for r in self._records):
                raise MedRAGError(f"a key named {name!r} already exists in {self.path}; revoke it first")
            token = PREFIX + secrets.token_urlsafe(32)
            salt = secrets.token_hex(16)
            self._records.append(KeyRecord(name=name, salt=salt, sha256=digest(salt, token),
                                           created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
            self._save()
        log.info("added key %s to %s", name, self.path)
        return token

    def revoke(self, name: str) -> None:
        """Remove the key called ``name``."""
        with self._lock:
            self._refresh()
            kept = [r for r in self._records if r.name != name]
            if len(kept) == len(self._records):
                raise MedRAGError(f"no key named {name!r} in {self.path}")
            self._records = kept
            self._save()
        log.info("revoked key %s in %s", name, self.path)

    def verify(self, token: str) -> str | None:
        """The name of the key ``token`` is, or None; every digest is compared in constant time."""
        with self._lock:
            try:
                self._refresh()
            except MedRAGError as exc:  # a half-edited file: keep the last good records
                log.warning("%s", exc)
            records = list(self._records)
        found = None
        for record in records:
            if hmac.compare_digest(record.sha256, digest(record.salt, token)) and found is None:
                found = record.name
        return found
