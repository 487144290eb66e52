"""Corpus recipes (TOML under ``corpora/``) and the expansion of ingest paths into source files."""
from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medrag import readers
from medrag.sources import entrez
from medrag.errors import MedRAGError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One concrete input file, with the recipe's overrides for it."""

    path: Path
    format: str | None = None
    source_type: str | None = None
    #: the recipe table's other keys: the reader's own options (notes: ``text_column``, ``id_column`` ...)
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def load_recipe(path: str | Path) -> list[Source]:
    """The sources a recipe names; paths are relative to the recipe file, ``$VARS`` expanded.

    A recipe is a TOML file with ``[[source]]`` tables: ``path`` (a file, folder or glob),
    optional ``format`` (a reader name, or ``package.module:function``), ``source_type`` (``pubmed``,
    ``consumer_health``, ``clinical_note`` ...) and any other keys, passed to the reader as its options.
    """
    path = Path(path)
    try:
        recipe = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MedRAGError(f"{path}: not a readable corpus recipe: {exc}") from exc
    entries = recipe.get("source")
    if not isinstance(entries, list) or not entries:
        raise MedRAGError(f"{path}: a corpus recipe needs at least one [[source]] table with a path")
    sources: list[Source] = []
    for entry in entries:
        if "path" not in entry:
            raise MedRAGError(f"{path}: every [[source]] needs a path")
        pattern = os.path.expandvars(os.path.expanduser(entry["path"]))
        pattern = pattern if os.path.isabs(pattern) else str(path.parent / pattern)
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise MedRAGError(f"{path}: {entry['path']} matches no file")
        for file in readers.iter_files(matches):
            options = {k: v for k, v in entry.items() if k not in ("path", "format", "source_type")}
            sources.append(Source(file, entry.get("format"), entry.get("source_type"), options))
    return sources


@dataclass(frozen=True)
class PubMedQuery:
    """How to run ``pubmed:QUERY`` sources: NCBI asks for an email; a key allows 10 requests/s instead of 3."""

    email: str | None
    download_dir: Path
    max_records: int = 1000
    api_key: str | None = None
    base_url: str = entrez.NCBI_EUTILS

    def fetch(self, query: str, progress: bool = True) -> list[Path]:
        """The efetch batch files of ``query`` (downloaded now, or kept from an earlier run)."""
        slug = re.sub(r"[^A-Za-z0-9]+", "-", query).strip("-")[:60] or "query"
        digest = hashlib.sha1(query.encode()).hexdigest()[:8]
        return entrez.download(query, self.download_dir / f"{slug}-{digest}", max_records=self.max_records,
                               email=self.email, api_key=self.api_key, base_url=self.base_url, progress=progress)


def expand(paths: Iterable[str | Path], pubmed: PubMedQuery | None = None, progress: bool = True) -> list[Source]:
    """Concrete source files for ingest arguments: files, folders (recursively), recipes, ``pubmed:QUERY``."""
    sources: list[Source] = []
    for p in paths:
        query = entrez.parse_source(str(p))
        if query is not None:
            if pubmed is None:
                raise MedRAGError(f"{p}: live PubMed sources need an email (--email ADDR) and an index to save to")
            if not query:
                raise MedRAGError(f"{p}: empty PubMed query")
            sources.extend(Source(f, "pubmed_xml", "pubmed") for f in pubmed.fetch(query, progress))
        elif str(p).endswith(".toml"):
            sources.extend(load_recipe(p))
        else:
            sources.extend(Source(f) for f in readers.iter_files([p]))
    seen: set[Path] = set()
    unique = [s for s in sources if not (s.path.resolve() in seen or seen.add(s.path.resolve()))]
    if not unique:
        raise MedRAGError(f"no input files found in {', '.join(map(str, paths)) or 'the arguments'}")
    return unique
