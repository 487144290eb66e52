"""Clinical notes: readers (MIMIC-III, MIMIC-IV-Note, generic CSV/JSONL, text), de-identification, sections,
problem and medication lists, and an ingest whose index holds none of the planted PHI."""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import importlib.util
import io
import json
import logging
import re
import sqlite3
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from medrag import readers
from medrag.deid import Deidentifier
from medrag.errors import MedRAGError
from medrag.notes import extract_medications, extract_problems, split_sections
from medrag.readers import notes as notes_reader
from medrag.readers.notes import NoteOptions

DATA = Path(__file__).parent / "data" / "notes"
ROOT = Path(__file__).resolve().parents[1]


def _tsv(name: str) -> list[dict[str, str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, [*line.split("\t"), "", ""])) for line in lines[1:] if line.strip()]


PLANTED = _tsv("planted_phi.tsv")


def _all_text(docs) -> str:
    return "\n".join(f"{d.id}\n{d.title}\n{d.text}\n{json.dumps(d.metadata, ensure_ascii=False)}" for d in docs)


def _occurs(needle: str, haystack: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(needle) + r"(?!\w)", haystack, re.IGNORECASE) is not None


@pytest.fixture(scope="module")
def eval_deid():
    spec = importlib.util.spec_from_file_location("eval_deid", ROOT / "eval" / "eval_deid.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_deid"] = module
    spec.loader.exec_module(module)
    return module


# -- readers ---------------------------------------------------------------------------------------------
def test_sniffing_tells_every_notes_layout_apart():
    assert readers.sniff(DATA / "NOTEEVENTS.csv") == "mimic3_notes"
    assert readers.sniff(DATA / "discharge.csv") == "mimic4_notes"
    assert readers.sniff(DATA / "radiology.csv") == "mimic4_notes"
    assert readers.sniff(DATA / "radiology_extra.csv.gz") == "mimic4_notes"
    assert readers.sniff(DATA / "clinic_letter.txt") == "notes_text"
    assert readers.sniff(DATA / "ed_note.txt") == "notes_text"
    assert readers.sniff(DATA / "planted_phi.tsv") is None  # met in a folder walk: never a document


def test_mimic3_reader_skips_iserror_rows_and_hides_ids():
    docs = list(readers.read(DATA / "NOTEEVENTS.csv"))
    text = _all_text(docs)
    assert len({d.metadata["note"] for d in docs}) == 10  # 11 rows, one ISERROR=1
    assert "Halvorsen" not in text and "5530091" not in text and "WRONG PATIENT" not in text
    for raw_id in ("22532", "167853", "30417", "142809", "91105", "118733"):
        assert not _occurs(raw_id, text)
    assert {d.metadata["source_type"] for d in docs} == {"clinical_note"}
    assert {d.metadata["deidentified"] for d in docs} == {"medrag:combined"}
    assert {"Discharge summary", "Radiology", "ECG", "Nursing/other", "Echo", "Social Work"} <= {
        d.metadata["category"] for d in docs}
    summary = [d for d in docs if d.metadata["category"] == "Discharge summary" and d.metadata.get("year") == 2151]
    sections = {d.metadata["section"] for d in summary}
    assert {"Discharge Diagnosis", "Discharge Medications", "History of Present Illness",
            "Brief Hospital Course"} <= sections
    assert all(re.fullmatch(r"note:[0-9a-f]{16}#[a-z0-9-]+", d.id) for d in docs)
    # one patient, one pseudonym; one admission, one encounter
    whitcombe = [d for d in docs if d.metadata.get("year") == 2151]
    assert len({d.metadata["patient"] for d in whitcombe}) == 1
    assert len({d.metadata["encounter"] for d in whitcombe}) == 1
    hpi = next(d for d in summary if d.metadata["section"] == "History of Present Illness")
    assert hpi.text.startswith("History of Present Illness:")
    assert "[NAME]" in hpi.text and "Whitcombe" not in hpi.text


def test_mimic4_readers_discharge_radiology_and_gzip():
    discharge = list(readers.read(DATA / "discharge.csv"))
    radiology = list(readers.read(DATA / "radiology.csv"))
    extra = list(readers.read(DATA / "radiology_extra.csv.gz"))
    assert len({d.metadata["note"] for d in discharge}) == 4
    assert {d.metadata["category"] for d in discharge} == {"Discharge summary"}
    assert len({d.metadata["note"] for d in radiology}) == 4 and len({d.metadata["note"] for d in extra}) == 2
    assert {d.metadata["category"] for d in radiology + extra} == {"Radiology"}
    assert {"IMPRESSION", "FINDINGS", "INDICATION"} <= {d.metadata["section"] for d in radiology}
    no_admission = [d for d in radiology if "encounter" not in d.metadata]  # the CTA has no hadm_id
    assert no_admission and all("patient" in d.metadata for d in no_admission)
    text = _all_text(discharge + radiology + extra)
    for raw in ("10000032-DS-21", "10000032", "22595853", "10006580-RR-3"):
        assert not _occurs(raw, text)
    # the same patient's discharge summary and ultrasound share a patient pseudonym (same process, same key)
    assert {d.metadata["patient"] for d in discharge} & {d.metadata["patient"] for d in radiology}
    keyed = [list(notes_reader.read_mimic4(DATA / "radiology.csv", NoteOptions(deid_engine="rules", deid_key=k)))
             for k in (b"one", b"one", b"two")]
    assert [d.id for d in keyed[0]] == [d.id for d in keyed[1]] != [d.id for d in keyed[2]]


def _mimic4_gz(path: Path, rows: list[str], tail: bytes = b"") -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["note_id", "subject_id", "hadm_id", "note_type", "note_seq", "charttime", "storetime", "text"])
    for i, text in enumerate(rows):
        writer.writerow([f"1-RR-{i}", 1, 2, "RR", i, "2180-01-01 00:00:00", "", text])
    with gzip.open(path, "wb") as fh:
        fh.write(buf.getvalue().encode() + tail)


def test_csv_gz_is_streamed_and_takes_huge_fields(tmp_path):
    huge = "FINDINGS: " + "No focal consolidation. " * 9000  # ~216 KB: over csv's 128 KB field limit
    path = tmp_path / "radiology.csv.gz"
    _mimic4_gz(path, ["IMPRESSION: normal chest.", huge] + ["FINDINGS: normal."] * 3000,
               tail=b'"9-RR-9",9,9,"RR",9,"",,"bad \xff byte"\n')
    notes = notes_reader.read_mimic4(path, NoteOptions(deid_engine="rules"))
    first = next(notes)  # the first note comes out before the corrupt last row is read
    assert first.text == "IMPRESSION: normal chest."
    second = next(notes)
    assert len(second.text) > 200_000
    with pytest.raises(MedRAGError, match="not valid UTF-8"):
        list(notes)


def test_generic_csv_and_jsonl_name_their_text_column():
    opts = NoteOptions(text_column="note_body", id_column="visit_id", patient_column="patient_mrn",
                       category_column="dept", date_column="visit_date")
    docs = list(notes_reader.read_csv(DATA / "generic" / "clinic_export.csv", opts))
    assert [d.metadata["category"] for d in docs] == ["Cardiology", "Endocrinology"]
    assert [d.metadata["year"] for d in docs] == [2024, 2024]
    text = _all_text(docs)
    for raw in ("V-1001", "5584120", "2024-02-12", "Baranovsky", "Svetlana", "Siobhan", "978-555-0177"):
        assert not _occurs(raw, text)
    assert "sacubitril-valsartan 49-51 mg BID" in text
    jopts = NoteOptions(text_column="body", id_column="msg_id", patient_column="patient_id", category_column="kind")
    messages = list(notes_reader.read_jsonl(DATA / "generic" / "portal_messages.jsonl", jopts))
    assert len(messages) == 2 and "Tamsin" not in _all_text(messages) and "PT-330912" not in _all_text(messages)
    with pytest.raises(MedRAGError, match="no column"):
        list(notes_reader.read_csv(DATA / "generic" / "clinic_export.csv", NoteOptions(text_column="note")))
    with pytest.raises(MedRAGError, match="unknown notes option"):
        NoteOptions.from_mapping({"text_col": "x"})
    assert NoteOptions.from_mapping({"text_column": "body"}).text_column == "body"


def test_text_note_and_already_deidentified_option():
    docs = list(readers.read(DATA / "ed_note.txt"))
    assert {d.metadata["section"] for d in docs} >= {"header", "Chief Complaint", "Assessment and Plan"}
    assert "ASANTE" not in _all_text(docs).upper()
    raw = list(notes_reader.read_text_note(DATA / "ed_note.txt", NoteOptions(already_deidentified=True)))
    assert {d.metadata["deidentified"] for d in raw} == {"source"}
    assert "KWAME ASANTE-MENSAH" in _all_text(raw)
    assert "file:" not in _all_text(docs) and str(DATA) not in _all_text(docs)  # no path (it may name a patient)


# -- de-identification -----------------------------------------------------------------------------------
def test_deid_recall_and_survival_on_the_synthetic_set(eval_deid):
    r = eval_deid.evaluate("combined")
    assert r["recall"] >= 0.99, r["leaks"]
    hard = [p for p in r["leaks"] if p["kind"] in {"NAME", "MRN", "PHONE", "FAX", "SSN", "RECORD_ID"}]
    assert not hard
    assert not r["strict_leaks"]  # no word of a planted name or street address anywhere in its file
    assert not r["drugs_lost"], r["drugs_lost"]  # every drug name and dose survives
    assert not r["survive_lost"], r["survive_lost"]
    assert r["over_removal"] < 0.03
    assert not r["iserror_present"]


def test_typed_tags_and_no_phi_in_logs(caplog):
    text = ("Pt: Ferreira, Ana Lucia   MRN: 4478213   DOB: 02/11/2120\nSSN 078-05-1120, cell 617-555-0142, "
            "email jf@example.org, seen by Dr. Priya Raghunathan at 10.24.118.92; 92 y/o; home 22 Beacon Hill Rd., "
            "Unit 7, Framingham MA 01701. [**Known lastname 1234**] on [**2151-7-16**].")
    with caplog.at_level(logging.DEBUG):
        result = Deidentifier("rules", key=b"k").deidentify(text)
    for tag in ("[NAME]", "[ID]", "[DATE]", "[SSN]", "[PHONE]", "[EMAIL]", "[IP]", "[AGE]", "[ADDRESS]",
                "[LOCATION]", "[ZIP]"):
        assert tag in result.text, tag
    for phi in ("Ferreira", "4478213", "02/11/2120", "078-05-1120", "617-555-0142", "jf@example.org", "Priya",
                "10.24.118.92", "92 y/o", "Beacon", "Framingham", "01701", "Known lastname", "2151-7-16"):
        assert phi not in result.text and phi not in caplog.text, phi
    assert result.counts["NAME"] >= 2 and result.total == len(result.spans)


def test_drug_doses_and_clinical_fractions_survive():
    text = ("Meds: apixaban 5 mg BID, amoxicillin-clavulanate 500-125 mg PO BID, Lasix 40 mg IV. "
            "2/6 holosystolic murmur, strength 5/5 throughout, crackles 1/2 way up. BP 148/96. Seen 5/6.")
    out = Deidentifier(key=b"k").deidentify(text).text
    for keep in ("apixaban 5 mg BID", "amoxicillin-clavulanate 500-125 mg PO BID", "Lasix 40 mg IV",
                 "2/6 holosystolic murmur", "strength 5/5", "1/2 way", "148/96"):
        assert keep in out, keep
    assert "Seen [DATE]" in out


def test_dates_shift_per_patient_and_keep_intervals():
    note = "Admission Date:  11/28/2022   Discharge Date:  2022-12-03   Seen March 3, 2024 and on 7/20."
    deid = Deidentifier("rules", shift_dates=True, key=b"secret")
    a = deid.deidentify(note, patient_key="10003400").text
    dates = [dt.date.fromisoformat(d) for d in re.findall(r"\d{4}-\d\d-\d\d", a)]
    assert len(dates) == 3 and dates[1] - dates[0] == dt.timedelta(days=5)
    assert dates[0] != dt.date(2022, 11, 28) and dates[2] - dates[0] == dt.date(2024, 3, 3) - dt.date(2022, 11, 28)
    assert "[DATE]" in a  # 7/20 has no year: tagged, not shifted
    assert deid.deidentify(note, patient_key="10003400").text == a  # stable for the key
    assert deid.deidentify(note, patient_key="10000032").text != a  # another patient, another offset
    assert Deidentifier("rules", shift_dates=True, key=b"other").deidentify(note, patient_key="10003400").text != a
    assert "11/28/2022" not in deid.deidentify(note).text  # no patient key: tagged


def test_pseudonyms_are_keyed_and_stable():
    one, two = Deidentifier("rules", key=b"one"), Deidentifier("rules", key=b"two")
    assert one.pseudonym("22532", "patient") == one.pseudonym("22532", "patient")
    assert one.pseudonym("22532", "patient") != two.pseudonym("22532", "patient")
    assert one.pseudonym("22532", "patient") != one.pseudonym("22532", "note")
    with pytest.raises(MedRAGError, match="unknown de-identification engine"):
        Deidentifier("magic")


# -- sections, problems, medications ---------------------------------------------------------------------
SUMMARY = """Name:  ___   Unit No:   ___
Service: MEDICINE
Chief Complaint:
dyspnea
History of Present Illness:
67 yo F with COPD.
Physical Exam:
Lungs: wheezes.
Physical Exam:
Discharge exam: clear.
Assessment and Plan
1. Hypoxemic respiratory failure: likely RLL PNA.
 - continue vancomycin 1 g IV q12h
 - wean FiO2
2) Septic shock - on norepinephrine.
# AKI: prerenal.
Medications on Admission:
1. Furosemide 40 mg PO DAILY
2. Insulin lispro via pump (basal 0.85 units/hr)
Discharge Medications:
- Apixaban 5 mg PO BID
- Senna 8.6 mg PO BID:PRN constipation
Discharge Diagnosis:
Primary:
Acute on chronic systolic heart failure
Secondary: hyponatremia, HIV (on ART), COPD
Discharge Instructions:
Weigh yourself daily.
Meds: tiotropium 18 mcg daily, aspirin 81 mg daily
"""


def test_split_sections():
    sections = split_sections(SUMMARY)
    assert sections[0].slug == "preamble" and "Service: MEDICINE" in sections[0].text
    slugs = [s.slug for s in sections]
    assert slugs[1:5] == ["chief-complaint", "history-of-present-illness", "physical-exam", "physical-exam"]
    assert "assessment-and-plan" in slugs and "discharge-diagnosis" in slugs
    hpi = sections[2]
    assert hpi.title == "History of Present Illness" and hpi.body == "67 yo F with COPD."
    # a header with nothing under it is folded into the next section
    assert split_sections("Allergies:\nChief Complaint:\ncough")[0].text == "Allergies:\nChief Complaint:\ncough"
    assert split_sections("just text") == split_sections("just text")[:1] and split_sections("   ") == []


def test_problems_from_diagnosis_and_assessment_sections():
    problems = [p.text for p in extract_problems(SUMMARY)]
    assert problems == ["Hypoxemic respiratory failure", "Septic shock", "AKI",
                        "Acute on chronic systolic heart failure", "hyponatremia", "HIV (on ART)", "COPD"]
    docs = list(readers.read(DATA / "NOTEEVENTS.csv"))
    summary = "\n".join(d.text for d in docs if d.metadata.get("year") == 2151
                        and d.metadata["category"] == "Discharge summary")
    assert [p.text for p in extract_problems(summary)][:2] == [
        "Acute on chronic systolic congestive heart failure",
        "Acute kidney injury on chronic kidney disease stage III"]


def test_medications_from_medication_sections():
    meds = extract_medications(SUMMARY)
    assert [(m.name, m.dose) for m in meds] == [
        ("Furosemide", "40 mg"), ("Insulin lispro via pump", "0.85 units/hr"), ("Apixaban", "5 mg"),
        ("Senna", "8.6 mg"), ("tiotropium", "18 mcg"), ("aspirin", "81 mg")]
    assert {m.section for m in meds} == {"Medications on Admission", "Discharge Medications", "Meds"}
    ed = extract_medications((DATA / "ed_note.txt").read_text())
    assert [m.name for m in ed] == ["apixaban", "metoprolol tartrate", "levothyroxine", "finasteride"]


# -- an index built from the notes holds none of their PHI ----------------------------------------------
def _texts_of(path: Path) -> str:
    """A file's content as text: an SQLite database dumped, anything else decoded leniently."""
    if path.read_bytes()[:16].startswith(b"SQLite format 3"):
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return "\n".join(con.iterdump())
        finally:
            con.close()
    return path.read_bytes().decode("utf-8", errors="ignore")


@pytest.mark.slow
def test_ingested_index_and_temp_files_hold_no_planted_phi(tmp_path, monkeypatch, caplog):
    from medrag import MedRAG, Settings

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    index = tmp_path / "index"
    with caplog.at_level(logging.DEBUG):
        # bm25s keeps its vocabulary as plain JSON, where this search can see stored words (tantivy's term
        # dictionary is a compressed FST: planted text could hide there from a byte search)
        rag = MedRAG(Settings(threads=1).replace(**{"lexical.backend": "bm25s"}))
        report = rag.ingest([DATA], save_to=index, progress=False)
        hits = rag.retrieve("torsemide for acute on chronic systolic heart failure", k=5)
    assert report.files == 6 and report.documents > 100
    assert hits and all(h.chunk.metadata["source_type"] == "clinical_note" for h in hits)
    ingested = {"NOTEEVENTS.csv", "discharge.csv", "radiology.csv", "radiology_extra.csv.gz", "clinic_letter.txt",
                "ed_note.txt"}
    needles = {p["phi"] for p in PLANTED if p["file"] in ingested}
    needles |= {w for p in PLANTED if p["file"] in ingested and p["kind"] == "NAME"
                for w in re.split(r"[\s,\"()]+", p["phi"]) if len(w) >= 4}
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert any(f.suffix == ".sqlite" for f in files) and any(f.suffix == ".faiss" for f in files)
    found, seen_clinical = [], set()
    for f in files:
        content = _texts_of(f)
        seen_clinical |= {f.suffix for w in ("torsemide", "furosemid") if _occurs(w, content)}
        binary = f.suffix in {".faiss", ".npy"}
        found += [(f.name, n) for n in needles if (len(n) >= 6 or not binary) and _occurs(n, content)]
    found += [("log", n) for n in needles if _occurs(n, caplog.text)]
    assert {".sqlite", ".json"} <= seen_clinical  # the search does see the notes' text where it is stored
    assert not found
    # tantivy (the default lexical engine) indexes the same de-identified texts: no planted name is a term of it
    from medrag.lexical.tantivy_store import TantivyStore

    ids = rag.chunks.ids()
    chunks = rag.chunks.get(ids)
    tantivy = TantivyStore.create()
    tantivy.add(np.asarray(ids, dtype=np.int64), [chunks[i].embed_text for i in ids])
    names = {w for p in PLANTED if p["file"] in ingested and p["kind"] == "NAME"
             for w in re.split(r"[\s,\"()]+", p["phi"]) if len(w) >= 4 and w.isalpha()}
    assert tantivy.idf("torsemide") is not None and names
    assert [w for w in names if tantivy.idf(w) is not None] == []
