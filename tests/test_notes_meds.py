"""Medication lists cut into one drug per item: running text split only where a new drug starts (never
inside parentheses, a dose such as "1,000 mg" or a dose instruction), numbered, bulleted and one-per-line
lists as before; each item's name and dose split out. The sections are hand-written and synthetic."""
from __future__ import annotations

from pathlib import Path

import pytest

from medrag.notes import extract_medications, extract_problems

NOTE = Path(__file__).parent / "data" / "discharge_meds.txt"

CASES = {
    "running text, one line": (
        "DISCHARGE MEDICATIONS: metformin 1000 mg twice daily, lisinopril 20 mg daily, furosemide 40 mg daily, "
        "metoprolol succinate 50 mg daily, atorvastatin 40 mg at bedtime.",
        [("metformin", "1000 mg", "metformin 1000 mg twice daily"), ("lisinopril", "20 mg", "lisinopril 20 mg daily"),
         ("furosemide", "40 mg", "furosemide 40 mg daily"),
         ("metoprolol succinate", "50 mg", "metoprolol succinate 50 mg daily"),
         ("atorvastatin", "40 mg", "atorvastatin 40 mg at bedtime")]),
    "running text with brands and a parenthesis": (
        "Medications: Aspirin 81 mg daily, Lasix 40mg PO BID, Lisinopril 10 mg, Metformin 500 mg BID with meals "
        "(hold for contrast), Insulin glargine 20 units qHS",
        [("Aspirin", "81 mg", "Aspirin 81 mg daily"), ("Lasix", "40mg", "Lasix 40mg PO BID"),
         ("Lisinopril", "10 mg", "Lisinopril 10 mg"),
         ("Metformin", "500 mg", "Metformin 500 mg BID with meals (hold for contrast)"),
         ("Insulin glargine", "20 units", "Insulin glargine 20 units qHS")]),
    "wrapped running text, thousands and a dose instruction": (
        "Discharge Medications: metformin 1,000 mg twice daily, furosemide\n40 mg daily, metoprolol\n"
        "succinate 50 mg daily, insulin\nglargine 20 units qHS, oxycodone-acetaminophen 5/325 mg 1 tab PO q6h,\n"
        "as needed for pain, atorvastatin 40 mg at bedtime",
        [("metformin", "1,000 mg", "metformin 1,000 mg twice daily"), ("furosemide", "40 mg", "furosemide 40 mg daily"),
         ("metoprolol succinate", "50 mg", "metoprolol succinate 50 mg daily"),
         ("insulin glargine", "20 units", "insulin glargine 20 units qHS"),
         ("oxycodone-acetaminophen", "5/325 mg", "oxycodone-acetaminophen 5/325 mg 1 tab PO q6h, as needed for pain"),
         ("atorvastatin", "40 mg", "atorvastatin 40 mg at bedtime")]),
    "semicolons, 'and', units": (
        "Home Medications: docusate 100 mg BID; senna 8.6 mg nightly; potassium chloride 20 mEq daily and "
        "vitamin D3 50,000 IU weekly.",
        [("docusate", "100 mg", "docusate 100 mg BID"), ("senna", "8.6 mg", "senna 8.6 mg nightly"),
         ("potassium chloride", "20 mEq", "potassium chloride 20 mEq daily"),
         ("vitamin D3", "50,000 IU", "vitamin D3 50,000 IU weekly")]),
    "numbered lines, MIMIC style": (
        "Discharge Medications:\n"
        "1. Acetaminophen 325 mg Tablet Sig: Two (2) Tablet PO Q6H (every 6 hours) as needed for pain.\n"
        "Disp:*30 Tablet(s)* Refills:*0*\n"
        "2) Metoprolol Succinate 50 mg Tablet Extended Release 24 hr Sig: One (1) Tablet PO DAILY (Daily).\n"
        "3. Furosemide 40 mg Tablet Sig: One (1) Tablet PO once a day.\n",
        [("Acetaminophen", "325 mg",
          "Acetaminophen 325 mg Tablet Sig: Two (2) Tablet PO Q6H (every 6 hours) as needed for pain"),
         ("Metoprolol Succinate", "50 mg",
          "Metoprolol Succinate 50 mg Tablet Extended Release 24 hr Sig: One (1) Tablet PO DAILY (Daily)"),
         ("Furosemide", "40 mg", "Furosemide 40 mg Tablet Sig: One (1) Tablet PO once a day")]),
    "bullets whose instructions have commas": (
        "Discharge Medications:\n"
        "- Prednisone 40 mg daily x 5 days, then 20 mg daily x 5 days\n"
        "- Tylenol 650 mg q6h prn pain, max 3 g/day\n"
        "* Warfarin 5 mg daily, goal INR 2-3\n"
        "* Lisinopril 10 mg daily, hold for SBP < 100\n",
        [("Prednisone", "40 mg", "Prednisone 40 mg daily x 5 days, then 20 mg daily x 5 days"),
         ("Tylenol", "650 mg", "Tylenol 650 mg q6h prn pain, max 3 g/day"),
         ("Warfarin", "5 mg", "Warfarin 5 mg daily, goal INR 2-3"),
         ("Lisinopril", "10 mg", "Lisinopril 10 mg daily, hold for SBP < 100")]),
    "one drug a line, one without a dose": (
        "Current Medications:\nApixaban 5 mg PO BID\nmultivitamin daily\nSenna 8.6 mg PO BID:PRN constipation\n",
        [("Apixaban", "5 mg", "Apixaban 5 mg PO BID"), ("multivitamin", "", "multivitamin daily"),
         ("Senna", "8.6 mg", "Senna 8.6 mg PO BID:PRN constipation")]),
    "numbered in place": (
        "Medications: 1. aspirin 81 mg daily 2. Plavix 75 mg daily 3) atorvastatin 80 mg qHS",
        [("aspirin", "81 mg", "aspirin 81 mg daily"), ("Plavix", "75 mg", "Plavix 75 mg daily"),
         ("atorvastatin", "80 mg", "atorvastatin 80 mg qHS")]),
    "dictated prose with p.o. and p.r.n.": (
        "MEDICATIONS: Lisinopril 20 mg p.o. daily, hydrochlorothiazide 25 mg p.o. daily, Lipitor 40 mg p.o. "
        "q.h.s., Coumadin as directed by the anticoagulation clinic, and Tylenol p.r.n.",
        [("Lisinopril", "20 mg", "Lisinopril 20 mg p.o. daily"),
         ("hydrochlorothiazide", "25 mg", "hydrochlorothiazide 25 mg p.o. daily"),
         ("Lipitor", "40 mg", "Lipitor 40 mg p.o. q.h.s"),
         ("Coumadin", "", "Coumadin as directed by the anticoagulation clinic"), ("Tylenol", "", "Tylenol p.r.n")]),
    "sentences": (
        "Medications: She takes metformin 500 mg BID and lisinopril 10 mg daily. Also on aspirin 81 mg.",
        [("metformin", "500 mg", "She takes metformin 500 mg BID"), ("lisinopril", "10 mg", "lisinopril 10 mg daily"),
         ("aspirin", "81 mg", "Also on aspirin 81 mg")]),
    "names only": (
        "Meds: aspirin, Lasix, multivitamin and fish oil",
        [("aspirin", "", "aspirin"), ("Lasix", "", "Lasix"), ("multivitamin", "", "multivitamin"),
         ("fish oil", "", "fish oil")]),
    "a taper, ratio and range doses, a parenthesis after a comma": (
        "Discharge Medications: amoxicillin-clavulanate 875-125 mg PO BID x 7 days, (last dose 3/14), "
        "Warfarin 5 mg Mon/Wed/Fri, 2.5 mg other days; albuterol 2 puffs q4h prn wheezing, fever",
        [("amoxicillin-clavulanate", "875-125 mg",
          "amoxicillin-clavulanate 875-125 mg PO BID x 7 days, (last dose 3/14)"),
         ("Warfarin", "5 mg", "Warfarin 5 mg Mon/Wed/Fri, 2.5 mg other days"),
         ("albuterol", "2 puffs", "albuterol 2 puffs q4h prn wheezing, fever")]),
}


@pytest.mark.parametrize("section", CASES, ids=list(CASES))
def test_one_drug_per_item(section: str) -> None:
    text, expected = CASES[section]
    meds = extract_medications(text)
    assert [(m.name, m.dose, m.text) for m in meds] == expected
    assert len({m.section for m in meds}) == 1


def test_no_medications_and_sections_elsewhere() -> None:
    assert extract_medications("Medications: None.") == []
    listed = extract_medications("Medications on Admission:\nThe Preadmission Medication list is accurate and "
                                 "complete.\n1. Aspirin 81 mg PO DAILY\n")
    assert [(m.name, m.dose) for m in listed] == [("Aspirin", "81 mg")]
    # a drug named outside a medication section is not listed
    assert extract_medications("Hospital Course: given furosemide 40 mg IV, aspirin 81 mg daily.") == []


def test_synthetic_discharge_summary() -> None:
    text = NOTE.read_text(encoding="utf-8")
    meds = extract_medications(text)
    by_section: dict[str, list[tuple[str, str]]] = {}
    for m in meds:
        by_section.setdefault(m.section, []).append((m.name, m.dose))
    assert by_section == {
        "Medications on Admission": [("Aspirin", "81 mg"), ("Lasix", "40mg"), ("Lisinopril", "10 mg"),
                                     ("Metformin", "500 mg"), ("Insulin glargine", "20 units")],
        "DISCHARGE MEDICATIONS": [("metformin", "1,000 mg"), ("lisinopril", "20 mg"), ("furosemide", "40 mg"),
                                  ("metoprolol succinate", "50 mg"), ("atorvastatin", "40 mg"),
                                  ("oxycodone-acetaminophen", "5/325 mg"), ("potassium chloride", "20 mEq"),
                                  ("vitamin D3", "50,000 IU")]}
    assert next(m.text for m in meds if m.name == "oxycodone-acetaminophen").endswith("q6h, as needed for pain")
    assert [p.text for p in extract_problems(text)] == [
        "Acute on chronic systolic heart failure", "Acute kidney injury on chronic kidney disease stage 3",
        "Type 2 diabetes mellitus"]
