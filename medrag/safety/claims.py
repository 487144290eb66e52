"""Not a doctor: answer sentences that claim to be a clinician, or to diagnose or prescribe, are removed."""
from __future__ import annotations

import logging
import re

from medrag.generation.citations import answer_sentences

log = logging.getLogger(__name__)

_ROLE = (r"(?:doctor|physician|nurse|clinician|surgeon|pharmacist|medical (?:doctor|professional|practitioner)|"
         r"health ?care (?:provider|professional)|general practitioner|gp|md|m\.d\.|\w+ologist|\w+iatrist)")
_DOCTOR_CLAIM = re.compile("|".join([
    rf"(?<!such )\bas an? (?:[\w-]+ ){{0,2}}{_ROLE}\b", rf"\bas your (?:[\w-]+ ){{0,2}}{_ROLE}\s*,",
    rf"\bi(?:'m| am)(?! not\b)(?: an?| your)? (?:[\w-]+ ){{0,2}}{_ROLE}\b",
    r"\bi(?: (?:would|will|can|could|hereby|must|now|am going to))? (?:diagnose|prescribe)\b",
    r"\bmy (?:diagnosis|prescription|patients|medical opinion|clinical (?:opinion|judge?ment|experience))\b",
    r"\bin my (?:clinical |medical )?practice\b",
    r"(?:作为|我是)(?:一名|一位|一个|你的)?.{0,4}(?:医生|医师|护士|大夫|药师)",
    r"我(?:给你|为你)?(?:诊断|开(?:处方|药))",
]), re.IGNORECASE)


def remove_doctor_claims(text: str) -> tuple[str, int]:
    """Drop sentences claiming to be a clinician or to diagnose/prescribe; returns (text, sentences removed)."""
    removed = 0
    lines = []
    for line in text.split("\n"):
        sentences = answer_sentences(line)
        keep = [s for s in sentences if not _DOCTOR_CLAIM.search(s)]
        removed += len(sentences) - len(keep)
        lines.append(line if len(keep) == len(sentences) else " ".join(keep))
    if removed:
        log.info("removed %d sentence(s) claiming to be a clinician", removed)
    return "\n".join(lines).strip() if removed else text, removed



__all__ = ["remove_doctor_claims"]
