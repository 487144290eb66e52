"""The on-disk layout of an index: immutable files named by a manifest, committed atomically.

A plaintext index (format 2) is written incrementally. ``DIR/manifest.json`` names the live files: the vector
segments (``vectors.N.faiss``, each written once by the checkpoint of generation N; ``medrag.stores.segments``),
the tombstones of deleted vectors (``tombstones.N.npy``), a trained index's empty template, the lexical
index (``lexical.N.tantivy``: its own commit, segment files hard-linked) and the chunk store
(``chunks.N.sqlite``), and ``DIR/settings.json`` the pipeline's settings. A checkpoint writes only new files
(each to a hidden temporary name, flushed, renamed), then commits the chunk store's transaction together
with its state row, which holds the new manifest: that SQLite commit is the commit point. The manifest file
is replaced (one ``os.replace``) right after; if a process dies between the two, ``current`` reads the newer
manifest from the chunk store (every file it names was written before it). Files no manifest names any more
are removed after the commit. A reader, or a process killed at any moment, sees the old index or the new
one, never a mix.

Format 1 (every file rewritten whole at each save, ``vectors.N.faiss`` + ``chunks.N.sqlite``) still loads;
the first save (``medrag compact --index DIR`` does one) writes format 2.

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
from typing import TYPE_CHECKING, Any

from medrag.errors import MedRAGError
from medrag.fileio import fsync, remove, write_atomic
from medrag.stores.sealed import IndexKey, IndexKeyError

if TYPE_CHECKING:
    from medrag.stores.chunks import ChunkStore

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SETTINGS = "settings.json"
FORMAT_VERSION = 2  # a plaintext index: segments written incrementally
SEALED_FORMAT = 1  # an encrypted index: every part sealed whole at each save
FORMATS = (SEALED_FORMAT, FORMAT_VERSION)  # what this medrag reads
SEALED_SUFFIX = "enc"
SETTINGS_ROLE = "settings"  # an encrypted index's sealed settings and counts


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
    if not isinstance(manifest, dict) or manifest.get("format") not in FORMATS:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise MedRAGError(f"index {directory} has format {found}, this medrag reads {' and '.join(map(str, FORMATS))}")
    if not isinstance(manifest.get("files"), dict):
        raise MedRAGError(f"corrupt index manifest {path}: it names no files")
    return manifest


def is_encrypted(manifest: dict[str, Any]) -> bool:
    """Whether the manifest's index is encrypted at rest."""
    return "encryption" in manifest


def _aad(role: str, generation: int) -> bytes:
    """What a sealed part is bound to: its role and generation (a swapped or older file does not open)."""
    return f"medrag index v{SEALED_FORMAT}/{role}/{generation}".encode()


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
    path = Path(directory) / file_of(Path(directory), manifest, role)
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


def commit_sealed(directory: str | Path, dumps: dict[str, Callable[[], bytes | bytearray | memoryview] | None],
                  settings: dict[str, Any], info: dict[str, Any], key: IndexKey) -> dict[str, Any]:
    """Write a new generation of an encrypted index (format 1, every part whole): ``dumps`` maps a role
    (``vectors``) to its store's content in memory (None: the store cannot be encrypted); every part, the
    settings and ``info`` are sealed with ``key``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        old = read_manifest(directory)
    except MedRAGError:
        old = {}
    if old and not is_encrypted(old):
        raise MedRAGError(f"index {directory} is not encrypted, and encrypting it in place would leave its "
                          f"plaintext on the disk: ingest into a new directory with --encrypt")
    generation = int(old.get("generation", 0)) + 1
    files: dict[str, str] = {}
    for role, dump in dumps.items():
        if dump is None:
            raise MedRAGError(f"the {role} store cannot be encrypted: its backend has no in-memory form "
                              f"(to_bytes)")
        files[role] = f"{role}.{generation}.{SEALED_SUFFIX}"
        write_atomic(directory / files[role], key.seal(dump(), _aad(role, generation)), mode=0o600)
    files[SETTINGS_ROLE] = f"{SETTINGS_ROLE}.{generation}.{SEALED_SUFFIX}"
    sealed = json.dumps({"settings": settings, "info": info}, sort_keys=True).encode()
    write_atomic(directory / files[SETTINGS_ROLE], key.seal(sealed, _aad(SETTINGS_ROLE, generation)), mode=0o600)
    manifest: dict[str, Any] = {"format": SEALED_FORMAT, "generation": generation, "files": files,
                                "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "encryption": key.describe()}
    manifest["mac"] = key.mac(_canonical(manifest))
    write_atomic(directory / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    keep = {MANIFEST, *files.values()}
    roles = {*dumps, SETTINGS_ROLE}
    for stale in directory.iterdir():  # earlier generations and leftovers of interrupted saves
        if stale.name not in keep and (stale.name.split(".")[0] in roles or stale.name.startswith(".")
                                       or stale.name == SETTINGS):
            remove(stale)
    return manifest


def write_file(directory: Path, name: str, write: Callable[[Path], None]) -> None:
    """``write(path)`` a file or folder under a hidden temporary name in ``directory``, flush it to disk and
    rename it to ``name``."""
    tmp = directory / f".{name}.tmp"
    remove(tmp)
    write(tmp)
    for written in ([*tmp.iterdir(), tmp] if tmp.is_dir() else [tmp]):  # a store may write a folder
        fsync(written)
    os.replace(tmp, directory / name)
    fsync(directory)


def current(directory: str | Path, chunks: ChunkStore | None = None) -> dict[str, Any]:
    """The last committed manifest of a plaintext index: ``manifest.json``, or the newer one its chunk store
    committed when the process died before replacing the file; ``{}`` when there is no index. ``chunks``: that
    chunk store, already open (else it is opened here for the moment)."""
    directory = Path(directory)
    if not (directory / MANIFEST).exists():
        return {}
    manifest = read_manifest(directory)
    if manifest.get("format") != FORMAT_VERSION or is_encrypted(manifest):
        return manifest
    from medrag.stores.chunks import ChunkStore

    path = directory / file_of(directory, manifest, "chunks")
    store = chunks if chunks is not None and chunks.path is not None and chunks.path.name == path.name \
        and chunks.lives_in(directory) else ChunkStore.load(path)
    try:
        state = store.state()
    finally:
        if store is not chunks:
            store.db.close()
    if state is not None and state[0] > int(manifest["generation"]):
        log.warning("index %s: generation %d was committed but its manifest not written; using it", directory,
                    state[0])
        return state[1]
    return manifest


def file_of(directory: Path, manifest: dict[str, Any], role: str) -> str:
    """The file name a manifest gives ``role`` (``chunks``), checked; a clear error when it names none."""
    name = manifest["files"].get(role)
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        raise MedRAGError(f"corrupt index manifest in {directory}: no {role} file")
    return name


def publish(directory: Path, manifest: dict[str, Any]) -> None:
    """Replace ``manifest.json`` (atomically) with a committed manifest."""
    write_atomic(directory / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


#: the files an index directory's saves make (anything else there is left alone)
_OURS = ("vectors.", "chunks.", "lexical.", "tombstones.", "template.")


def live_files(manifest: dict[str, Any]) -> set[str]:
    """Every file name a format-2 manifest names."""
    vectors = manifest.get("vectors", {})
    names = {*manifest.get("files", {}).values(), *(s["file"] for s in vectors.get("segments", [])),
             *(n for n in (vectors.get("tombstones"), vectors.get("template")) if n)}
    return {str(n) for n in names}


def sweep(directory: Path, manifest: dict[str, Any], keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Remove what no committed manifest names (nor ``keep``, files being written): earlier generations' files
    and leftovers of interrupted saves."""
    keep = live_files(manifest) | set(keep)
    chunks = manifest["files"].get("chunks")
    keep |= {f"{chunks}-wal", f"{chunks}-shm", f"{chunks}-journal"}
    for stale in directory.iterdir():
        name = stale.name
        if name in keep:
            continue
        if name.startswith(_OURS) or (name.startswith(".") and name.endswith(".tmp")):
            remove(stale)
