"""The on-disk layout of an index: generation files committed by an atomic manifest rename.

``DIR/manifest.json`` names the current generation's files (``vectors.N.faiss``, ``chunks.N.sqlite``)
and ``DIR/settings.json`` the pipeline's settings. A save writes the next generation's files beside the
current ones, then replaces the manifest in one ``os.replace``: a reader, or a process killed at any
moment, sees either the old index or the new one, never a mix.

An encrypted index (``key``: a ``medrag.stores.sealed.IndexKey``) keeps the same steps, but each part is
taken in memory (its ``dump``), sealed, and written as ``ROLE.N.enc``; the settings and the index's counts
are a sealed part too (``settings.N.enc``). Its manifest holds only what opening it needs: the format, the
generation, the file names, the KDF's parameters and salt, the key check value, and an HMAC over all of it.
Nothing is written in plaintext, temporary files included.
"""
from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from medrag.errors import MedRAGError
from medrag.fileio import fsync, remove, write_atomic
from medrag.stores.sealed import IndexKey, IndexKeyError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SETTINGS = "settings.json"
FORMAT_VERSION = 1
SEALED_SUFFIX = "enc"
SETTINGS_ROLE = "settings"  # an encrypted index's sealed settings and counts


class Part(NamedTuple):
    """How one store is saved: its file ending, ``write(path)`` (a file or folder, plaintext) and ``dump()``
    (its content in memory, for an encrypted index; None: the store cannot be encrypted)."""

    suffix: str
    write: Callable[[Path], None]
    dump: Callable[[], bytes | bytearray | memoryview] | None = None


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The committed manifest of the index in ``directory``; a clear error when there is none."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        what = "does not exist" if not Path(directory).exists() else "holds no medrag index (no manifest.json)"
        raise MedRAGError(f"index directory {directory} {what}; build one with 'medrag ingest PATH --index {directory}'")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise MedRAGError(f"corrupt index manifest {path}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise MedRAGError(f"index {directory} has format {found}, this medrag reads {FORMAT_VERSION}")
    if not isinstance(manifest.get("files"), dict):
        raise MedRAGError(f"corrupt index manifest {path}: it names no files")
    return manifest


def is_encrypted(manifest: dict[str, Any]) -> bool:
    """Whether the manifest's index is encrypted at rest."""
    return "encryption" in manifest


def _aad(role: str, generation: int) -> bytes:
    """What a sealed part is bound to: its role and generation (a swapped or older file does not open)."""
    return f"medrag index v{FORMAT_VERSION}/{role}/{generation}".encode()


def _canonical(manifest: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in manifest.items() if k != "mac"}, sort_keys=True,
                      separators=(",", ":")).encode()


def unlock(directory: str | Path, manifest: dict[str, Any], passphrase: str | bytes | IndexKey | None) -> IndexKey:
    """The key of an encrypted index from its passphrase (or an ``IndexKey`` already stretched for it); a
    missing or wrong key, or a changed manifest, is a clear error."""
    if passphrase is None:
        raise IndexKeyError(f"index {directory} is encrypted: give its key with --key-file FILE or "
                            f"$MEDRAG_INDEX_KEY")
    description = manifest["encryption"]
    if not isinstance(passphrase, IndexKey):
        key = IndexKey.unlock(passphrase, description, str(directory))
    elif passphrase.same_index(description):
        key = passphrase
    else:
        raise IndexKeyError(f"the key given was stretched for another index than {directory}: give its passphrase")
    if not hmac.compare_digest(key.mac(_canonical(manifest)), str(manifest.get("mac", ""))):
        raise MedRAGError(f"index {directory} is tampered or corrupt: its manifest does not match its MAC")
    return key


def read_part(directory: str | Path, manifest: dict[str, Any], role: str, key: IndexKey | None) -> bytearray:
    """The decrypted content of an encrypted index's part ``role`` (``key`` from ``unlock``)."""
    if key is None:
        raise IndexKeyError(f"index {directory} is encrypted: give its key with --key-file FILE or $MEDRAG_INDEX_KEY")
    name = manifest["files"].get(role)
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        raise MedRAGError(f"corrupt index manifest in {directory}: no {role} file")
    path = Path(directory) / name
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise MedRAGError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return key.open(blob, _aad(role, int(manifest["generation"])), str(path))


def read_settings(directory: str | Path, manifest: dict[str, Any], key: IndexKey | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """An encrypted index's saved settings and counts (the plaintext manifest's ``info`` fields)."""
    data = read_part(directory, manifest, SETTINGS_ROLE, key)
    try:
        sealed = json.loads(bytes(data).decode("utf-8"))
        return dict(sealed["settings"]), dict(sealed["info"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MedRAGError(f"corrupt settings in the encrypted index {directory}: {exc}") from exc


def commit(directory: str | Path, writers: dict[str, Any], settings: dict[str, Any], info: dict[str, Any],
           key: IndexKey | None = None) -> dict[str, Any]:
    """Write a new generation: ``writers`` maps a role (``vectors``) to a ``Part`` (or ``(suffix, write)``);
    with ``key`` every part, the settings and ``info`` are sealed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        old = read_manifest(directory)
    except MedRAGError:
        old = {}
    if old and is_encrypted(old) and key is None:
        raise IndexKeyError(f"index {directory} is encrypted: open it with its key to add to it (it is never "
                            f"saved in plaintext)")
    if old and not is_encrypted(old) and key is not None:
        raise MedRAGError(f"index {directory} is not encrypted, and encrypting it in place would leave its "
                          f"plaintext on the disk: ingest into a new directory with --encrypt")
    generation = int(old.get("generation", 0)) + 1
    parts = {role: Part(*spec) for role, spec in writers.items()}
    files: dict[str, str] = {}
    for role, part in parts.items():
        if key is None:
            name = f"{role}.{generation}.{part.suffix}"
            tmp = directory / f".{name}.tmp"
            remove(tmp)
            part.write(tmp)
            for written in ([*tmp.iterdir(), tmp] if tmp.is_dir() else [tmp]):  # a store may write a folder
                fsync(written)
            os.replace(tmp, directory / name)
        else:
            if part.dump is None:
                raise MedRAGError(f"the {role} store cannot be encrypted: its backend has no in-memory form "
                                  f"(to_bytes)")
            name = f"{role}.{generation}.{SEALED_SUFFIX}"
            write_atomic(directory / name, key.seal(part.dump(), _aad(role, generation)), mode=0o600)
        files[role] = name
    manifest: dict[str, Any] = {"format": FORMAT_VERSION, "generation": generation, "files": files,
                                "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if key is None:
        write_atomic(directory / SETTINGS, (json.dumps(settings, indent=2, sort_keys=True) + "\n").encode())
        manifest.update(info)
    else:
        name = f"{SETTINGS_ROLE}.{generation}.{SEALED_SUFFIX}"
        sealed = json.dumps({"settings": settings, "info": info}, sort_keys=True).encode()
        write_atomic(directory / name, key.seal(sealed, _aad(SETTINGS_ROLE, generation)), mode=0o600)
        files[SETTINGS_ROLE] = name
        manifest["encryption"] = key.describe()
        manifest["mac"] = key.mac(_canonical(manifest))
    write_atomic(directory / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    keep = {MANIFEST, *files.values(), *(() if key is not None else (SETTINGS,))}
    roles = {*parts, SETTINGS_ROLE}
    for stale in directory.iterdir():  # earlier generations and leftovers of interrupted saves
        if stale.name not in keep and (stale.name.split(".")[0] in roles or stale.name.startswith(".")
                                       or stale.name == SETTINGS):
            remove(stale)
    return manifest
