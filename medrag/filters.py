"""Metadata filters on retrieved chunks: publication years, source types, journals.

``parse_filter("year>=2015,year<=2020,source_type=pubmed|guideline,journal=Lancet")`` builds a ``Filter``;
clauses are ANDed, ``|`` separates alternatives. The pipeline over-fetches candidates and keeps those whose
chunk metadata ``matches``.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

KEYS = ("year", "source_type", "journal")
_CLAUSE = re.compile(r"^\s*([A-Za-z_]+)\s*(>=|<=|==|!=|=|>|<)\s*(.*?)\s*$", re.DOTALL)
# clauses are split at commas followed by "key op", so a journal name may hold commas
_SPLIT = re.compile(r",(?=\s*[A-Za-z_]+\s*(?:>=|<=|==|!=|=|>|<))")
_EXAMPLE = 'e.g. "year>=2015,year<=2020,source_type=pubmed|guideline,journal=Lancet"'


def journal_key(name: str) -> str:
    """A journal title compared loosely: case-folded, spaces collapsed, a leading "The" and a trailing
    parenthesised place dropped (``"Lancet (London, England)"`` and ``"The Lancet"`` both give ``lancet``)."""
    key = " ".join(re.sub(r"\s*\([^()]*\)\s*$", "", str(name)).split()).casefold().rstrip(".")
    return key.removeprefix("the ") if key != "the" else key


def metadata_year(metadata: dict[str, Any]) -> int | None:
    """The publication year of ``metadata`` (an int, or the first 4-digit number of a string), or None."""
    year = metadata.get("year")
    if isinstance(year, int) and not isinstance(year, bool):
        return year
    match = re.search(r"\b(\d{4})\b", str(year)) if year else None
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Filter:
    """Constraints on chunk metadata; an empty field constrains nothing. A chunk lacking a constrained
    field (no year, no journal ...) does not match. Source types match case-insensitively, journals by
    ``journal_key``."""

    year_min: int | None = None
    year_max: int | None = None
    source_types: tuple[str, ...] = ()
    journals: tuple[str, ...] = ()
    _journal_keys: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        if self.year_min is not None and self.year_max is not None and self.year_min > self.year_max:
            raise MedRAGError(f"the filter's years {self.year_min}..{self.year_max} match nothing")
        object.__setattr__(self, "source_types", tuple(s.strip().casefold() for s in self.source_types))
        object.__setattr__(self, "journals", tuple(j.strip() for j in self.journals))
        object.__setattr__(self, "_journal_keys", frozenset(journal_key(j) for j in self.journals))

    @property
    def is_empty(self) -> bool:
        return self.year_min is None and self.year_max is None and not self.source_types and not self.journals

    def matches(self, metadata: dict[str, Any]) -> bool:
        """Whether a chunk (or document) with this metadata passes every constraint."""
        if self.year_min is not None or self.year_max is not None:
            year = metadata_year(metadata)
            if year is None or (self.year_min is not None and year < self.year_min) or (
                    self.year_max is not None and year > self.year_max):
                return False
        if self.source_types and str(metadata.get("source_type") or "").casefold() not in self.source_types:
            return False
        journal = metadata.get("journal")
        return not self.journals or (bool(journal) and journal_key(journal) in self._journal_keys)

    def __str__(self) -> str:
        """The spec ``parse_filter`` reads back into an equal filter."""
        parts = [f"year>={self.year_min}"] if self.year_min is not None else []
        parts += [f"year<={self.year_max}"] if self.year_max is not None else []
        parts += [f"source_type={'|'.join(self.source_types)}"] if self.source_types else []
        parts += [f"journal={'|'.join(self.journals)}"] if self.journals else []
        return ",".join(parts)


def parse_filter(spec: str | None) -> Filter:
    """A ``Filter`` from a CLI string of comma-separated clauses ``year>=Y``, ``year<=Y``, ``year>Y``,
    ``year<Y``, ``year=Y``, ``source_type=A|B``, ``journal=A|B``; an empty spec gives the empty filter."""
    if spec is None or not spec.strip():
        return Filter()
    year_min: int | None = None
    year_max: int | None = None
    sets: dict[str, tuple[str, ...]] = {}
    for clause in _SPLIT.split(spec):
        match = _CLAUSE.match(clause)
        if not match:
            raise MedRAGError(f"bad filter clause {clause.strip()!r} in {spec!r}: write KEY OP VALUE, {_EXAMPLE}")
        key, op, value = match.group(1).lower(), match.group(2), match.group(3)
        if key not in KEYS:
            raise MedRAGError(f"unknown filter key {key!r} in {spec!r}; use {', '.join(KEYS)}")
        if key == "year":
            if not re.fullmatch(r"\d{1,4}", value):
                raise MedRAGError(f"bad year {value!r} in filter {spec!r}: give a number like 2015")
            if op == "!=":
                raise MedRAGError(f"filter {spec!r}: year takes >=, <=, >, < or =, not !=")
            y = int(value)
            low = {">=": y, ">": y + 1, "=": y, "==": y}.get(op)
            high = {"<=": y, "<": y - 1, "=": y, "==": y}.get(op)
            year_min = low if year_min is None or (low is not None and low > year_min) else year_min
            year_max = high if year_max is None or (high is not None and high < year_max) else year_max
            continue
        if op not in ("=", "=="):
            raise MedRAGError(f"filter {spec!r}: {key} takes '=' (alternatives joined by '|'), not {op!r}")
        if key in sets:
            raise MedRAGError(f"filter {spec!r} gives {key} twice; join alternatives with '|'")
        values = tuple(v.strip() for v in value.split("|"))
        if not all(values):
            raise MedRAGError(f"filter {spec!r}: empty {key} value")
        sets[key] = values
    return Filter(year_min, year_max, sets.get("source_type", ()), sets.get("journal", ()))
