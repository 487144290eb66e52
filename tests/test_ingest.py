"""Ingestion that never loses an index: update files, bad input, SIGKILL at any moment, resume."""
from __future__ import annotations

import copy
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from medrag import MedRAG, MedRAGError, Settings
from medrag.embedding import Embedder

from .conftest import MEDLINE, MEDQUAD, tree_digest

BASELINE = MEDLINE / "pmparser" / "pubmed26n1334.xml.gz"
UPDATES = [MEDLINE / "pmparser" / "pubmed26n1335.xml.gz", MEDLINE / "pmparser" / "pubmed20n1016.xml.gz"]


def _articles(path: Path) -> list[etree._Element]:
    with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as fh:
        return list(etree.parse(fh).getroot())


def _pmid(article: etree._Element) -> str:
    return article.findtext("MedlineCitation/PMID")


def _write(path: Path, elements: list[etree._Element]) -> Path:
    root = etree.Element("PubmedArticleSet")
    root.extend(copy.deepcopy(e) for e in elements)
    path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    return path


def _state(rag: MedRAG) -> dict[str, list[str]]:
    """doc id -> its chunks' texts, the index's observable content."""
    chunks = rag.chunks.get(rag.chunks.ids())
    state: dict[str, list[str]] = {}
    for c in sorted(chunks.values(), key=lambda c: (c.doc_id, c.index)):
        state.setdefault(c.doc_id, []).append(c.text)
    return state


def test_baseline_then_updates_equals_the_final_state(tmp_path: Path, embedder: Embedder) -> None:
    # A baseline that the real update files revise: the real 1334 citations, plus older versions of some 1335
    # citations (abstract changed) and real citations renumbered to PMIDs that 1335 deletes.
    updates = [_articles(p) for p in UPDATES]
    deleted = [pmid.text for e in updates[0] if e.tag == "DeleteCitation" for pmid in e.iter("PMID")]
    revised = [copy.deepcopy(a) for a in updates[0][:5] if a.tag == "PubmedArticle"]
    for a in revised:
        for text in a.iter("AbstractText"):
            text.text = "An earlier version of this abstract. " + (text.text or "")
    doomed = [copy.deepcopy(a) for a in _articles(BASELINE)[:len(deleted)]]
    for a, pmid in zip(doomed, deleted):
        a.find("MedlineCitation/PMID").text = pmid
        title = a.find(".//ArticleTitle")
        title.text = f"A citation that update 1335 deletes: {title.text or ''}"
    baseline = _write(tmp_path / "baseline.xml", _articles(BASELINE) + revised + doomed)

    final: dict[str, etree._Element] = {}
    for elements in [_articles(baseline), *updates]:
        for e in elements:
            if e.tag == "DeleteCitation":
                for p in e:
                    final.pop(p.text, None)
            elif e.tag == "PubmedArticle":
                final.pop(_pmid(e), None)
                final[_pmid(e)] = e
    final_file = _write(tmp_path / "final.xml", list(final.values()))

    incremental = MedRAG(Settings())
    incremental.embedder = embedder
    incremental.ingest([baseline], progress=False)
    report = incremental.ingest(UPDATES, save_to=tmp_path / "incremental", progress=False)
    assert report.deleted == len(deleted) and report.replaced == len(revised)

    direct = MedRAG(Settings())
    direct.embedder = embedder
    direct.ingest([final_file], progress=False)

    got, want = _state(MedRAG.load(tmp_path / "incremental")), _state(direct)
    assert got == want
    assert {f"pmid:{p}" for p in deleted}.isdisjoint(got)
    assert all("An earlier version" not in " ".join(got[f"pmid:{_pmid(a)}"]) for a in revised)
    loaded = MedRAG.load(tmp_path / "incremental")
    assert loaded.vectors.count() == loaded.chunks.count() == sum(map(len, want.values()))
    # every stored vector is its chunk's embedding (nothing stale left behind by the replacements)
    ids = np.array(loaded.chunks.ids())
    stored = loaded.vectors.vectors_of(ids)
    texts = [loaded.chunks.get([int(i)])[int(i)].embed_text for i in ids]
    # to float rounding on an fp32 path, to bf16 rounding on a bf16 one (batches differ)
    assert np.allclose(stored, embedder.embed_documents(texts), atol=1e-4 if embedder.precision == "fp32" else 2e-3)


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = BASELINE.read_bytes()
    files = {
        "truncated": (tmp_path / "truncated.xml.gz", good[: len(good) // 2]),
        "malformed": (tmp_path / "malformed.xml", b"<PubmedArticleSet><PubmedArticle><MedlineCitation>"
                                                  b"<PMID>1</PMID></Oops></PubmedArticleSet>"),
        "empty": (tmp_path / "empty.xml", b""),
        "binary": (tmp_path / "binary.xml", bytes(range(256)) * 16),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {name: path for name, (path, _) in files.items()}


def test_bad_files_leave_the_index_byte_identical(index_copy: Path, embedder: Embedder, tmp_path: Path) -> None:
    before = tree_digest(index_copy)
    bad = _bad_files(tmp_path)
    rag = MedRAG.load(index_copy)
    rag.embedder = embedder
    for name, path in bad.items():
        with pytest.raises(MedRAGError) as err:
            rag.ingest([MEDQUAD / "9_CDC_QA" / "0000008.xml", path], save_to=index_copy, progress=False)
        message = str(err.value)
        assert "\n" not in message and path.name in message, (name, message)
        assert tree_digest(index_copy) == before, name
    report = rag.ingest([MEDQUAD / "9_CDC_QA" / "0000008.xml", *bad.values()], save_to=index_copy,
                        skip_bad=True, progress=False)
    assert sorted(Path(p).name for p, _ in report.skipped) == sorted(p.name for p in bad.values())
    assert report.documents > 0 and "skipped" in report.summary()


def _cli(*args: str | Path) -> subprocess.Popen[bytes]:
    script = Path(sys.executable).parent / "medrag"
    return subprocess.Popen([str(script), *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _generation(index: Path) -> int:
    manifest = index / "manifest.json"
    return json.loads(manifest.read_text())["generation"] if manifest.exists() else 0


def test_sigkill_at_any_moment_then_resume(tmp_path: Path) -> None:
    corpus = [BASELINE, *sorted((MEDQUAD / "9_CDC_QA").glob("*.xml"))[:6]]
    # the torch path: slow enough that each kill lands before the run ends, whatever this CPU's fastest path is
    options = ["--quiet", "--set", "checkpoint_chunks=16", "--set", "embedding.backend=torch",
               "--set", "embedding.precision=fp32"]
    reference = tmp_path / "reference"
    assert _cli("ingest", *corpus, "--index", reference, *options).wait(600) == 0
    want = _state(MedRAG.load(reference))

    index = tmp_path / "killed"
    seen = []
    # each run is killed a little after it commits a new checkpoint: mid-embedding, mid-save, just after
    for delay in (0.0, 0.15, 0.4, 0.8):
        before = _generation(index)
        process = _cli("ingest", *corpus, "--index", index, *options)
        deadline = time.monotonic() + 300
        while _generation(index) == before and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(60)
        loaded = MedRAG.load(index)  # whatever was saved last loads, whole
        assert loaded.vectors.count() == loaded.chunks.count() > 0
        seen.append(loaded.chunks.count())
    assert seen == sorted(seen) and seen[-1] < sum(map(len, want.values()))  # progress kept, not finished
    finish = _cli("ingest", *corpus, "--index", index, *options)
    assert finish.wait(600) == 0, finish.stderr.read().decode()
    assert _state(MedRAG.load(index)) == want  # exactly an uninterrupted run's chunks: no duplicates, no losses
    assert not [p for p in index.iterdir() if p.name.startswith(".")]  # no leftovers of interrupted saves
