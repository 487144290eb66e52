"""Notes named by a recipe: the reader's own options come from the recipe table, and a source marked
``clinical_note`` is always read through a de-identifying notes reader, whatever its file looks like."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from medrag import MedRAG, MedRAGError, Settings
from medrag.ingest import read_source
from medrag.sources import Source, load_recipe

from .test_notes import DATA, PLANTED, _occurs, _texts_of

GENERIC = DATA / "generic"


def _recipe(tmp_path: Path) -> Path:
    recipe = tmp_path / "notes.toml"
    recipe.write_text(f'''
[[source]]
path = "{GENERIC / 'clinic_export.csv'}"
format = "notes_csv"
source_type = "clinical_note"
text_column = "note_body"
id_column = "visit_id"
patient_column = "patient_mrn"
category_column = "dept"
date_column = "visit_date"

[[source]]
path = "{GENERIC / 'portal_messages.jsonl'}"
source_type = "clinical_note"
text_column = "body"
id_column = "msg_id"
patient_column = "patient_id"
''')
    return recipe


def test_recipe_options_reach_the_reader(tmp_path: Path) -> None:
    csv_src, jsonl_src = load_recipe(_recipe(tmp_path))
    assert csv_src.options["text_column"] == "note_body" and jsonl_src.format is None
    docs = [d for src in (csv_src, jsonl_src) for d in read_source(src, Settings())]
    assert docs and all(d.metadata["source_type"] == "clinical_note" for d in docs)
    assert {d.metadata["deidentified"] for d in docs} == {"medrag:combined"}
    text = "\n".join(d.text + json.dumps(d.metadata) for d in docs)
    planted = [p["phi"] for p in PLANTED if p["file"].startswith("generic/") and p["kind"] in ("NAME", "ID", "PHONE")]
    assert planted and not [p for p in planted if _occurs(p, text)]
    with pytest.raises(MedRAGError, match="takes no options"):
        list(read_source(Source(GENERIC / "portal_messages.jsonl", "jsonl", None, {"text_column": "body"})))
    with pytest.raises(MedRAGError, match="unknown notes option"):
        list(read_source(Source(GENERIC / "clinic_export.csv", "notes_csv", None, {"text_colum": "x"})))
    with pytest.raises(MedRAGError, match="must be read by a notes reader"):
        list(read_source(Source(DATA / "planted_phi.tsv", "pubmed_xml", "clinical_note")))


def test_already_deidentified_is_explicit_and_recorded(tmp_path: Path) -> None:
    src = load_recipe(_recipe(tmp_path))[0]
    raw = [d for d in read_source(src, Settings(ingest={"notes_already_deidentified": True}))]
    assert {d.metadata["deidentified"] for d in raw} == {"source"}
    assert any(_occurs("Baranovsky", d.text) for d in raw)  # nothing removed: the user said so


@pytest.mark.slow
def test_recipe_notes_index_holds_no_planted_phi(tmp_path: Path) -> None:
    index = tmp_path / "index"
    rag = MedRAG(Settings(threads=1))
    report = rag.ingest([_recipe(tmp_path)], save_to=index, progress=False)
    assert report.files == 2 and report.documents >= 4
    assert not json.loads((index / "settings.json").read_text())["ingest"]["notes_already_deidentified"]
    needles = {p["phi"] for p in PLANTED if p["file"].startswith("generic/")}
    needles |= {w for p in PLANTED if p["file"].startswith("generic/") and p["kind"] == "NAME"
                for w in re.split(r"[\s,\"()]+", p["phi"]) if len(w) >= 4}
    found = []
    for f in (p for p in index.rglob("*") if p.is_file()):
        content = _texts_of(f)
        binary = f.suffix in {".faiss", ".npy"}
        found += [(f.name, n) for n in needles if (len(n) >= 6 or not binary) and _occurs(n, content)]
    assert not found
