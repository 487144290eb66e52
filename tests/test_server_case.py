"""``POST /v1/case`` on the server, and a notes index is never served without keys."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from medrag import MedRAG, Settings
from tests.test_server import error_of, keys, server, served_index, served_rag  # noqa: F401 - module fixtures

NOTES = Path(__file__).parent / "data" / "notes"
PHI = ("ASANTE-MENSAH", "Lindqvist", "00912-7734", "781-555-0166", "Pleasant St")


def test_case_endpoint_returns_the_analysis_without_phi(server: dict[str, Any]) -> None:  # noqa: F811
    note = (NOTES / "ed_note.txt").read_text()
    response = server["client"].post("/v1/case", json={"note": note})
    assert response.status_code == 200, response.text
    data = response.json()
    assert len(data["problems"]) == 3 and data["disclaimer"] and data["phi_removed"]
    assert not [p for p in PHI if p.lower() in response.text.lower()]
    assert "empty note" in error_of(server["client"].post("/v1/case", json={"note": "  "}), 422)
    assert "no problem list" in error_of(server["client"].post("/v1/case", json={"note": "Feels fine today."}), 422)
    error_of(server["client"].post("/v1/case", json={"note": "x", "colour": 1}), 422)
    audit = server["audit"].read_text()
    assert "v1/case" in audit and not [p for p in PHI if p.lower() in audit.lower()]


def test_notes_index_is_not_served_without_keys(tmp_path: Path, embedder: Any) -> None:
    index = tmp_path / "notes"
    rag = MedRAG(Settings(threads=1))
    rag.embedder = embedder
    rag.ingest([NOTES / "ed_note.txt"], save_to=index, progress=False)
    result = subprocess.run([sys.executable, "-m", "medrag.server.cli", "serve", "--index", str(index)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and "holds clinical notes" in result.stderr
    assert json.loads((index / "settings.json").read_text())["ingest"]["notes_already_deidentified"] is False
