"""Case analysis: a synthetic ED note's problems get cited evidence; its PHI appears nowhere in the output,
and nothing is written."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medrag import MedRAG, MedRAGError

from .conftest import tree_digest

NOTE = Path(__file__).parent / "data" / "notes" / "ed_note.txt"
PHI = ("ASANTE-MENSAH", "Asante", "Lindqvist", "00912-7734", "781-555-0166", "E2024-0588123", "Pleasant St",
       "02148", "192.168.40.17", "O'Rourke", "Arriaga")


def test_case_problems_with_cited_evidence_and_no_phi(rag: MedRAG) -> None:
    found = rag.case(NOTE.read_text())
    assert [p.problem.split(" - ")[0].split(" on ")[0].lower() for p in found.problems][:2] == [
        "fall with head strike", "mild rhabdomyolysis"]
    assert all(p.answer.abstained or p.answer.citations for p in found.problems)
    assert any(m.lower().startswith("apixaban 5 mg") for m in found.medications)
    assert found.phi_removed and sum(found.phi_removed.values()) >= 8
    out = json.dumps(found.to_dict(), ensure_ascii=False) + found.render()
    assert not [p for p in PHI if p.lower() in out.lower()]
    assert found.render().rstrip().endswith(found.disclaimer)
    with pytest.raises(MedRAGError, match="no problem list"):
        rag.case("Patient seen today. Feels fine.")
    with pytest.raises(MedRAGError, match="empty note"):
        rag.case("  ")


def test_case_red_flags_come_first(rag: MedRAG) -> None:
    note = ("Chief Complaint: chest pain\nHistory of Present Illness: 58M with sudden crushing chest pain radiating "
            "to the left arm, diaphoretic.\nAssessment and Plan:\n1. Chest pain, rule out acute coronary syndrome\n")
    found = rag.case(note)
    assert found.emergency and found.render().startswith("!! ")


@pytest.mark.slow
def test_case_cli_from_stdin_writes_nothing(small_index: Path, tmp_path: Path) -> None:
    before = tree_digest(small_index)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path)}
    script = Path(sys.executable).parent / "medrag"
    result = subprocess.run([str(script), "-v", "case", "-", "--index", str(small_index), "--json"],
                            input=NOTE.read_text(), capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["problems"]) == 3 and data["disclaimer"]
    assert not [p for p in PHI if p.lower() in (result.stdout + result.stderr).lower()]
    assert tree_digest(small_index) == before
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in leftovers if any(x.lower() in p.read_bytes().decode("utf-8", "ignore").lower() for x in PHI)]
