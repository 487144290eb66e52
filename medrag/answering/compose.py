"""Choosing and laying out an extractive answer: passage sentences that carry an answer of the question's kind.

A passage is read as *units*: a sentence, or a list (a lead-in line ending in ``:``, "including", "such as" …
and the bullet or short lines under it). On consumer-health pages (``CONSUMER``) each unit is scored by how well
it answers a question of this kind on this topic, not by how close its wording is to the question's (a sentence
restating the question is closest by construction):

- ``relevance``: the cosine of the unit's sentence vectors to the question's (the topic);
- ``kind``: how many of the things answers of this kind name it names (``KIND_CUES``: medicine classes,
  symptoms, tests …, not the generic words every such page has);
- ``frame``: it states the answer outright ("is treated with", "symptoms include": ``FRAMES``);
- ``fit``: the passage answers this kind of question (its source's question type, or its title's kind);
- ``list``: a list, for a question whose answer is one;
- ``rank``: the passage's place in the retrieval order;
- against it, ``echo`` (its words are the question's and generic ones: "vary from mild to severe") and
  ``aside`` (research under way, statistics, the publisher).

Research abstracts (``RESEARCH``) are answered by relevance alone: there an expert's summary restates the
question and what several abstracts say.

The best units are taken while they add something (a near-paraphrase of a taken unit adds nothing) and the
words allow (``budget``), then grouped by passage in document order. A list is kept as a list: its lead-in, then
one ``- item`` line each, every line cited. A unit opening with an unresolved reference ("These", "It",
"described above") goes out only with the sentence before it, or not at all.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from medrag.answering.kinds import LIST_KINDS, QTYPE_KIND, passage_kind
from medrag.documents import Chunk
from medrag.generation.citations import BULLET, sentence_spans

log = logging.getLogger(__name__)

#: what an answer of each kind names (lower-case regex fragments, matched at word starts): specific content, not
#: the generic words every sentence of such a page has ("control", "manage", "your doctor")
KIND_CUES: dict[str, str] = {
    "treatment": r"medicines?\b|medications?\b|drugs?\b|prescri|inhaler|nebuli|antibiotic|antiviral|antifung|"
                 r"surgery|surgical|operation|procedure|insulin|metformin|blocker|inhibitor|diuretic|steroid|"
                 r"corticosteroid|bronchodilator|beta2?-agonist|statin|anticoagul|blood thinner|dialysis|transplant|"
                 r"diet|eating|salt|sodium|exercis|physical activity|lifestyle|weight loss|lose weight|losing weight|"
                 r"quit|stop smoking|smoking|alcohol|rest\b|fluids|pain reliever|acetaminophen|ibuprofen|aspirin|"
                 r"counsel|rehabilit|physical therapy|occupational therapy|speech therapy|therap|oxygen|injection|"
                 r"shots?\b|supplement|vitamin|iron|calcium|chemotherapy|radiation|hormone|pills?\b|tablet|"
                 r"quick-relief|rescue|long-term control|action plan|implant|stent|bypass|pacemaker|device|"
                 r"vaccine|antibod|immunotherap|cream|ointment|lotion|laxative|antacid|fiber|"
                 r"ace inhibitor|arb\b|calcium channel|thiazide|glp-1|sglt2|sulfonylurea|antihistamine|decongestant",
    "symptoms": r"pain|ache|fever|chills?\b|cough|phlegm|mucus|shortness of breath|short of breath|breath|wheez|"
                r"fatigue|tired|weak|swell|rash|itch|nausea|vomit|diarrh|constipat|headache|dizz|faint|confus|"
                r"weight (?:loss|gain)|lose weight|bleed|bruis|thirst|urinat|pee|blur|vision|numb|tingl|sweat|"
                r"palpitat|heartbeat|cramp|stiff|sore|appetite|pale|yellow|jaundice|dark urine|tight|"
                r"trouble|difficult|lump|discharge|burn|redness|hoarse|sleep|seizure|memory|mood|depress|anxi|"
                r"chest|joint|muscle|skin|eyes?\b|throat|nose|stomach|belly|abdom|bloat|gas\b|heartburn|"
                r"no symptoms|first sign|early sign|warning sign",
    "causes": r"caused by|cause[sd]? |due to|results? from|because|trigger|infect|virus|viral|bacteri|germ|"
              r"fung|parasit|genes?\b|genetic|mutation|inherit|damage|block|build ?up|plaque|autoimmun|"
              r"immune system|attack|hormone|deficien|too much|too little|not enough|exposure|spread|contact|"
              r"bite|injur|smok|alcohol|obes|overweight|insulin resistance|virus|toxin|medicines?\b|allerg",
    "prevention": r"prevent|avoid|reduc|lower (?:your|the) risk|vaccin|immuniz|shots?\b|wash|clean|condom|"
                  r"quit|stop smoking|don.t smoke|not smok|healthy (?:diet|weight|eating)|diet|exercis|"
                  r"physical activ|weight|limit|screen|protect|repellent|cover|safe|hygien|sunscreen|"
                  r"salt|sodium|alcohol|fiber|fruits|vegetables|check-?ups?|blood pressure|cholesterol",
    "diagnosis": r"diagnos|tests?\b|testing|exam|blood test|urine|x-?ray|scan|mri|ct\b|ultrasound|biopsy|"
                 r"imaging|measur|screen|medical history|family history|physical exam|levels?\b|culture|sample|"
                 r"electrocardiogram|ekg|ecg|echocardiogram|spirometr|endoscop|colonoscop|stress test|"
                 r"a1c|glucose|reading|mm ?hg|swab|antibod|pulse oximetr",
    "risk": r"risk|more likely|more common|age|older|younger|women|men\b|children|family history|genetic|"
            r"inherit|obes|overweight|smok|diabet|high blood pressure|pregnan|race|ethnic|african|hispanic|"
            r"inactiv|alcohol|exposure|history of|weak(?:ened)? immune|years? old|over \d+",
    "outlook": r"outlook|prognos|complicat|life expectancy|cure|recover|surviv|death|die|fatal|chronic|"
               r"lifelong|long[- ]term|go away|worse|progress|normal life|damage|failure|lead to|disabilit",
    "definition": r"is a |is an |are a |refers? to|in which|occurs when|happens when|is when|type of|kind of|"
                  r"condition|disease|disorder|means",
}
#: a sentence that states the answer outright ("X is treated with", "symptoms include", "is caused by")
FRAMES: dict[str, str] = {
    "treatment": r"(?:is|are|can be|may be) treated (?:with|by)|"
                 r"treatments? (?:\w+ ){0,4}(?:includes?|is|are|may include)|"
                 r"options (?:\w+ ){0,3}include|(?:types|kinds) of (?:medicines|treatment)|the main treatment|"
                 r"(?:is|are) the (?:first|preferred|main|most)",
    "symptoms": r"symptoms? (?:\w+ ){0,5}(?:includes?|are|may include|can include)|signs (?:\w+ ){0,5}include|"
                r"common symptoms?|main symptoms?|first sign|no symptoms|(?:no|not|without|few) (?:\w+ ){0,3}"
                r"(?:signs|symptoms)|symptoms (?:\w+ ){0,2}(?:do not|don't|may not|rarely)",
    "causes": r"(?:is|are|can be) caused by|causes? (?:\w+ ){0,4}(?:includes?|is|are)|(?:is|are) due to|results? from|"
              r"main cause|most common cause|happens when|occurs when",
    "prevention": r"(?:can|to|may|best way to|help) (?:\w+ ){0,2}prevent|lower (?:your|the) risk|ways? to prevent|"
                  r"reduce (?:your|the) risk|can be prevented",
    "diagnosis": r"(?:is|are) diagnosed (?:with|by|using)|tests? (?:\w+ ){0,4}(?:includes?|are|may include)|"
                 r"to diagnose|diagnosis (?:is|includes?)",
    "risk": r"(?:at|higher|increased|greater) risk|risk factors? (?:\w+ ){0,3}(?:includes?|are)|more likely",
    "outlook": r"can lead to|complications? (?:\w+ ){0,4}(?:includes?|are|may)|outlook|life expectancy|if (?:not|left) "
               r"(?:treated|untreated)",
    "definition": r"(?:is|are) (?:a|an) (?:\w+ ){0,4}(?:disease|condition|disorder|infection|type|problem|"
                  r"syndrome|illness)|refers to|is when|in which",
}
_FRAMES = {kind: re.compile(pattern, re.IGNORECASE) for kind, pattern in FRAMES.items()}
#: an answer that there is none ("usually has no symptoms", "there is no cure") names nothing, yet answers fully
NONE_ANSWERS: dict[str, str] = {
    "symptoms": r"\b(?:no|not|without|few) (?:\w+ ){0,3}(?:signs|symptoms)\b|\bsymptoms (?:\w+ ){0,2}(?:do not|don't|"
                r"may not|rarely)\b|\bsilent\b",
    "treatment": r"\bno (?:\w+ ){0,2}(?:cure|treatment)\b|\b(?:cannot|can't|can not) be (?:cured|treated)\b",
    "prevention": r"\b(?:cannot|can't|can not) be prevented\b|\bno (?:\w+ ){0,2}(?:way to prevent|vaccine)\b",
}
_NONE = {kind: re.compile(pattern, re.IGNORECASE) for kind, pattern in NONE_ANSWERS.items()}
_CUES = {kind: re.compile(rf"\b(?:{cues})", re.IGNORECASE) for kind, cues in KIND_CUES.items()}
#: words that say nothing on their own: a unit made of these and the question's words echoes the question
GENERIC = frozenset("""
signs sign symptoms symptom treatment treatments treat treated treating causes cause caused prevent prevention
diagnosis diagnose diagnosed risk risks factors outlook vary varies mild severe moderate people person someone
many some most common different depend depends depending type types kind kinds each other also often usually
may might can could will would should must help helps doctor doctors health healthcare provider providers
condition conditions disease diseases disorder problem problems include includes including such like well
goal goals main important information learn more know time based serious case cases person's patients patient
""".split())
_STOP = frozenset("""
the a an and or of to in on for with by at from as is are was were be been being it its this that these those
there their they them you your yours we our us he she his her has have had not no do does did what which who
whom how why when where than then so if but into about over out up down all any both more most other same own
just very too can may only one two three being get gets getting i me my am
""".split())
#: an opening that refers to something before the sentence ("This study" is its cited source: not dangling)
_SOURCE = r"(?:study|studies|review|paper|article|trial|work|report|analysis|survey|cohort|series|case report)\b"
DANGLING = re.compile(rf"^(?:(?:these|this|those|such)(?! {_SOURCE})|they|them|it|its|he|she|their|however|"
                      r"in addition|additionally|instead|thus|therefore|otherwise|or|but)\b|"
                      r"\b(?:described|listed|mentioned|discussed|shown|noted) (?:above|earlier|before)\b",
                      re.IGNORECASE)
#: a reference to text the reader never sees: never quoted
UNSEEN = re.compile(r"\b(?:described|listed|mentioned|discussed|shown) (?:above|below|earlier)\b|"
                    r"\b(?:see|go to|visit|read|call|contact)\b.{0,40}\b(?:for more information|website|web site|"
                    r"page|section|article|fact sheet|www\.|https?:)|^\(?for more information\b|\bclick\b|"
                    r"\bthis (?:article|page|fact sheet|section|topic)\b|\bmore information\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z][a-z'-]+")
MAX_ITEMS = 20  # list items kept under one lead-in
_NEGATION = re.compile(r"\b(?:no|not|never|without|none|rarely|seldom|cannot|can't|don't|doesn't|isn't|aren't)\b",
                       re.IGNORECASE)
#: what a consumer answer can leave out: research under way, statistics, the publisher
ASIDE = re.compile(r"\b(?:research(?:ers)?|scientists|studies (?:are|show)|clinical trials?|under investigation|"
                   r"future|statistics|percent of|million (?:people|americans|adults)|nih|niddk|nhlbi|funds?|"
                   r"supports?|national institutes?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Style:
    """How answers are chosen from one kind of page: feature weights, word budgets by question kind (list kinds
    get the answerer's ``words``), the most units, and when a unit is left out."""

    weights: dict[str, float]
    budget: dict[str, int]
    max_units: int = 99
    slack: float = 0.45  # a unit scoring this far below the best is left out even when words remain
    redundant: float = 0.95  # cosine to a taken unit of the same passage (vectors pooled from one pass are close)
    paraphrase: float = 0.85  # ... and to a taken unit of another passage


#: consumer-health pages (MedQuAD-like: lists, question-typed answers): content of the question's kind, not echo
CONSUMER = Style(weights={"relevance": 1.0, "kind": 0.35, "frame": 0.1, "fit": 0.15, "list": 0.2, "rank": 0.1,
                          "echo": 0.5, "aside": 0.3},
                 budget={"definition": 60, "yesno": 60, "outlook": 110, "other": 110})
#: research abstracts: their sentences restate findings in the question's terms, and an expert's summary is the
#: consensus of the closest ones (BioASQ dev: eval/reports/answers.md), so relevance alone, three units (the
#: extractive answerer's ``sentences`` option)
RESEARCH = Style(weights={"relevance": 1.0}, budget={}, max_units=3, slack=9.0, redundant=0.9, paraphrase=0.9)
NEGATIVE = ("echo", "aside")  # features that count against a unit


def style_of(passages: Sequence[Chunk]) -> Style:
    """The style of the best passage's page: CONSUMER for a consumer-health page, else RESEARCH."""
    best = passages[0].metadata if passages else {}
    return CONSUMER if best.get("source_type") == "consumer_health" or "qtype" in best else RESEARCH


def content_words(text: str) -> set[str]:
    """Lower-case words of three letters or more, stop words left out, a plural's ``s`` dropped."""
    return {w[:-1] if w.endswith("s") and len(w) > 4 else w for w in _WORD.findall(text.lower())
            if len(w) >= 3 and w not in _STOP}


def novelty(text: str, question: str) -> float:
    """The share of a unit's content words that are neither the question's nor generic (0: an echo); a negation
    is news ("High blood pressure usually has no symptoms" answers "What are its symptoms?")."""
    if _NEGATION.search(text) and not _NEGATION.search(question):
        return 1.0
    words = content_words(text)
    if not words:
        return 0.0
    said = content_words(question) | {w[:-1] if w.endswith("s") and len(w) > 4 else w for w in GENERIC}
    return len(words - said) / len(words)


def kind_cue(text: str, kind: str) -> float:
    """How much a unit names what answers of ``kind`` name: distinct cue matches, two or more count 1 (and so does
    an answer that there is none: ``NONE_ANSWERS``)."""
    cue = _CUES.get(kind)
    if cue is None:
        return 0.0
    if kind in _NONE and _NONE[kind].search(text):
        return 1.0
    return min(1.0, len({m.lower() for m in cue.findall(text)}) / 2.0)


def bare(sentence: str) -> str:
    """A sentence without a leading list bullet."""
    return BULLET.sub("", sentence).strip()


@dataclass
class Unit:
    """A sentence or a list (lead-in and items) of one passage, and what scored it."""

    passage: int  # 1-based passage number
    first: int  # the passage sentence it starts at
    sentences: list[str]  # a sentence; or a list's lead-in, then its items
    vector: np.ndarray
    is_list: bool = False
    needs: int | None = None  # the sentence before it that a dangling opening refers to
    context: list[str] = field(default_factory=list)  # that sentence, shown before the unit
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def words(self) -> int:
        """Words as the answer shows them (a list item's ``-`` counted)."""
        return sum(len(s.split()) for s in (*self.context, *self.sentences)) + \
            (len(self.sentences) - 1 if self.is_list else 0)

    @property
    def text(self) -> str:
        return " ".join((*self.context, *self.sentences))


def _is_heading(line: str) -> bool:
    """A short line without closing punctuation whose words are capitalised ("Complications of Pneumonia")."""
    words = line.split()
    if not words or len(words) > 8 or line.rstrip("\"')]").endswith((".", "!", "?", ":")):
        return False
    long_words = [w for w in words if len(w) > 3]
    return bool(long_words) and all(w[0].isupper() for w in long_words)


#: a line ending like this introduces the lines under it ("... include:", "... such as", "including")
LEAD_IN = re.compile(r"(?::|\b(?:include|includes|including|such as|following|are|is|were|as follows))\s*$", re.I)


def lines_of(text: str, count: int) -> list[list[int]]:
    """The passage's sentences (``count`` of them, ``sentence_spans`` order) grouped by the line they are on."""
    spans = sentence_spans(text)
    if len(spans) != count:  # not the passage's own sentences: one a line
        return [[i] for i in range(count)]
    lines: list[list[int]] = []
    for i in range(count):
        if i == 0 or "\n" in text[spans[i - 1][1]:spans[i][0]]:
            lines.append([i])
        else:
            lines[-1].append(i)
    return lines


def units_of(n: int, text: str, sentences: Sequence[str], vectors: np.ndarray, min_words: int = 4) -> list[Unit]:
    """A passage's units: lists (a lead-in and the bullet lines, or short lines after a ``:``, under it) and
    sentences long enough to say something; headings are left out."""
    lines = lines_of(text, len(sentences))
    units: list[Unit] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        items = _items(lines, i, sentences)
        if items:
            lead = line[-1]
            units += _sentence_units(n, line[:-1], sentences, vectors, min_words)
            rows = [lead, *(r for item in items for r in item)]
            v = vectors[rows].mean(axis=0)
            body = [bare(sentences[lead]),
                    *dict.fromkeys(" ".join(bare(sentences[r]) for r in item) for item in items)]  # chunks overlap
            units.append(Unit(n, lead, body, v / max(float(np.linalg.norm(v)), 1e-9), is_list=True,
                              needs=(lead - 1 if lead > 0 else -1) if DANGLING.match(bare(sentences[lead])) else None))
            i += 1 + len(items)
            continue
        units += _sentence_units(n, line, sentences, vectors, min_words)
        i += 1
    return units


def _items(lines: list[list[int]], i: int, sentences: Sequence[str]) -> list[list[int]]:
    """The item lines under line ``i`` when its last sentence leads in to a list: bullet lines ("- x"), or after a
    ``:``-like ending, short lines of one sentence that are not headings (up to ``MAX_ITEMS``)."""
    lead = bare(sentences[lines[i][-1]])
    items: list[list[int]] = []
    if BULLET.match(sentences[lines[i][0]]) and not lead.endswith(":"):
        return items  # an item of a list, not the lead-in of the next
    plain = bool(LEAD_IN.search(lead))
    for line in lines[i + 1:]:
        first = sentences[line[0]]
        if BULLET.match(first):
            if len(" ".join(sentences[r] for r in line).split()) > 60:
                break
        elif not plain or len(line) > 1 or len(first.split()) > 25 or _is_heading(first) or first.endswith(":") or \
                (items and _closed(first) != _closed(sentences[items[0][-1]])):
            break
        items.append(line)
        if len(items) == MAX_ITEMS:
            break
    return items


def _closed(sentence: str) -> bool:
    return bare(sentence).rstrip("\"')]").endswith((".", "!", "?"))


def _sentence_units(n: int, rows: Sequence[int], sentences: Sequence[str], vectors: np.ndarray,
                    min_words: int) -> list[Unit]:
    """Units of single sentences that say something (headings and fragments left out)."""
    units = []
    for i in rows:
        s = bare(sentences[i])
        words = len(s.split())
        if words >= min_words and (_closed(s) or words >= 8) and not _is_heading(s) and not LEAD_IN.search(s):
            units.append(Unit(n, i, [s], vectors[i], needs=(i - 1 if i > 0 else -1) if DANGLING.match(s) else None))
    return units


def _fit(kind: str, passage: Chunk) -> float:
    """1 when the passage answers a question of this kind (its source's question type or its title's), 0.5 when
    it is a general page on the topic, else 0."""
    qtype = passage.metadata.get("qtype")
    own = QTYPE_KIND.get(str(qtype).lower()) if qtype else passage_kind(passage.title or "")
    if own is None:
        return 0.0
    return 1.0 if own == kind else 0.5 if own == "definition" and kind != "definition" else 0.0


def budget_of(kind: str, words: int, style: Style = CONSUMER) -> int:
    """The most words an answer of ``kind`` quotes (``words``: the list-kind budget, the answerer's)."""
    return words if kind in LIST_KINDS else min(words, style.budget.get(kind, words))


def choose(question: str, kind: str, passages: Sequence[Chunk], sentences: Sequence[tuple[list[str], np.ndarray]],
           query: np.ndarray, words: int = 150, style: Style | None = None) -> list[Unit]:
    """The units that answer, grouped by passage (best passage first) in document order.

    ``sentences``: each passage's sentences and their unit vectors; ``query``: the question's unit vector;
    ``style``: how to choose (default: by the passages, ``style_of``).
    """
    style = style or style_of(passages)
    w = style.weights
    units: list[Unit] = []
    seen: set[str] = set()
    for n, (passage, (texts, vectors)) in enumerate(zip(passages, sentences), start=1):
        fit = _fit(kind, passage)
        for unit in units_of(n, passage.text, texts, vectors):
            key = unit.text.lower()
            if key in seen or UNSEEN.search(unit.text):
                continue
            seen.add(key)
            unit.parts = {"relevance": float(unit.vector @ query), "kind": kind_cue(unit.text, kind), "fit": fit,
                          "frame": float(bool(_FRAMES[kind].search(unit.sentences[0]))) if kind in _FRAMES else 0.0,
                          "list": float(unit.is_list and kind in LIST_KINDS), "rank": 1.0 / n,
                          "echo": float(novelty(unit.text, question) < 0.25),
                          "aside": float(bool(ASIDE.search(unit.text)))}
            if unit.needs is not None:  # a dangling opening: read with the sentence before it, when there is one
                prev = texts[unit.needs] if unit.needs >= 0 else ""
                if not prev or DANGLING.match(bare(prev)) or UNSEEN.search(prev) or prev.rstrip().endswith(":"):
                    continue
                unit.context = [bare(prev)]
                unit.first -= 1
            units.append(unit)
    if not units:
        return []
    for unit in units:
        unit.score = sum(w.get(name, 0.0) * value * (-1 if name in NEGATIVE else 1)
                         for name, value in unit.parts.items())
    budget = budget_of(kind, words, style)
    ranked = sorted(units, key=lambda u: -u.score)
    best = ranked[0].score
    picked: list[Unit] = []
    used = 0
    for unit in ranked:
        if picked and unit.score < best - style.slack or len(picked) == style.max_units:
            break
        if any(float(unit.vector @ p.vector) > (style.redundant if p.passage == unit.passage else style.paraphrase)
               or _overlap(unit, p) for p in picked):
            continue
        room = budget - used
        if unit.words > room:
            if not unit.is_list or room < 15:
                continue
            unit = _trim(unit, room)
        picked.append(unit)
        used += unit.words
        if used >= budget - 5:
            break
    order = {u.passage: i for i, u in reversed(list(enumerate(sorted(picked, key=lambda u: -u.score))))}
    return sorted(picked, key=lambda u: (order[u.passage], u.first))


def _overlap(a: Unit, b: Unit) -> bool:
    """Whether unit ``a`` says little that ``b`` does not: a shared sentence, or 80 % of ``a``'s content words."""
    if {*a.context, *a.sentences} & {*b.context, *b.sentences}:
        return True
    wa, wb = content_words(a.text), content_words(b.text)
    return bool(wa) and len(wa & wb) / len(wa) > 0.8


def _trim(unit: Unit, room: int) -> Unit:
    """A list cut to the items that fit in ``room`` words (its lead-in kept)."""
    kept = [unit.sentences[0]]
    used = len(unit.sentences[0].split())
    for item in unit.sentences[1:]:
        if used + len(item.split()) + 1 > room:
            break
        kept.append(item)
        used += len(item.split()) + 1
    return Unit(unit.passage, unit.first, kept, unit.vector, True, unit.needs, unit.context, unit.score, unit.parts)


def lay_out(units: Sequence[Unit]) -> str:
    """The chosen units as answer text: one sentence a line, a list as its lead-in and ``- item`` lines, each
    line followed by `` [n]`` of its passage."""
    lines: list[str] = []
    for unit in units:
        lines += [f"{s} [{unit.passage}]" for s in unit.context]
        if unit.is_list:
            lines.append(f"{unit.sentences[0]} [{unit.passage}]")
            lines += [f"- {item} [{unit.passage}]" for item in unit.sentences[1:]]
        else:
            lines += [f"{s} [{unit.passage}]" for s in unit.sentences]
    return "\n".join(lines)


__all__ = ["CONSUMER", "DANGLING", "FRAMES", "GENERIC", "KIND_CUES", "RESEARCH", "UNSEEN", "Style", "Unit", "bare",
           "budget_of", "choose", "content_words", "kind_cue", "lay_out", "novelty", "style_of", "units_of"]
