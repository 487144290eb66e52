"""Emergency red flags: a question describing an emergency gets a call-for-help message before anything else.

The rules are data (``emergencies.json`` beside this file): ``concepts`` (English regex fragments and
Chinese strings per concept: named emergencies and the signs that describe them, "face drooping on one side",
"vomit like coffee grounds", "肋骨往里凹"), ``rules`` (which concepts together make which emergency) and ``cues``
(ConText-style negation, history, benign-explanation and "asking for information" cues with a direction and a
window). A concept counts when some occurrence of it is not in the scope of a cue: a cue within ``window`` words
(English) or characters (Chinese) before it (or after it, for post-cues), with no clause terminator ("but", ".",
"，", "但是") between; a cue with ``"scope": "sentence"`` is not stopped by a comma. A cue word inside a concept's
own words (the "not" of "not breathing") is not a cue. Traditional Chinese is converted to Simplified (OpenCC
``t2s``) before matching, so the Chinese fragments are written once, in Simplified. Matching is regular
expressions only (about a millisecond a question): no model.
"""
from __future__ import annotations

import json
import logging
import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from medrag.safety.language import dominant_script

log = logging.getLogger(__name__)

DATA = Path(__file__).with_name("emergencies.json")
_DATA = json.loads(DATA.read_text(encoding="utf-8"))

EMERGENCY_NUMBER: str = _DATA["emergency_number"]["en"]
EMERGENCY_NUMBER_ZH: str = _DATA["emergency_number"]["zh"]
_PRONOUNS: dict[str, str] = _DATA["pronouns"]
#: {name} in an English fragment -> its regex: {p}, {self} (pronouns) and {w} (one word that is not a negation)
_PLACEHOLDERS: dict[str, str] = {**_PRONOUNS, **_DATA.get("placeholders", {})}


@dataclass(frozen=True)
class Rule:
    """An emergency when every ``need`` concept is present and at least ``n`` of ``any_of``."""

    kind: str
    need: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    n: int = 1


@dataclass(frozen=True)
class Cue:
    """A ConText trigger: a ``negated``/``historical``/``benign``/``hypothetical``/``info`` scope over concepts
    ``window`` units away (``info`` cues yield to a person in the question: see ``PERSONAL``)."""

    category: str
    direction: str  # "pre": the concept follows the cue; "post": the concept precedes it
    window: int
    en: tuple[str, ...]
    zh: tuple[str, ...] = ()
    scope: str = "clause"  # "clause": stops at any terminator; "sentence": a comma does not stop it


#: concept -> (English regex fragments, Chinese regex fragments); matched on lower-cased text
CONCEPTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    name: (tuple(c["en"]), tuple(c["zh"])) for name, c in _DATA["concepts"].items()}
#: in priority order: the first rule that fires names the emergency
RULES: tuple[Rule, ...] = tuple(Rule(r["kind"], tuple(r.get("need", ())), tuple(r.get("any_of", ())), r.get("n", 1))
                                for r in _DATA["rules"])
#: kind -> (English, Chinese) advice shown before the emergency number
MESSAGES: dict[str, tuple[str, str]] = {k: (m["en"], m["zh"]) for k, m in _DATA["messages"].items()}
CUES: tuple[Cue, ...] = tuple(Cue(c["category"], c["direction"], c["window"], tuple(c["en"]), tuple(c["zh"]),
                                  c.get("scope", "clause"))
                              for c in _DATA["cues"])


def _pair(key: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(_DATA[key]["en"]), tuple(_DATA[key]["zh"])


#: look like cues but are not ("not sure", "without warning", "无法", "不停")
PSEUDO_CUES = _pair("pseudo_cues")
#: a person ("I", "my", "我") voids info post-cues, and with an acute time marker ("sudden") all info cues
PERSONAL = _pair("personal")
TERMINATORS = _pair("terminators")


def _compile(en: Sequence[str], zh: Sequence[str] = ()) -> re.Pattern[str]:
    """One pattern: English fragments between non-letters, Chinese ones anywhere."""
    parts = []
    if en:
        body = "|".join(f"(?:{e})" for e in en)
        for name, value in _PLACEHOLDERS.items():
            body = body.replace(f"{{{name}}}", value)
        parts.append(rf"(?<![a-z'])(?:{body})(?![a-z])")
    parts += [f"(?:{z})" for z in zh]
    return re.compile("|".join(parts))


_CONCEPT_RE = {name: _compile(en, zh) for name, (en, zh) in CONCEPTS.items()}
_CUE_RE = [(cue, _compile(cue.en, cue.zh)) for cue in CUES]
_PSEUDO_RE = _compile(*PSEUDO_CUES)
_PERSONAL_RE = _compile(*PERSONAL)
_TERMINATOR_RE = _compile(*TERMINATORS)
_COMMAS = {",", "，", "、"}
_UNIT = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[\u3400-\u9fff]")  # an English word or a Chinese character
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def _normalize(question: str) -> str:
    """Lower-cased text with straight apostrophes, and Traditional Chinese (口齒不清) as Simplified (口齿不清)."""
    if _HAN.search(question):
        question = _t2s().convert(question)
    return question.lower().replace("’", "'").replace("‘", "'")


@dataclass(frozen=True)
class Emergency:
    """A question that describes an emergency: what kind, and what to do now."""

    kind: str
    message: str
    concepts: tuple[str, ...] = ()


def _overlaps(span: tuple[int, int], spans: Sequence[tuple[int, int]]) -> bool:
    return any(s < span[1] and span[0] < e for s, e in spans)


def _inside(span: tuple[int, int], spans: Sequence[tuple[int, int]]) -> bool:
    return any(s <= span[0] and span[1] <= e for s, e in spans)


def present_concepts(question: str) -> set[str]:
    """Concepts with at least one occurrence outside every applicable cue's scope."""
    text = _normalize(question)
    found = {name: [m.span() for m in rx.finditer(text)] for name, rx in _CONCEPT_RE.items()}
    concept_spans = [s for spans in found.values() for s in spans]
    blocked = concept_spans + [m.span() for m in _PSEUDO_RE.finditer(text)]
    ends = [m for m in _TERMINATOR_RE.finditer(text) if not _overlaps(m.span(), concept_spans)]
    stops = {"clause": [m.start() for m in ends], "sentence": [m.start() for m in ends if m.group() not in _COMMAS]}
    acute = bool(found["sudden"])
    personal = bool(_PERSONAL_RE.search(text))
    cues = [(cue, m.span()) for cue, rx in _CUE_RE for m in rx.finditer(text)
            if not _inside(m.span(), blocked)
            and not (cue.category == "info" and personal and (acute or cue.direction == "post"))]

    units = [m.start() for m in _UNIT.finditer(text)]  # sorted: words and Chinese characters, by where they start

    def in_scope(span: tuple[int, int]) -> bool:
        for cue, (cs, ce) in cues:
            start, end = (ce, span[0]) if cue.direction == "pre" else (span[1], cs)
            if start <= end and bisect_left(units, end) - bisect_left(units, start) <= cue.window:
                ends_at = stops[cue.scope]
                i = bisect_left(ends_at, start)
                if i == len(ends_at) or ends_at[i] >= end:
                    return True
        return False

    return {name for name, spans in found.items() if any(not in_scope(s) for s in spans)}


def detect_emergency(question: str) -> Emergency | None:
    """The emergency a question describes (English or Chinese), or None; negated/historical mentions don't count."""
    concepts = present_concepts(question)
    kinds = [r.kind for r in RULES
             if all(c in concepts for c in r.need) and sum(c in concepts for c in r.any_of) >= (r.n if r.any_of else 0)]
    if not kinds:
        return None
    zh = dominant_script(question) == "CJK"
    advice = [MESSAGES[k][zh] for k in dict.fromkeys(kinds)]
    message = " ".join([*advice, EMERGENCY_NUMBER_ZH if zh else EMERGENCY_NUMBER])
    log.info("emergency %s detected (concepts %s)", kinds[0], sorted(concepts))
    return Emergency(kinds[0], message, tuple(sorted(concepts)))




__all__ = ["CONCEPTS", "CUES", "EMERGENCY_NUMBER", "EMERGENCY_NUMBER_ZH", "MESSAGES", "RULES", "Emergency", "Rule",
           "detect_emergency", "present_concepts"]
