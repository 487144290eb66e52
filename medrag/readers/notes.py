"""Clinical notes: MIMIC-III ``NOTEEVENTS.csv``, MIMIC-IV-Note ``discharge.csv`` / ``radiology.csv``, a
CSV or JSON Lines export with a text column named by the recipe, and plain-text notes.

Every note is de-identified (``medrag.deid``) before any Document leaves the reader, so nothing
downstream (chunker, embedder, stores, logs) ever sees its PHI; only ``already_deidentified=True`` in
``NoteOptions`` (``--notes-already-deidentified``) skips that, and each Document records which was done
in ``metadata["deidentified"]``.

One Document per section (``split_sections``): id ``note:{pseudonym}#{section-slug}``, the section's
text with its header, and metadata ``source_type=clinical_note``, ``category`` (MIMIC-III CATEGORY /
MIMIC-IV note type / the recipe's category column), ``description``, ``section``, ``encounter`` and
``patient`` (keyed pseudonyms of HADM_ID / SUBJECT_ID: never the raw ids, which link back to the
source) and ``year`` (the chart year, which Safe Harbor allows). The note's own id is a pseudonym too
(MIMIC-IV note ids contain the subject id). CSV files are streamed row by row (gzip or not), so a
notes file of gigabytes is never held in memory; rows with MIMIC-III ``ISERROR=1`` are skipped.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from medrag.deid import KEY_ENV, Deidentifier
from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.notes import split_sections
from medrag.readers._util import compact, json_lines, open_bytes, parse_errors, read_text

log = logging.getLogger(__name__)

__all__ = ["NoteOptions", "looks_like_note", "mimic3_header", "mimic4_header", "notes_jsonl_keys", "read_csv",
           "read_jsonl", "read_mimic3", "read_mimic4", "read_text_note"]

SOURCE_TYPE = "clinical_note"
MIMIC3_COLUMNS = frozenset({"row_id", "subject_id", "hadm_id", "category", "text"})
MIMIC4_COLUMNS = frozenset({"note_id", "subject_id", "note_type", "text"})
_YEAR = re.compile(r"\b(1[89]\d\d|2[0-2]\d\d)\b")


@dataclass(frozen=True)
class NoteOptions:
    """How to read a notes source (from a recipe's ``[[source]]`` table and the ingest settings).

    ``text_column``: the note text's column or JSON field (generic CSV/JSONL; MIMIC files know theirs);
    ``id_column``, ``patient_column``, ``encounter_column``, ``category_column``, ``date_column``: optional
    columns for the note id, patient, encounter, category and chart date. ``already_deidentified``: the
    notes carry no PHI (skip de-identification). ``shift_dates``: shift dates per patient instead of
    tagging them. ``deid_engine``: ``combined``, ``rules`` or ``philter``. ``deid_key``: the secret for
    pseudonyms and date shifts (default ``$MEDRAG_DEID_KEY``, else random for the process).
    """

    text_column: str = "text"
    id_column: str | None = None
    patient_column: str | None = None
    encounter_column: str | None = None
    category_column: str | None = None
    date_column: str | None = None
    already_deidentified: bool = False
    shift_dates: bool = False
    deid_engine: str = "combined"
    deid_key: bytes | None = field(default=None, repr=False)

    @classmethod
    def coerce(cls, options: NoteOptions | Mapping[str, Any] | None) -> NoteOptions:
        """``options`` as NoteOptions (a mapping from a recipe is checked by ``from_mapping``)."""
        return options if isinstance(options, NoteOptions) else cls.from_mapping(options)

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> NoteOptions:
        """Options from a recipe table or settings; an unknown key is a MedRAGError."""
        options = dict(options or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise MedRAGError(f"unknown notes option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**options)


_DEIDENTIFIERS: dict[tuple[str, bool, bytes | str | None], Deidentifier] = {}


def _deidentifier(opts: NoteOptions) -> Deidentifier:
    """One Deidentifier per (engine, shift_dates, key) for the process, so pseudonyms and date offsets agree
    across files and reads."""
    secret = opts.deid_key or os.environ.get(KEY_ENV)
    key = (opts.deid_engine, opts.shift_dates, hashlib.sha256(secret.encode() if isinstance(secret, str) else secret)
           .digest() if secret else None)
    if key not in _DEIDENTIFIERS:
        _DEIDENTIFIERS[key] = Deidentifier(opts.deid_engine, shift_dates=opts.shift_dates, key=secret)
    return _DEIDENTIFIERS[key]


def note_documents(text: str, *, note_key: str, patient: str | None, encounter: str | None, category: str,
                   description: str = "", chart_date: str = "", source: str, opts: NoteOptions) -> list[Document]:
    """The de-identified section Documents of one note (``note_key``, ``patient``, ``encounter``: raw ids, used
    only through keyed pseudonyms)."""
    deid = _deidentifier(opts)
    if opts.already_deidentified:
        clean, done = text, "source"
    else:
        result = deid.deidentify(text, patient_key=patient)
        clean, done = result.text, f"medrag:{deid.engine}"
    year = _chart_year(chart_date, deid, patient, opts)
    note_id = deid.pseudonym(note_key, "note")
    title = f"{category}: {description}" if description and description.lower() != "report" else category
    meta = compact({"source_type": SOURCE_TYPE, "source": source, "category": category,
                    "description": description or None, "year": year,
                    "patient": deid.pseudonym(patient, "patient") if patient else None,
                    "encounter": deid.pseudonym(f"{patient}/{encounter}", "encounter") if encounter else None,
                    "note": note_id, "deidentified": done})
    docs, slugs = [], set()
    for section in split_sections(clean):
        slug = section.slug
        n = 2
        while slug in slugs:
            slug, n = f"{section.slug}-{n}", n + 1
        slugs.add(slug)
        section_title = section.title or "header"
        docs.append(Document(id=f"note:{note_id}#{slug}", text=section.text, title=f"{title} - {section_title}",
                             metadata={**meta, "title": f"{title} - {section_title}", "section": section_title}))
    return docs


def _chart_year(chart_date: str, deid: Deidentifier, patient: str | None, opts: NoteOptions) -> int | None:
    """The chart year (Safe Harbor keeps years); with shifted dates, the year of the shifted date."""
    m = _YEAR.search(chart_date or "")
    if not m:
        return None
    if opts.shift_dates and patient and not opts.already_deidentified:
        shifted = deid.deidentify(chart_date.strip()[:10], patient_key=patient).text
        m = _YEAR.search(shifted) or m
    return int(m.group(1))


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row with lower-cased column names) streamed from a (gzipped) CSV file."""
    csv.field_size_limit(sys.maxsize)  # a MIMIC note can exceed csv's 128 KB default
    with io.TextIOWrapper(open_bytes(path), encoding="utf-8-sig", errors="strict", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise MedRAGError(f"{path}: empty CSV file") from None
        try:
            for row in reader:
                if row:
                    yield reader.line_num, dict(zip(header, row))
        except csv.Error as e:
            raise MedRAGError(f"{path}: malformed CSV at line {reader.line_num}: {e}") from e


def _header(path: Path) -> set[str]:
    with io.TextIOWrapper(open_bytes(path), encoding="utf-8-sig", errors="strict", newline="") as fh:
        return {h.strip().lower() for h in next(csv.reader(fh), [])}


def _require(path: Path, columns: set[str], needed: frozenset[str] | set[str], layout: str) -> None:
    missing = sorted(needed - columns)
    if missing:
        raise MedRAGError(f"{path}: not a {layout} file: no column(s) {', '.join(missing)}")


def read_mimic3(path: Path, options: NoteOptions | Mapping[str, Any] | None = None) -> Iterator[Document | Deletion]:
    """MIMIC-III NOTEEVENTS: one note a row; ISERROR=1 rows skipped."""
    opts, path = NoteOptions.coerce(options), Path(path)
    skipped = 0
    with parse_errors(path):
        _require(path, _header(path), MIMIC3_COLUMNS, "MIMIC-III NOTEEVENTS")
        for _, row in _csv_rows(path):
            if row.get("iserror", "").strip() == "1":
                skipped += 1
                continue
            if not row["text"].strip():
                continue
            yield from note_documents(
                row["text"], note_key=f"mimic3:{row['row_id']}", patient=row["subject_id"] or None,
                encounter=row["hadm_id"] or None, category=row["category"].strip() or "note",
                description=row.get("description", "").strip(), chart_date=row.get("chartdate", ""),
                source="MIMIC-III NOTEEVENTS", opts=opts)
    if skipped:
        log.info("%s: skipped %d notes marked ISERROR", path.name, skipped)


_MIMIC4_TYPES = {"DS": "Discharge summary", "AD": "Discharge summary addendum", "RR": "Radiology",
                 "AR": "Radiology addendum"}


def read_mimic4(path: Path, options: NoteOptions | Mapping[str, Any] | None = None) -> Iterator[Document | Deletion]:
    """MIMIC-IV-Note discharge.csv / radiology.csv (and their detail-free variants): one note a row."""
    opts, path = NoteOptions.coerce(options), Path(path)
    with parse_errors(path):
        _require(path, _header(path), MIMIC4_COLUMNS, "MIMIC-IV-Note")
        for _, row in _csv_rows(path):
            if not row["text"].strip():
                continue
            note_type = row["note_type"].strip()
            yield from note_documents(
                row["text"], note_key=f"mimic4:{row['note_id']}", patient=row["subject_id"] or None,
                encounter=row.get("hadm_id") or None, category=_MIMIC4_TYPES.get(note_type, note_type or "note"),
                chart_date=row.get("charttime", ""), source="MIMIC-IV-Note", opts=opts)


def _generic(path: Path, line: int, record: Mapping[str, Any], opts: NoteOptions) -> list[Document]:
    def col(name: str | None) -> str:
        return str(record.get(name.lower()) or "").strip() if name else ""

    text = record.get(opts.text_column.lower())
    if not isinstance(text, str):
        raise MedRAGError(f"{path}: line {line} has no {opts.text_column!r} text")
    if not text.strip():
        return []
    note_key = col(opts.id_column) or f"{path.resolve()}:{line}"
    return note_documents(text, note_key=f"notes:{note_key}", patient=col(opts.patient_column) or None,
                          encounter=col(opts.encounter_column) or None,
                          category=col(opts.category_column) or "note", chart_date=col(opts.date_column),
                          source="notes", opts=opts)


def read_csv(path: Path, options: NoteOptions | Mapping[str, Any] | None = None) -> Iterator[Document | Deletion]:
    """A CSV export of notes: the text in ``options.text_column``; the other named columns optional."""
    opts, path = NoteOptions.coerce(options), Path(path)
    with parse_errors(path):
        columns = _header(path)
        named = {c.lower() for c in (opts.text_column, opts.id_column, opts.patient_column, opts.encounter_column,
                                     opts.category_column, opts.date_column) if c}
        _require(path, columns, named, f"notes CSV (columns: {', '.join(sorted(columns))})")
        for line, row in _csv_rows(path):
            yield from _generic(path, line, row, opts)


def read_jsonl(path: Path, options: NoteOptions | Mapping[str, Any] | None = None) -> Iterator[Document | Deletion]:
    """JSON Lines notes: one object a line, the text in ``options.text_column``."""
    opts, path = NoteOptions.coerce(options), Path(path)
    with parse_errors(path):
        for line, record in json_lines(path):
            yield from _generic(path, line, {str(k).lower(): v for k, v in record.items()}, opts)


def read_text_note(path: Path, options: NoteOptions | Mapping[str, Any] | None = None) -> Iterator[Document | Deletion]:
    """A plain-text note: the whole file is one note (its path, hashed, is its id)."""
    opts, path = NoteOptions.coerce(options), Path(path)
    with parse_errors(path):
        text = read_text(path)
    if not text.strip():
        raise MedRAGError(f"{path}: no text (only whitespace)")
    yield from note_documents(text, note_key=f"file:{path.resolve()}", patient=None, encounter=None,
                              category="note", source="notes", opts=opts)


# -- sniffing (used by the readers registry) ------------------------------------------------------------
def _first_row(head: str) -> set[str]:
    try:
        return {h.strip().lower() for h in next(csv.reader(io.StringIO(head.lstrip("\ufeff").split("\n", 1)[0])))}
    except (StopIteration, csv.Error):
        return set()


def mimic3_header(head: str) -> bool:
    """The file's first line is a MIMIC-III NOTEEVENTS header."""
    return MIMIC3_COLUMNS <= _first_row(head)


def mimic4_header(head: str) -> bool:
    """The file's first line is a MIMIC-IV-Note header."""
    return MIMIC4_COLUMNS <= _first_row(head)


def notes_jsonl_keys(keys: set[str]) -> bool:
    """JSON Lines keys of clinical notes: a text with a subject or note id or note type."""
    return "text" in keys and bool({"subject_id", "note_id", "note_type", "hadm_id"} & keys)


_NOTE_HEADERS = re.compile(
    r"^[ \t]*(?:Chief Complaint|History of Present Illness|HPI|Past Medical History|Discharge Diagnos[ie]s|"
    r"Discharge Medications|Medications on Admission|Brief Hospital Course|Assessment and Plan|Assessment/Plan|"
    r"Physical Exam(?:ination)?|Review of Systems|Social History|Family History|IMPRESSION|FINDINGS|INDICATION|"
    r"TECHNIQUE|COMPARISON|Allergies|ED Course|PMH)[ \t]*:", re.IGNORECASE | re.MULTILINE)


def looks_like_note(head: str) -> bool:
    """Text that reads as a clinical note: at least three distinct clinical section headers at line starts."""
    return len({m.group(0).strip(" :\t").lower() for m in _NOTE_HEADERS.finditer(head)}) >= 3
