"""Evaluate red-flag (emergency) detection on a labelled TSV of user questions.

The TSV has a header ``label<TAB>lang<TAB>category<TAB>text``; ``label`` is ``emergency`` or ``ordinary``.
The default file, ``tests/data/red_flags_independent.tsv``, was written apart from the detection rules
(its author never read them), so it measures how the rules carry over to new phrasings. Each row's text
goes through ``medrag.safety.detect_emergency``; a truthy result counts as "emergency". Printed: recall on
emergency rows, false-alarm rate on ordinary rows, both per language and per category, then every miss
and false alarm. ``--json OUT`` writes the figures with flat keys (``recall``, ``false_alarm_rate``,
``recall_lang_zh``, ``false_alarm_rate_category_chest``, ``n_emergency_lang_en``, ...).

    .venv/bin/python eval/eval_red_flags.py [TSV] [--json OUT]
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from medrag.errors import MedRAGError
from medrag.safety import detect_emergency

log = logging.getLogger("eval_red_flags")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TSV = ROOT / "tests" / "data" / "red_flags_independent.tsv"
HEADER = ["label", "lang", "category", "text"]
LABELS = ("emergency", "ordinary")


@dataclass(frozen=True)
class Row:
    """One labelled question and whether the detector flagged it."""

    line: int
    label: str
    lang: str
    category: str
    text: str
    flagged: bool = False


def read_rows(path: Path) -> list[Row]:
    """The TSV's rows; a malformed file raises ``MedRAGError`` naming the line."""
    if not path.is_file():
        raise MedRAGError(f"no such TSV file: {path}")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header != HEADER:
            raise MedRAGError(f"{path}: header must be {'<TAB>'.join(HEADER)!r}, got {header!r}")
        rows = []
        for fields in reader:
            line = reader.line_num
            if not any(field.strip() for field in fields):
                continue
            if len(fields) != len(HEADER):
                raise MedRAGError(f"{path}:{line}: expected {len(HEADER)} tab-separated fields, got {len(fields)}")
            label, lang, category, text = (field.strip() for field in fields)
            if label not in LABELS:
                raise MedRAGError(f"{path}:{line}: label must be one of {LABELS}, got {label!r}")
            if not text:
                raise MedRAGError(f"{path}:{line}: empty text")
            rows.append(Row(line, label, lang, category, text))
    if not rows:
        raise MedRAGError(f"{path}: no rows")
    return rows


def rate(hits: int, total: int) -> float | None:
    """``hits / total``, or None when there is nothing to divide by."""
    return hits / total if total else None


def figures(rows: list[Row]) -> dict[str, float | int | None]:
    """Recall and false-alarm rate overall, per language and per category, with their counts (flat keys)."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[""].append(row)
        groups[f"_lang_{row.lang}"].append(row)
        groups[f"_category_{row.category}"].append(row)
    out: dict[str, float | int | None] = {}
    for suffix in sorted(groups, key=lambda s: (s.count("_category_"), s)):
        members = groups[suffix]
        emergencies = [r for r in members if r.label == "emergency"]
        ordinary = [r for r in members if r.label == "ordinary"]
        caught = sum(r.flagged for r in emergencies)
        false_alarms = sum(r.flagged for r in ordinary)
        out[f"n_emergency{suffix}"] = len(emergencies)
        out[f"n_ordinary{suffix}"] = len(ordinary)
        out[f"detected{suffix}"] = caught
        out[f"false_alarms{suffix}"] = false_alarms
        out[f"recall{suffix}"] = rate(caught, len(emergencies))
        out[f"false_alarm_rate{suffix}"] = rate(false_alarms, len(ordinary))
    return out


def fmt(value: float | int | None) -> str:
    """A rate as a percentage, '-' when undefined."""
    return "-" if value is None else f"{100 * value:5.1f}%"


def report(rows: list[Row], figs: dict[str, float | int | None], path: Path) -> str:
    """A plain-text report: summary table, then misses and false alarms."""
    lines = [f"red-flag detection on {path} ({len(rows)} rows)", ""]
    lines.append(f"{'group':<22} {'emerg':>5} {'recall':>7} {'ordin':>5} {'false alarm':>11}")
    for key in [k for k in figs if k.startswith("recall")]:
        suffix = key[len("recall"):]
        name = suffix.lstrip("_").replace("_", " ", 1) or "all"
        lines.append(
            f"{name:<22} {figs['n_emergency' + suffix]:>5} {fmt(figs['recall' + suffix]):>7} "
            f"{figs['n_ordinary' + suffix]:>5} {fmt(figs['false_alarm_rate' + suffix]):>11}"
        )
    misses = [r for r in rows if r.label == "emergency" and not r.flagged]
    alarms = [r for r in rows if r.label == "ordinary" and r.flagged]
    for title, chosen in (("misses (emergency not flagged)", misses), ("false alarms (ordinary flagged)", alarms)):
        lines += ["", f"{title}: {len(chosen)}"]
        lines += [f"  line {r.line:>3} [{r.lang} {r.category}] {r.text}" for r in chosen]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the detector on every row and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tsv", nargs="?", type=Path, default=DEFAULT_TSV, help="labelled TSV (default: %(default)s)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        rows = read_rows(args.tsv)
    except MedRAGError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = [Row(r.line, r.label, r.lang, r.category, r.text, bool(detect_emergency(r.text))) for r in rows]
    figs = figures(rows)
    print(report(rows, figs, args.tsv))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figs, indent=2) + "\n", encoding="utf-8")
        log.warning("figures written to %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
