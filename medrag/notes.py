"""Clinical notes as text: sections by their headers, the problem list and the medication list.

Pure functions on (already de-identified) note text, used by the notes readers to chunk a note by
section and by case analysis to pull out what matters:

- ``split_sections(text)``: the note cut at its section headers ("History of Present Illness:",
  "Discharge Diagnosis:", "IMPRESSION:" ...); text before the first header is the ``preamble``.
- ``extract_problems(text)``: the numbered or bulleted items (or plain lines) of the diagnosis,
  assessment/plan and impression sections, each reduced to the problem's name.
- ``extract_medications(text)``: the items of the medication sections, with name and dose split out.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

__all__ = [
    "Medication",
    "Problem",
    "Section",
    "extract_medications",
    "extract_problems",
    "section_kind",
    "split_sections",
]

#: section headers that open a section (matched case-insensitively at the start of a line)
HEADERS = (
    "Chief Complaint", "CC", "Reason for Admission", "Reason for Referral", "Reason for Consultation",
    "Major Surgical or Invasive Procedure", "Procedures?", "History of Present Illness", "HPI",
    "Past Medical History", "PMH", "Past Surgical History", "PSH", "Social History", "Family History",
    "Review of Systems", "ROS", "Allergies", "Physical Exam(?:ination)?", "Exam", "Pertinent Results",
    "Results", "Data", "Labs?", "Laboratory Data", "Imaging", "Studies", "24 Hour Events", "ICU Care",
    "Brief Hospital Course", "Hospital Course", "ED Course", "Assessment and Plan", "Assessment & Plan",
    "Assessment/Plan", "A/P", "A&P", "Assessment", "Plan", "Impression and Plan", "Impression",
    "Medications on Admission", "Admission Medications", "Home Medications", "Outpatient Medications",
    "Current Medications", "Discharge Medications", "Medications", "Meds", "Discharge Disposition",
    "Disposition", "Facility", "Discharge Diagnos[ie]s", "Diagnos[ie]s", "Final Diagnos[ie]s",
    "Problem List", "Discharge Condition", "Condition at Discharge", "Discharge Instructions",
    "Followup Instructions", "Follow-?up", "Addendum", "Indication", "Clinical Indication", "History",
    "Technique", "Comparison", "Examination", "Findings", "Conclusions?", "Interpretation",
    "Final Report", "Notification", "Recommendations?", "Code Status", "Communication",
)
_HEADER = re.compile(
    r"^[ \t]*(?P<name>" + "|".join(HEADERS) + r")[ \t]*(?::|(?=[ \t]*$))[ \t]*", re.IGNORECASE | re.MULTILINE)
#: section kinds: which headers hold problems and which hold medications
_PROBLEM_SECTIONS = re.compile(r"diagnos|assessment|a/p|a&p|impression|problem list", re.IGNORECASE)
_MEDICATION_SECTIONS = re.compile(r"medications|^meds$", re.IGNORECASE)
_ITEM = re.compile(r"^[ \t]*(?:(?P<num>\d{1,2}[.)])|(?P<bullet>[-*•#]|\(\w\)))[ \t]+(?P<text>.+)$")
_SUB_ITEM = re.compile(r"^[ \t]+[-*•][ \t]+")
_SUBHEADER = re.compile(r"^[ \t]*(?P<label>primary|secondary|active issues|chronic issues|active|chronic|"
                        r"inactive|resolved|other)(?:[ \t]+(?:diagnos[ie]s|issues|problems))?[ \t]*:?[ \t]*(?P<rest>.*)$",
                        re.IGNORECASE)
_DOSE = re.compile(r"(?P<dose>\d+(?:[.,]\d+)?(?:[ \t]*-[ \t]*\d+(?:\.\d+)?)?[ \t]*(?:mg|mcg|micrograms?|g|grams?|"
                   r"units?|u|mEq|mmol|mL|ml|L|%|puffs?|tabs?|tablets?|caps?|capsules?|drops?|sprays?|patch)\b"
                   r"(?:[ \t]*/[ \t]*(?:mL|hr|h|kg|min|day|dose))?(?:[ \t]*-[ \t]*\d+(?:\.\d+)?[ \t]*(?:mg|mcg|g))?)",
                   re.IGNORECASE)
_NO_MEDS = re.compile(r"^(?:none|no (?:home )?medications?|nkda|the preadmission medication list is .*|"
                      r"patient (?:is )?not on any medications?)\.?$", re.IGNORECASE)


@dataclass(frozen=True)
class Section:
    """One section of a note: its header as written (``""`` for the preamble), a slug, and its text
    (header line included)."""

    title: str
    slug: str
    text: str

    @property
    def body(self) -> str:
        """The section's text without its header."""
        return _HEADER.sub("", self.text, count=1).strip() if self.title else self.text.strip()


@dataclass(frozen=True)
class Problem:
    """One problem of a note's problem list and the section it came from."""

    text: str
    section: str


@dataclass(frozen=True)
class Medication:
    """One medication item: its name, dose (``""`` when none is written), the whole item and its section."""

    name: str
    dose: str
    text: str
    section: str


def slugify(title: str) -> str:
    """``Discharge Diagnosis`` -> ``discharge-diagnosis``."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def split_sections(text: str) -> list[Section]:
    """The note's sections in order; the text before the first header is the ``preamble``. Empty
    sections (a header with nothing under it before the next) are merged into the next section."""
    sections: list[Section] = []
    matches = list(_HEADER.finditer(text))
    if not matches:
        return [Section("", "preamble", text.strip())] if text.strip() else []
    if text[:matches[0].start()].strip():
        sections.append(Section("", "preamble", text[:matches[0].start()].strip()))
    pending = ""  # headers with no text of their own, carried into the next section
    for m, nxt in zip(matches, [*matches[1:], None]):
        chunk = text[m.start():nxt.start() if nxt else len(text)].strip()
        body = text[m.end():nxt.start() if nxt else len(text)].strip()
        title = m.group("name").strip()
        if not body:
            pending = f"{pending}\n{chunk}".strip()
            continue
        sections.append(Section(title, slugify(title), f"{pending}\n{chunk}".strip() if pending else chunk))
        pending = ""
    if pending and sections:
        last = sections[-1]
        sections[-1] = Section(last.title, last.slug, f"{last.text}\n{pending}")
    return sections


def section_kind(title: str) -> str | None:
    """``problems``, ``medications`` or None for a section header."""
    if _MEDICATION_SECTIONS.search(title.strip()):
        return "medications"
    if _PROBLEM_SECTIONS.search(title):
        return "problems"
    return None


def _problem_name(item: str) -> str:
    """The problem an item names: the text before its first colon or dash explanation, or first sentence."""
    item = re.sub(r"^#\s*", "", item.strip())
    name = re.split(r"(?<!\w/\w):|\s+-\s+|\s+--\s+|(?<=[a-z)])\.\s", item, maxsplit=1)[0]
    return name.strip(" .;,")


def extract_problems(text: str) -> list[Problem]:
    """Problems from the diagnosis, assessment/plan and impression sections: their top-level numbered or
    bulleted items, or (with none) their lines; ``Secondary: a, b, c`` lines are split at commas."""
    problems: list[Problem] = []
    seen: set[str] = set()

    def add(name: str, section: str) -> None:
        key = name.casefold()
        if len(name) >= 3 and key not in seen:
            seen.add(key)
            problems.append(Problem(name, section))

    for section in split_sections(text):
        if section_kind(section.title) != "problems":
            continue
        lines = [ln for ln in section.body.splitlines() if ln.strip()]
        items = [ln for ln in lines if _ITEM.match(ln) and not _SUB_ITEM.match(ln)]
        if items:
            for ln in items:
                add(_problem_name(_ITEM.match(ln).group("text")), section.title)
            continue
        for ln in lines:
            sub = _SUBHEADER.match(ln)
            if sub:
                rest = sub.group("rest").strip()
                for part in _split_outside_parens(rest, ",;") if rest else []:
                    add(_problem_name(part), section.title)
                continue
            if section.title.lower().startswith(("assessment", "impression", "a/p", "a&p")):
                add(_problem_name(ln), section.title)  # a free-text assessment: its first sentence
                break
            add(_problem_name(ln), section.title)
    return problems


def _split_outside_parens(text: str, seps: str) -> list[str]:
    """``text`` split at any of ``seps`` that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch in seps and depth <= 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _medication(item: str, section: str) -> Medication | None:
    item = " ".join(item.split()).strip(" .;,")
    if not item or _NO_MEDS.match(item):
        return None
    dose = _DOSE.search(item)
    name = item[:dose.start()] if dose else re.split(r"\s+(?:PO|IV|SC|IM|SL|PR|TD|IH|via|daily|BID|TID|QHS)\b",
                                                     item, maxsplit=1)[0]
    if name.count("(") > name.count(")"):  # "Insulin lispro via pump (basal 0.85 units/hr)": the dose is inside
        name = name[:name.rfind("(")]
    name = re.sub(r"\s*[-–:@]\s*$", "", name).strip(" ,;(")
    if not name or (not dose and len(item.split()) > 8):  # a sentence, not an item
        return None
    return Medication(name, dose.group("dose").strip() if dose else "", item, section)


def extract_medications(text: str) -> list[Medication]:
    """Medications from the medication sections: numbered or bulleted items, else one per line, and a
    one-line list (``Meds: a 5 mg BID, b 25 mg daily``) split at commas outside parentheses."""
    meds: list[Medication] = []
    for section in split_sections(text):
        if section_kind(section.title) != "medications":
            continue
        lines = [ln for ln in section.body.splitlines() if ln.strip()]
        items = [_ITEM.match(ln).group("text") for ln in lines if _ITEM.match(ln)]
        if not items:
            items = _split_outside_parens(lines[0], ",;") if len(lines) == 1 else lines
        meds += [m for m in (_medication(i, section.title) for i in items) if m]
    return meds
