"""Encryption at rest for an index: a passphrase stretched by scrypt, every file sealed with AES-256-GCM.

``IndexKey.new(passphrase)`` draws a per-index salt and stretches the passphrase with scrypt (memory-hard,
``N=2**17, r=8, p=1`` by default; the parameters and salt are kept in the manifest) into a 32-byte master key.
HKDF-SHA256 splits that into separate keys: one encrypts the files, one authenticates the manifest, one gives
the key check value (so a wrong key is told apart from a tampered file) and one keys the de-identifier's
pseudonyms (``medrag.deid``), stable for as long as the index keeps its key.

A sealed file is ``MAGIC | segment size | nonce prefix`` followed by segments of at most ``SEGMENT`` bytes,
each encrypted with AES-256-GCM under the nonce ``prefix || segment number`` and authenticated together with
the header, the caller's ``aad`` (the file's role and generation: a file swapped for another, or for an older
one, fails), its number and whether it is the last (a truncated file fails). Segments keep every call under
the cipher's 2 GiB limit and let ``open`` decrypt into one buffer without further copies.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

__all__ = ["CIPHER", "KEY_ENV", "MAGIC", "IndexKey", "IndexKeyError", "Kdf", "SealError", "passphrase"]

KEY_ENV = "MEDRAG_INDEX_KEY"
CIPHER = "AES-256-GCM"
MAGIC = b"MEDRAGE1"  # medrag encrypted, version 1
SEGMENT = 16 << 20  # plaintext bytes per GCM segment
TAG = 16
_HEADER = struct.Struct(">8sI8s")  # magic, segment size, nonce prefix
#: scrypt cost bounds accepted from a manifest (a tampered one must not make the loader allocate terabytes)
_LIMITS = {"n": (2 ** 14, 2 ** 22), "r": (1, 32), "p": (1, 16)}


class IndexKeyError(MedRAGError):
    """A missing or wrong index key (exit status 2 on the command line, like every MedRAGError)."""


class SealError(MedRAGError):
    """A sealed file that does not decrypt: tampered, corrupt, truncated or swapped."""


@dataclass(frozen=True)
class Kdf:
    """scrypt's parameters and the index's salt, as recorded in the manifest."""

    salt: bytes
    n: int = 2 ** 17
    r: int = 8
    p: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"name": "scrypt", "n": self.n, "r": self.r, "p": self.p, "salt": self.salt.hex()}

    @classmethod
    def from_dict(cls, data: Any) -> Kdf:
        """The parameters a manifest names; a clear error when they are missing or out of bounds."""
        try:
            kdf = cls(salt=bytes.fromhex(data["salt"]), n=int(data["n"]), r=int(data["r"]), p=int(data["p"]))
            valid = data.get("name") == "scrypt" and 16 <= len(kdf.salt) <= 64 and kdf.n & (kdf.n - 1) == 0
        except (KeyError, TypeError, ValueError, AttributeError):
            valid = False
        if not valid or any(not low <= getattr(kdf, name) <= high for name, (low, high) in _LIMITS.items()):
            raise MedRAGError("corrupt index manifest: its encryption parameters are missing or invalid")
        return kdf


@functools.lru_cache(maxsize=8)
def _stretch(secret: bytes, kdf: Kdf) -> bytes:
    """scrypt, remembered for the process (a server reloading each new generation stretches once)."""
    return Scrypt(salt=kdf.salt, length=32, n=kdf.n, r=kdf.r, p=kdf.p).derive(secret)


@dataclass(frozen=True)
class IndexKey:
    """An index's master key (stretched from a passphrase) and how it was stretched."""

    master: bytes = field(repr=False)
    kdf: Kdf

    @classmethod
    def new(cls, passphrase: str | bytes, **cost: int) -> IndexKey:
        """A key for a new index: a fresh random salt (``cost``: scrypt's ``n``, ``r``, ``p``)."""
        return cls.derive(passphrase, Kdf(salt=secrets.token_bytes(16), **cost))

    @classmethod
    def derive(cls, passphrase: str | bytes, kdf: Kdf) -> IndexKey:
        secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
        if not secret:
            raise IndexKeyError("the index key is empty")
        return cls(_stretch(secret, kdf), kdf)

    def subkey(self, purpose: str, length: int = 32) -> bytes:
        """An independent key for one purpose (HKDF-SHA256 of the master key)."""
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                    info=f"medrag index/{purpose}".encode()).derive(self.master)

    @functools.cached_property
    def _aead(self) -> AESGCM:
        return AESGCM(self.subkey("aes-256-gcm"))

    @property
    def check(self) -> str:
        """The key check value kept in the manifest: tells a wrong key apart from a tampered file."""
        return self.subkey("key check", 16).hex()

    def describe(self) -> dict[str, Any]:
        """The manifest's ``encryption`` field: what opening the index needs, besides the passphrase."""
        return {"cipher": CIPHER, "kdf": self.kdf.to_dict(), "check": self.check}

    @classmethod
    def unlock(cls, passphrase: str | bytes, description: Any, where: str) -> IndexKey:
        """The key of the index ``where`` from its passphrase and its manifest's ``encryption`` field."""
        if not isinstance(description, dict) or description.get("cipher") != CIPHER:
            raise MedRAGError(f"index {where} uses an encryption this medrag does not know "
                              f"({description.get('cipher') if isinstance(description, dict) else description!r})")
        key = cls.derive(passphrase, Kdf.from_dict(description.get("kdf")))
        if not hmac.compare_digest(key.check, str(description.get("check", ""))):
            raise IndexKeyError(f"wrong key for the encrypted index {where}")
        return key

    def same_index(self, description: Any) -> bool:
        """Whether this key is the one ``description`` (a manifest's ``encryption``) was made with."""
        return isinstance(description, dict) and description == self.describe()

    def mac(self, data: bytes) -> str:
        """HMAC-SHA256 of ``data`` under the manifest key (hex)."""
        return hmac.new(self.subkey("manifest mac"), data, hashlib.sha256).hexdigest()

    # -- files -------------------------------------------------------------------------------------
    def seal(self, data: bytes | bytearray | memoryview, aad: bytes) -> bytearray:
        """``data`` encrypted and authenticated, bound to ``aad``."""
        view = memoryview(data).cast("B")
        prefix = os.urandom(8)
        header = _HEADER.pack(MAGIC, SEGMENT, prefix)
        count = max(1, -(-len(view) // SEGMENT))
        out = bytearray(len(header) + len(view) + count * TAG)
        out[:len(header)] = header
        position = len(header)
        for i in range(count):
            piece = view[i * SEGMENT:(i + 1) * SEGMENT]
            nonce, extra = self._segment(header, prefix, aad, i, i == count - 1)
            position += self._aead.encrypt_into(nonce, piece, extra, memoryview(out)[position:position + len(piece) + TAG])
        return out

    def open(self, blob: bytes | bytearray | memoryview, aad: bytes, what: str) -> bytearray:
        """The plaintext of a sealed ``blob`` (``what`` names it in errors): a SealError when it was changed."""
        view = memoryview(blob).cast("B")
        if len(view) < _HEADER.size + TAG or bytes(view[:len(MAGIC)]) != MAGIC:
            raise SealError(f"{what} is not an encrypted medrag file (tampered or corrupt)")
        _, segment, prefix = _HEADER.unpack(view[:_HEADER.size])
        if segment != SEGMENT:
            raise SealError(f"{what} is tampered or corrupt (its header was changed)")
        body = view[_HEADER.size:]
        count = max(1, -(-len(body) // (SEGMENT + TAG)))
        out = bytearray(len(body) - count * TAG) if len(body) >= count * TAG else None
        if out is None:
            raise SealError(f"{what} is tampered or corrupt (truncated)")
        header = bytes(view[:_HEADER.size])
        for i in range(count):
            piece = body[i * (SEGMENT + TAG):(i + 1) * (SEGMENT + TAG)]
            nonce, extra = self._segment(header, prefix, aad, i, i == count - 1)
            try:
                self._aead.decrypt_into(nonce, piece, extra, memoryview(out)[i * SEGMENT:i * SEGMENT + len(piece) - TAG])
            except (InvalidTag, ValueError):
                raise SealError(f"{what} is tampered or corrupt: it does not decrypt under this index's key") from None
        return out

    @staticmethod
    def _segment(header: bytes, prefix: bytes, aad: bytes, number: int, last: bool) -> tuple[bytes, bytes]:
        """One segment's nonce and associated data."""
        return prefix + struct.pack(">I", number), header + aad + struct.pack(">IB", number, last)


def passphrase(key_file: str | Path | None = None) -> str | None:
    """The index passphrase: ``key_file``'s content (without its final newline), else ``$MEDRAG_INDEX_KEY``,
    else None. An empty or unreadable key file is a clear error."""
    if key_file is not None:
        path = Path(key_file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexKeyError(f"cannot read the key file {path}: {exc}") from exc
        text = text.removesuffix("\n").removesuffix("\r")
        if not text:
            raise IndexKeyError(f"the key file {path} is empty")
        if os.name == "posix" and path.stat().st_mode & 0o077:
            log.warning("key file %s can be read by other users: chmod 600 %s", path, path)
        return text
    return os.environ.get(KEY_ENV) or None
