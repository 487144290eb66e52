"""Atomic file writes: a crash leaves either the old content or the new one, never a mix."""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def write_atomic(path: str | Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to a hidden temporary file beside ``path``, flush it to disk and rename it into place
    (``mode``: the file's permissions; ``0o600`` for secrets)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # created 0600
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync(path.parent)


def write_json(path: str | Path, data: Any) -> None:
    """``data`` as indented UTF-8 JSON, written atomically."""
    write_atomic(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_npy(path: str | Path, array: np.ndarray) -> None:
    """``array`` as ``.npy`` (no pickle), written atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_atomic(path, buffer.getvalue())


def fsync(path: str | Path) -> None:
    """Flush a file's or a directory's entry to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def link_or_copy(source: str | Path, target: str | Path) -> None:
    """Hard-link ``source`` to ``target``, or copy it where links fail (another file system, no link support)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def remove(path: str | Path) -> None:
    """Delete a file or a folder, if it is there."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


__all__ = ["fsync", "link_or_copy", "remove", "write_atomic", "write_json", "write_npy"]
