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
_DOSE = re.compile(r"(?<![\w.])(?P<dose>\d+(?:[.,]\d+)?(?:/\d+(?:\.\d+)?)*(?:[ \t]*-[ \t]*\d+(?:\.\d+)?)?[ \t]*"
                   r"(?:mg|mcg|micrograms?|g|grams?|units?|u|IU|mEq|mmol|mL|ml|L|%|puffs?|tabs?|tablets?|caps?|"
                   r"capsules?|drops?|sprays?|patch)(?!\w)"
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


# -- medication lists ------------------------------------------------------------------------------------
#: where a medication list may break between two drugs: a line break, a semicolon, a comma (", and" too),
#: a lone " and ", or a full stop before a capital; runs of these count as one break
_MED_BREAK = re.compile(r"(?:[ \t]*(?:\n|;|,|\.(?=[ \t]*(?:\n|[ \t][A-Z]))|(?<=\s)and(?=\s))[ \t]*)+")
#: "1. aspirin 81 mg daily 2. lisinopril ...": item numbers inside running text
_INLINE_NUMBER = re.compile(r"(?:^|(?<=\s))(?P<n>\d{1,2})[.)][ \t]+(?=[A-Za-z])")
#: a piece starting with one of these words carries on the drug before it ("as needed", "max 3 g/day",
#: "then 20 mg daily", "PO BID", "succinate 50 mg" after a wrapped "metoprolol"), never starts a new one
_CARRY_ON = re.compile(
    r"(?:as|if|when|while|until|unless|for|with|without|after|before|at|in|on|to|of|per|via|by|then|and|or|but|"
    r"not|no|do|may|can|please|every|each|x|times|over|up|total|max(?:imum)?|min(?:imum)?|goal|target|hold|held|"
    r"increas\w*|decreas\w*|taper\w*|titrat\w*|reduc\w*|wean\w*|adjust\w*|repeat\w*|last|next|dose[sd]?|dosing|"
    r"sliding|scale|home|start\w*|stop\w*|discontinu\w*|chang\w*|switch\w*|take[sn]?|taking|use[sd]?|using|"
    r"apply|applied|inject\w*|inhale\w*|instill\w*|alternat\w*|rotate|crushed|chewed|dissolved|mixed|diluted|"
    r"given|infuse[sd]?|daily|nightly|weekly|monthly|once|twice|thrice|bid|tid|qid|qd|qod|qhs|hs|qam|qpm|"
    r"q\d+(?:-\d+)?(?:h|hr|hrs|hours?)?|ac|pc|po|iv|ivp|im|sc|subq|sq|sl|pr|td|inh|neb|topical|topically|"
    r"prn|p\.r\.n\.?|morning|evening|night|bedtime|noon|am|pm|breakfast|lunch|dinner|supper|meals?|food|"
    r"mg|mcg|g|gm|grams?|units?|iu|meq|mmol|ml|tabs?|tablets?|caps?|capsules?|puffs?|drops?|sprays?|"
    r"succinate|tartrate|hydrochloride|hcl|mesylate|maleate|besylate|fumarate|er|xl|sr|cr|xr|dr|la|ec|odt|"
    r"extended|delayed|sustained|release|oral|solution|suspension|cream|ointment|inhaler|nebs?|patch|"
    r"disp|refills?|sig|qty|#\d*)", re.IGNORECASE)
#: a line that ends in one of these words runs on into the next line ("... BID with / meals")
_DANGLING = re.compile(r"(?:\b(?:with|for|to|of|and|or|per|at|in|on|as|the|a|then|every|q|x|plus)|[-/+&(])$",
                       re.IGNORECASE)
#: frequencies and routes, which (after a drug's name) make a piece a drug without a dose ("multivitamin daily")
_FREQ_ROUTE = re.compile(
    r"(?:daily|nightly|weekly|monthly|once|twice|bid|tid|qid|qd|qod|qhs|hs|qam|qpm|q\d+(?:-\d+)?h(?:rs?)?|prn|"
    r"po|iv|im|sc|subq|sl|pr|td|inh|neb|topical(?:ly)?|as needed|at bedtime)\b", re.IGNORECASE)
#: drugs and drug-name endings common enough to start a list item without a dose ("..., multivitamin, ...")
_DRUG_LIKE = re.compile(
    r"(?:aspirin|asa|tylenol|acetaminophen|apap|lasix|coumadin|warfarin|heparin|lovenox|enoxaparin|insulin|"
    r"plavix|clopidogrel|eliquis|xarelto|multivitamins?|mvi|vitamin|vit|colace|docusate|senna|sennosides|"
    r"miralax|polyethylene|bisacodyl|lactulose|tums|nitroglycerin|ntg|prednisone|albuterol|ipratropium|"
    r"kcl|potassium|magnesium|calcium|ferrous|iron|folic|folate|thiamine|melatonin|digoxin|amiodarone|"
    r"levothyroxine|synthroid|metformin|glipizide|glyburide|spironolactone|allopurinol|gabapentin|tramadol|"
    r"morphine|oxycodone|hydrocodone|percocet|vicodin|ondansetron|zofran|pantoprazole|protonix|famotidine|"
    r"ceftriaxone|vancomycin|zosyn|keppra|levetiracetam|hydralazine|isosorbide|imdur|\w{3,}(?:pril|sartan|"
    r"olol|dipine|statin|prazole|azole|cillin|mycin|floxacin|cycline|oxetine|aline|tidine|gliptin|gliflozin|"
    r"glutide|mab|nib|parin|xaban|gatran|triptan|semide|thiazide|izide|zosin|terol|sone|olone|afil|zepam|"
    r"zolam|codone|profen|lukast|setron|triptyline|pramine|dronate|tropium|sonide|asone|vir))\b", re.IGNORECASE)
#: a drug's name: up to six words (letters first; "D3", "(Lasix)", "amoxicillin-clavulanate" are words)
_NAME_WORD = re.compile(r"[A-Za-z(][\w()/+.'-]*")
#: prose before a drug's name in running text, left out of the name ("She takes metformin 500 mg")
_LEAD_IN = re.compile(r"^(?:(?:the\s+)?(?:patient|pt\.?|she|he)\s+(?:is\s+|was\s+)?(?:on|takes|taking|uses|using)"
                      r"|(?:also\s+)?(?:takes|taking|on|continues?|continued|resumes?|resumed|started?|new|and|also))"
                      r"\s+(?=\S)", re.IGNORECASE)


def _first_word(piece: str) -> str:
    word = piece.split(maxsplit=1)[0] if piece.split() else ""
    return word.rstrip(",;:.") if len(word) > 1 else word


def _carries_on(piece: str) -> bool:
    """Whether ``piece`` continues the drug before it: it starts with a number, a parenthesis or a word of
    ``_CARRY_ON`` (a dose, a frequency, an instruction)."""
    word = _first_word(piece)
    return not word or not word[0].isalpha() or bool(_CARRY_ON.fullmatch(word.rstrip(":")))


def _starts_drug(piece: str) -> bool:
    """Whether ``piece`` starts a new drug: a name (a few words, none of them a dose instruction) followed by
    a dose, a frequency or a route, or a known drug-like word."""
    piece = _LEAD_IN.sub("", piece)
    if _carries_on(piece):
        return False
    if _DRUG_LIKE.match(piece):
        return True
    for follow in (_DOSE.search(piece), _FREQ_ROUTE.search(piece)):
        if follow is None:
            continue
        words = piece[:follow.start()].split()
        if 1 <= len(words) <= 6 and all(_NAME_WORD.fullmatch(w) for w in words) \
                and not any(_CARRY_ON.fullmatch(w.strip("()")) for w in words):
            return True
    return False


def _depths(text: str) -> list[int]:
    """The bracket depth at each character of ``text``."""
    depths, depth = [], 0
    for ch in text:
        depth = max(0, depth + (ch in "([") - (ch in ")]"))
        depths.append(depth)
    return depths


def _split_medications(text: str, with_doses: bool, running: bool) -> list[str]:
    """``text`` (a list item, or the running text of a medication section) cut into one piece per drug.

    It breaks at line breaks, semicolons, commas, " and " and full stops outside brackets (never "1,000 mg"),
    and a break stands only where the text after it starts a new drug (``_starts_drug``) - or, in a list
    with no doses at all, does not carry on the one before (``_carries_on``). A line break is a break unless
    the next line carries on (a wrapped "furosemide / 40 mg daily"), or, in running text, the drug before it
    has no dose yet (a wrapped "insulin / glargine 20 units")."""
    depths = _depths(text)
    breaks = [m for m in _MED_BREAK.finditer(text) if not depths[m.start()] and m.end() < len(text)
              and not (m.group().strip() == "," and text[m.start() - 1:m.start()].isdigit()
                       and text[m.end():m.end() + 1].isdigit() and m.end() == m.start() + 1)]
    items, start = [], 0
    for m, nxt in zip(breaks, [*breaks[1:], None]):
        before, piece = text[start:m.start()], text[m.end():nxt.start() if nxt else len(text)]
        sep = m.group()
        if _carries_on(_LEAD_IN.sub("", piece)) or _DANGLING.search(before.rstrip()):
            continue
        if "\n" in sep:
            if with_doses and running and not _DOSE.search(before):
                continue
        elif not with_doses:
            pass
        elif not _starts_drug(piece):
            continue
        elif sep.strip() in ("and", ".") and not _DOSE.search(before):
            continue
        elif sep.strip() == "." and len(_first_word(piece)) < 3:
            continue
        items.append(before)
        start = m.end()
    items.append(text[start:])
    return [i.strip() for i in items if i.strip()]


def _inline_numbered(text: str, expect: int = 1, least: int = 2) -> list[str]:
    """Running text numbered in place ("1. aspirin 81 mg 2. lisinopril 10 mg") cut at its numbers ``expect``,
    ``expect + 1`` ... (at least ``least`` of them, each before a new drug); other text as it is."""
    marks = []
    for m in _INLINE_NUMBER.finditer(text):
        if int(m.group("n")) == expect and not _carries_on(_LEAD_IN.sub("", text[m.end():])):
            marks.append(m)
            expect += 1
    if len(marks) < least:
        return [text]
    head = text[:marks[0].start()]
    parts = [head] if head.strip() else []
    return parts + [text[m.end():nxt.start() if nxt else len(text)] for m, nxt in zip(marks, [*marks[1:], None])]


def _medication(item: str, section: str) -> Medication | None:
    item = " ".join(item.split()).strip(" .;,")
    if not item or _NO_MEDS.match(item):
        return None
    dose = _DOSE.search(item)
    name = item[:dose.start()] if dose else re.split(
        r"\s+(?:(?:PO|IV|SC|IM|SL|PR|TD|IH)\b|(?i:via|daily|nightly|weekly|bid|tid|qid|qhs|q\d+h|prn|once|twice|"
        r"as needed|as directed|at bedtime|p\.o\.|p\.r\.n\.?|q\.?h\.?s\.?)(?!\w))", item, maxsplit=1)[0]
    if name.count("(") > name.count(")"):  # "Insulin lispro via pump (basal 0.85 units/hr)": the dose is inside
        name = name[:name.rfind("(")]
    name = re.sub(r"\s*[-–:@]\s*$", "", name).strip(" ,;(")
    name = _LEAD_IN.sub("", name) or name  # "She takes metformin" -> "metformin"
    if not name or (not dose and len(item.split()) > 8):  # a sentence, not an item
        return None
    return Medication(name, dose.group("dose").strip() if dose else "", item, section)


def extract_medications(text: str) -> list[Medication]:
    """Medications from the medication sections, one per drug: numbered or bulleted items (a line that
    carries on the item above joins it), else the section's lines - one drug a line, or running text
    (``Meds: a 5 mg BID, b 25 mg daily and c 10 mg``, wrapped or not) cut where a new drug starts
    (``_split_medications``), never inside parentheses or a dose."""
    meds: list[Medication] = []
    for section in split_sections(text):
        if section_kind(section.title) != "medications":
            continue
        body = section.body
        lines = [ln for ln in body.splitlines() if ln.strip()]
        with_doses = bool(_DOSE.search(body))
        items: list[str] = []
        if any(_ITEM.match(ln) for ln in lines):
            for ln in lines:
                m = _ITEM.match(ln)
                if m:
                    num = m.group("num")
                    items += _inline_numbered(m.group("text"), int(num[:-1]) + 1, 1) if num else [m.group("text")]
                elif items and (_carries_on(ln.strip()) and not re.match(r"\s*(?:disp|refills?|sig)\b", ln, re.I)
                                or _DANGLING.search(items[-1].rstrip())
                                or items[-1].count("(") > items[-1].count(")")):
                    items[-1] += "\n" + ln
            pieces = [p for item in items for p in _split_medications(item, with_doses, running=True)]
        else:
            chunks = _inline_numbered(body)
            running = len(chunks) > 1 or any(
                len(_split_medications(ln, with_doses, running=False)) > 1 for ln in lines)
            pieces = [p for chunk in chunks for p in _split_medications(chunk, with_doses, running)]
        meds += [m for m in (_medication(p, section.title) for p in pieces) if m]
    return meds
