"""Case analysis: a clinical note de-identified in memory, its problems and medications pulled out, each
problem given a short cited answer from the index, red flags first.

The note is never written anywhere, nor logged: it is de-identified (``medrag.deid``) before anything else
looks at it, and only the de-identified problem names are used as questions. ``analyse`` takes any object
with the pipeline's ``ask`` and ``retrieve`` (``MedRAG.case`` passes itself).
"""
from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from medrag.answer import DISCLAIMER, Answer, Passage
from medrag.errors import MedRAGError
from medrag.safety import Emergency, detect_emergency

log = logging.getLogger(__name__)

MAX_NOTE_CHARS = 200_000  # a note longer than this is not one note
MAX_PROBLEMS = 8  # problems answered per case (the first ones: diagnoses come first in a note)
QUESTION = "What is the treatment and workup for {problem}?"
#: clinical qualifiers a consumer or guideline page rarely writes: the problem is asked about without them
#: ("Acute on chronic systolic heart failure" -> "heart failure"), so the answerer's gate finds its topic covered
_QUALIFIER = re.compile(r"\b(?:acute on chronic|acute|chronic|systolic|diastolic|mellitus|decompensated|"
                        r"uncontrolled|poorly controlled|exacerbation of|"
                        r"(?:nyha )?(?:stage|grade|class) [0-9ivx]+[ab]?)\b", re.IGNORECASE)
_CLAUSE = re.compile(r"\s+(?:due to|secondary to|in the setting of|status post|s/p)\b.*$", re.IGNORECASE)


class Asker(Protocol):
    def ask(self, question: str, **options: Any) -> Answer: ...

    def retrieve(self, question: str, k: int | None = None, **options: Any) -> list[Any]: ...


class ProblemEvidence(BaseModel):
    """One problem of the note and the cited answer for it."""

    model_config = ConfigDict(frozen=True)

    problem: str
    section: str
    answer: Answer


class CaseAnalysis(BaseModel):
    """What ``medrag case`` prints: red flags first, the problem list with its evidence, the medications."""

    model_config = ConfigDict(frozen=True)

    emergency: bool = False
    notices: list[str] = Field([], description="the emergency message, if the note describes one")
    problems: list[ProblemEvidence] = []
    medications: list[str] = Field([], description="name and dose as the note gives them (de-identified)")
    similar: list[Passage] = Field([], description="the most similar de-identified notes of a notes index")
    phi_removed: dict[str, int] = Field({}, description="spans removed from the note, by kind (counts only)")
    disclaimer: str = DISCLAIMER

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def render(self) -> str:
        """The analysis as a person reads it in a terminal."""
        lines = [*(f"!! {n}" for n in self.notices), *([""] if self.notices else [])]
        lines.append(f"Problems ({len(self.problems)}):")
        for i, item in enumerate(self.problems, 1):
            lines += ["", f"{i}. {item.problem}  [{item.section}]"]
            lines += [f"   {line}" for line in item.answer.body.splitlines()]
            lines += [f"   {c.line()}" for c in item.answer.citations]
        if self.medications:
            lines += ["", "Medications:", *(f"  - {m}" for m in self.medications)]
        if self.similar:
            lines += ["", "Similar notes:", *(f"  {p.doc_id} ({p.title}) {p.score:.3f}" for p in self.similar)]
        lines += ["", self.disclaimer]
        return "\n".join(lines)


#: sections describing the patient's present state, where a red flag is acute (not history or plans)
ACUTE_SECTIONS = re.compile(r"chief complaint|^cc$|reason for|history of present illness|^hpi$|ed course|"
                            r"24 hour events|preamble|exam|findings|impression", re.IGNORECASE)


def _red_flags(text: str) -> Emergency | None:
    """The first emergency a section about the patient's present state describes (negation-aware, per section
    so that one section's "rule out" or history does not hide another's acute signs)."""
    from medrag.notes import split_sections

    for section in split_sections(text):
        if ACUTE_SECTIONS.search(section.title.strip()) or ACUTE_SECTIONS.search(section.slug):
            body = re.sub(rf"^\s*{re.escape(section.title)}\s*:?", "", section.text, flags=re.IGNORECASE)
            found = detect_emergency(body)  # without its header: "History of Present Illness" is no history
            if found is not None:
                return found
    return None


def analyse_similar(notes: Asker, case: CaseAnalysis, n: int) -> list[Passage]:
    """The ``n`` de-identified notes of ``notes`` most similar to the case's problem list."""
    summary = "; ".join(p.problem for p in case.problems)
    hits = notes.retrieve(summary, n, where="source_type=clinical_note")
    return [Passage.from_hit(i, h) for i, h in enumerate(hits, 1)]


def condition_of(problem: str) -> str:
    """A problem as the condition it names, without clinical qualifiers (acuity, stage, "mellitus", "due to ...")."""
    text = " ".join(_QUALIFIER.sub(" ", _CLAUSE.sub("", problem)).split())
    return text or problem


def analyse(rag: Asker, note: str, *, k: int | None = None, strict: bool | None = None,
            max_problems: int = MAX_PROBLEMS) -> CaseAnalysis:
    """De-identify ``note`` in memory, find its problems and medications, and answer each problem from ``rag``."""
    from medrag.deid import Deidentifier
    from medrag.notes import extract_medications, extract_problems

    if not note or not note.strip():
        raise MedRAGError("empty note: give the text of a clinical note (a file, or - for standard input)")
    if len(note) > MAX_NOTE_CHARS:
        raise MedRAGError(f"the note has {len(note)} characters; case analysis takes one note "
                          f"(at most {MAX_NOTE_CHARS})")
    cleaned = Deidentifier().deidentify(note)
    text = cleaned.text
    problems = extract_problems(text)[:max_problems]
    if not problems:
        raise MedRAGError("no problem list found: the note needs a diagnosis, assessment/plan or impression "
                          "section with its items (e.g. 'Discharge Diagnosis:' followed by numbered lines)")
    emergency = _red_flags(text)
    log.info("case: %d problems, %d PHI spans removed", len(problems), sum(cleaned.counts.values()))
    evidence = [ProblemEvidence(problem=p.text, section=p.section,
                                answer=rag.ask(QUESTION.format(problem=condition_of(p.text)), k=k, strict=strict))
                for p in problems]
    meds = [m.text for m in extract_medications(text)]
    return CaseAnalysis(emergency=emergency is not None, notices=[emergency.message] if emergency else [],
                        problems=evidence, medications=meds, phi_removed=dict(cleaned.counts))


__all__ = ["CaseAnalysis", "ProblemEvidence", "analyse", "analyse_similar", "condition_of"]
