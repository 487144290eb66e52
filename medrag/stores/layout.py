"""The on-disk layout of an index: generation files committed by an atomic manifest rename.

``DIR/manifest.json`` names the current generation's files (``vectors.N.faiss``, ``chunks.N.sqlite``)
and ``DIR/settings.json`` the pipeline's settings. A save writes the next generation's files beside the
current ones, then replaces the manifest in one ``os.replace``: a reader, or a process killed at any
moment, sees either the old index or the new one, never a mix.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from medrag.errors import MedRAGError
from medrag.fileio import fsync, remove, write_atomic

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SETTINGS = "settings.json"
FORMAT_VERSION = 1


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The committed manifest of the index in ``directory``; a clear error when there is none."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        what = "does not exist" if not Path(directory).exists() else "holds no medrag index (no manifest.json)"
        raise MedRAGError(f"index directory {directory} {what}; build one with 'medrag ingest PATH --index {directory}'")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise MedRAGError(f"corrupt index manifest {path}: {exc}") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise MedRAGError(f"index {directory} has format {manifest.get('format')}, this medrag reads {FORMAT_VERSION}")
    return manifest


def commit(directory: str | Path, writers: dict[str, Any], settings: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """Write a new generation: ``writers`` maps a role (``vectors``) to ``(suffix, write(path))``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        old = read_manifest(directory)
    except MedRAGError:
        old = {}
    generation = int(old.get("generation", 0)) + 1
    files: dict[str, str] = {}
    for role, (suffix, write) in writers.items():
        name = f"{role}.{generation}.{suffix}"
        tmp = directory / f".{name}.tmp"
        remove(tmp)
        write(tmp)
        for written in ([*tmp.iterdir(), tmp] if tmp.is_dir() else [tmp]):  # a store may write a folder
            fsync(written)
        os.replace(tmp, directory / name)
        files[role] = name
    write_atomic(directory / SETTINGS, (json.dumps(settings, indent=2, sort_keys=True) + "\n").encode())
    manifest = {"format": FORMAT_VERSION, "generation": generation, "files": files,
                "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info}
    write_atomic(directory / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    for stale in directory.iterdir():  # earlier generations and leftovers of interrupted saves
        if stale.name not in (MANIFEST, SETTINGS, *files.values()) and (
                stale.name.split(".")[0] in writers or stale.name.startswith(".")):
            remove(stale)
    return manifest
