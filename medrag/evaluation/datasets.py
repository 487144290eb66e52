"""Evaluation sets in their publishers' formats, read into one ``Question`` record each."""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

TYPES = ("yesno", "factoid", "list", "summary", "mc", "free")
YES_NO_MAYBE = {"yes": "yes", "no": "no", "maybe": "maybe"}
_PMID_URL = re.compile(r"(\d+)\D*$")


@dataclass
class Question:
    """One question with whatever gold its set provides.

    ``options`` maps option keys to texts (``{"A": "Meningioma"}``, ``{"yes": "yes"}``) and
    ``answer`` is then the gold key; for free-text sets ``answer`` is the first reference and
    ``ideal`` all of them. ``exact`` holds BioASQ exact answers as a list of entities, each a list
    of synonyms (one entity for factoid questions).
    """

    id: str
    question: str
    type: str
    dataset: str
    options: dict[str, str] | None = None
    answer: str | None = None
    ideal: list[str] = field(default_factory=list)
    gold_pmids: list[str] = field(default_factory=list)
    snippets: list[dict[str, Any]] = field(default_factory=list)
    exact: list[list[str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def multiple_choice(self) -> bool:
        return bool(self.options)


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _files(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """``path`` itself, or the files under it (recursively) whose names end in ``suffixes``."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise MedRAGError(f"no such file or folder: {path}")
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
    if not found:
        raise MedRAGError(f"{path} holds no {'/'.join(suffixes)} file")
    return found


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise MedRAGError(f"cannot read {path}: {exc}") from exc


def jsonl_rows(path: Path, required: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line of a JSONL dev set; a line missing a ``required`` key, or
    not JSON, is a one-line error naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise MedRAGError(f"cannot read {path}: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise MedRAGError(f"{path}:{n}: not JSON ({exc})") from None
        missing = set(required) - row.keys()
        if missing:
            raise MedRAGError(f"{path}:{n}: missing {', '.join(sorted(missing))}")
        yield n, row


def _xml(path: Path) -> Any:
    from lxml import etree

    try:
        return etree.parse(str(path)).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise MedRAGError(f"cannot read {path}: {exc}") from exc


def _element_text(element: Any) -> str:
    return _text("".join(element.itertext())) if element is not None else ""


def pmid_of(url: str) -> str:
    """The PMID at the end of a PubMed URL (``http://www.ncbi.nlm.nih.gov/pubmed/123`` -> ``123``)."""
    match = _PMID_URL.search(str(url).strip())
    if not match:
        raise MedRAGError(f"no PMID in document {url!r}")
    return match.group(1)


def load_mirage(path: Path) -> list[Question]:
    """MIRAGE ``{dataset: {id: {question, options, answer}}}``; ids become ``dataset:id``."""
    questions = []
    for file in _files(path, (".json",)):
        for subset, items in _json(file).items():
            for qid, item in items.items():
                pmids = [qid] if subset == "pubmedqa" and qid.isdigit() else []
                questions.append(Question(f"{subset}:{qid}", _text(item["question"]), "mc", subset,
                                          options={k: _text(v) for k, v in item["options"].items()},
                                          answer=item["answer"], gold_pmids=pmids))
    return questions


def load_pubmedqa(path: Path, *, answered: bool = True) -> list[Question]:
    """PubMedQA ``{pmid: {QUESTION, CONTEXTS, final_decision, LONG_ANSWER}}``; the gold evidence is the PMID,
    the abstract's paragraphs are ``extra["contexts"]``; with ``answered``, questions without a decision are left out."""
    from medrag.readers.pubmedqa import records

    questions = []
    for file in _files(path, (".json",)):
        for pmid, item in records(file):
            if "QUESTION" not in item:
                raise MedRAGError(f"{file}: record {pmid} has no QUESTION: not a PubMedQA question file")
            if answered and "final_decision" not in item:
                log.warning("%s: question %s has no final_decision; left out", file, pmid)
                continue
            long_answer = _text(item.get("LONG_ANSWER"))
            questions.append(Question(str(pmid), _text(item["QUESTION"]), "yesno", "pubmedqa",
                                      options=dict(YES_NO_MAYBE), answer=str(item.get("final_decision", "")).lower(),
                                      ideal=[long_answer] if long_answer else [], gold_pmids=[str(pmid)],
                                      extra={"year": item.get("YEAR"),
                                             "contexts": [_text(c) for c in item.get("CONTEXTS") or []]}))
    return questions


def _synonyms(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [_text(v) for v in values if not isinstance(v, list) and _text(v)]


def _exact(qtype: str, value: Any) -> list[list[str]]:
    """BioASQ exact answers as entities of synonyms: factoid ``[[a, b]]`` or ``[a, b]``; list ``[[a], [b, c]]``."""
    if value is None or qtype not in ("factoid", "list"):
        return []
    items = value if isinstance(value, list) else [value]
    if qtype == "factoid":  # every string given is an accepted answer
        flat = [s for item in items for s in (_synonyms(item) if isinstance(item, list) else _synonyms([item]))]
        return [list(dict.fromkeys(flat))] if flat else []
    entities = [_synonyms(item) for item in items]
    return [e for e in entities if e]


def load_bioasq(path: Path) -> list[Question]:
    """BioASQ golden files ``{"questions": [{id, body, type, documents, snippets, ideal_answer, exact_answer}]}``."""
    questions = []
    for file in _files(path, (".json",)):
        data = _json(file)
        if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
            raise MedRAGError(f"{file}: not a BioASQ file (no \"questions\" list)")
        for item in data["questions"]:
            qtype = item.get("type") or item.get("_type")
            ideal = item.get("ideal_answer") or []
            ideal = [_text(x) for x in (ideal if isinstance(ideal, list) else [ideal]) if _text(x)]
            exact = _exact(qtype, item.get("exact_answer"))
            options = answer = None
            if qtype == "yesno":
                options, answer = {"yes": "yes", "no": "no"}, _text(item.get("exact_answer")).lower() or None
            elif exact:
                answer = "; ".join(e[0] for e in exact)
            elif ideal:
                answer = ideal[0]
            snippets = [{"pmid": pmid_of(s["document"]), "text": _text(s.get("text")),
                         "section": s.get("beginSection")} for s in item.get("snippets") or []]
            questions.append(Question(item["id"], _text(item.get("body") or item.get("_body")), qtype, "bioasq",
                                      options=options, answer=answer, ideal=ideal, exact=exact, snippets=snippets,
                                      gold_pmids=list(dict.fromkeys(pmid_of(d) for d in item.get("documents") or [])),
                                      extra={"file": file.name}))
    return questions


def load_liveqa(path: Path) -> list[Question]:
    """TREC 2017 LiveQA medical XML: ``<NLM-QUESTION>`` with SUBJECT, MESSAGE and reference ANSWERs."""
    questions = []
    for file in _files(path, (".xml",)):
        for n, element in enumerate(_xml(file).iter("NLM-QUESTION"), start=1):
            qid = element.get("questionid") or element.get("qid") or str(n)
            subject, message = _element_text(element.find(".//SUBJECT")), _element_text(element.find(".//MESSAGE"))
            text = f"{subject}. {message}" if subject and message and not message.startswith(subject) else (
                message or subject)
            references = [t for t in (_element_text(a) for a in element.iter("ANSWER")) if t]
            extra = {"focus": [_element_text(f) for f in element.iter("FOCUS")],
                     "qtype": [_element_text(t) for t in element.iter("TYPE")],
                     "summary": _element_text(element.find(".//NLM-SUMMARY")) or None}
            questions.append(Question(f"{file.stem}:{qid}", text, "free", "liveqa",
                                      answer=references[0] if references else None, ideal=references, extra=extra))
    return questions


def _ground_truth(folder: Path) -> dict[str, int]:
    """``AID -> 1|0`` from MEDIQA ground-truth files (``QID,AID,Label`` lines) beside the XML."""
    labels: dict[str, int] = {}
    for file in folder.glob("*.txt"):
        for line in file.read_text(errors="replace").splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 3 and parts[2] in ("0", "1"):
                labels.setdefault(parts[1], int(parts[2]))
    return labels


def load_mediqa(path: Path) -> list[Question]:
    """MEDIQA 2019 task 3 XML; references are the answers judged correct (ReferenceScore 3-4, or label 1)."""
    questions = []
    for file in _files(path, (".xml",)):
        truth = _ground_truth(file.parent)
        for element in _xml(file).iter("Question"):
            ranked = []
            for answer in element.iter("Answer"):
                score = (answer.get("ReferenceScore") or "").strip()[:1]
                correct = int(score) >= 3 if score.isdigit() else truth.get(answer.get("AID", "")) == 1
                rank = answer.get("ReferenceRank") or answer.get("SystemRank") or "0"
                if correct:
                    ranked.append((int(rank) if rank.isdigit() else 0, _element_text(answer.find("AnswerText"))))
            references = [t for _, t in sorted(ranked, key=lambda r: r[0]) if t]
            questions.append(Question(f"{file.stem}:{element.get('QID')}",
                                      _element_text(element.find("QuestionText")), "free", "mediqa",
                                      answer=references[0] if references else None, ideal=references,
                                      extra={"candidates": sum(1 for _ in element.iter("Answer"))}))
    return questions


def load_medication_qa(path: Path) -> list[Question]:
    """MedicationQA xlsx (Question, Focus (Drug), Question Type, Answer, Section Title, URL); repeated
    questions are one question with several references."""
    import openpyxl

    grouped: dict[str, Question] = {}
    for file in _files(path, (".xlsx",)):
        try:
            sheet = openpyxl.load_workbook(file, read_only=True).worksheets[0]
        except Exception as exc:  # openpyxl raises many kinds for a bad file
            raise MedRAGError(f"cannot read {file}: {exc}") from exc
        rows = sheet.iter_rows(values_only=True)
        header = [_text(h).lower() for h in next(rows, ())]
        if "question" not in header or "answer" not in header:
            raise MedRAGError(f"{file}: no Question and Answer columns")
        for n, row in enumerate(rows, start=2):
            record = {h: _text(v) for h, v in zip(header, row)}
            text, reference = record["question"], record["answer"]
            if not text:
                continue
            q = grouped.setdefault(text.lower(), Question(f"{file.stem}:{n}", text, "free", "medication_qa",
                                                          extra={"focus": record.get("focus (drug)"),
                                                                 "qtype": record.get("question type"), "urls": []}))
            if reference:
                q.ideal.append(reference)
                q.answer = q.answer or reference
                q.extra["urls"].append(record.get("url"))
    return list(grouped.values())


def load_covid_qa(path: Path) -> list[Question]:
    """COVID-QA in SQuAD format: ``data[].paragraphs[].qas[]`` with answer spans."""
    questions = []
    for file in _files(path, (".json",)):
        for article in _json(file).get("data", []):
            for paragraph in article.get("paragraphs", []):
                for qa in paragraph.get("qas", []):
                    answers = list(dict.fromkeys(_text(a["text"]) for a in qa.get("answers", []) if _text(a["text"])))
                    if answers:
                        questions.append(Question(str(qa["id"]), _text(qa["question"]), "free", "covid_qa",
                                                  answer=answers[0], ideal=answers,
                                                  extra={"document_id": paragraph.get("document_id")}))
    return questions


Loader = Callable[[Path], list[Question]]

#: the sets whose questions name gold PubMed documents, for retrieval evaluation
RETRIEVAL_DATASETS = ("bioasq", "pubmedqa")

#: dataset name -> loader of a file or folder in that set's format
DATASETS: dict[str, Loader] = {"mirage": load_mirage, "pubmedqa": load_pubmedqa, "bioasq": load_bioasq,
                               "liveqa": load_liveqa, "mediqa": load_mediqa, "medication_qa": load_medication_qa,
                               "covid_qa": load_covid_qa}


def load(name: str, path: str | Path) -> list[Question]:
    """The questions of ``path`` read as dataset ``name``; ids are unique (later repeats are dropped)."""
    if name not in DATASETS:
        raise MedRAGError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    try:
        questions = DATASETS[name](Path(path))
    except (KeyError, TypeError, AttributeError) as exc:
        raise MedRAGError(f"{path} is not in the {name} format ({type(exc).__name__}: {exc})") from exc
    unique = _unique(questions)
    if len(unique) < len(questions):
        log.warning("%s: %d repeated question ids dropped", path, len(questions) - len(unique))
    if not unique:
        raise MedRAGError(f"{path} holds no {name} question")
    return unique


def _unique(questions: Iterable[Question]) -> list[Question]:
    seen: dict[str, Question] = {}
    for q in questions:
        seen.setdefault(q.id, q)
    return list(seen.values())
