"""Question kinds (``medrag.answering.kinds``) against MedQuAD's question types.

Every ``<Question qtype=...>`` of the MedQuAD XML collections (answer or not) is read; its gold kind is
``qtype_kind(qtype)`` and its predicted kind ``question_kind(question)``. Figures: accuracy, per-kind
precision/recall, the most frequent confusions, separately for the development collections the rules
were tuned on (1_CancerGov, 2_GARD, 3_GHR, 6_NINDS, 7_SeniorHealth) and the held-out quick-start
collections (4_MPlus, 5_NIDDK, 8_NHLBI, 9_CDC), per collection too. MedQuAD questions are templated
("What are the symptoms of X ?"): these figures measure the templates, not consumer phrasings (those are
in tests/test_kinds.py). With ``--chinese`` (default ``eval/data/chinese_dev.jsonl``) it also reports how
often the Chinese question's kind agrees with its English translation's.

    .venv/bin/python eval/eval_kinds.py [--medquad DIR] [--json OUT] [--errors N]

The last line printed is ``kind accuracy: X`` on the held-out collections.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from medrag.answering.kinds import KINDS, question_kind, qtype_kind
from medrag.readers._util import XML_SAFE

log = logging.getLogger("eval_kinds")
ROOT = Path(__file__).resolve().parents[1]
MEDQUAD = ROOT.parent / "shared" / "data" / "corpora" / "guidelines" / "medquad"
CHINESE = ROOT / "eval" / "data" / "chinese_dev.jsonl"
DEV = ("1_CancerGov_QA", "2_GARD_QA", "3_GHR_QA", "6_NINDS_QA", "7_SeniorHealth_QA")
HELD_OUT = ("4_MPlus_Health_Topics_QA", "5_NIDDK_QA", "8_NHLBI_QA_XML", "9_CDC_QA")


@dataclass
class Tally:
    """Gold/predicted pairs of one split, with the questions of the confusions."""

    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    qtypes: Counter[tuple[str, bool]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)

    def add(self, qtype: str, gold: str, pred: str, question: str) -> None:
        self.pairs[gold, pred] += 1
        self.qtypes[qtype.lower(), gold == pred] += 1
        if gold != pred:
            self.examples.setdefault((gold, pred), Counter())[question] += 1

    @property
    def n(self) -> int:
        return sum(self.pairs.values())

    @property
    def accuracy(self) -> float:
        return sum(c for (g, p), c in self.pairs.items() if g == p) / max(self.n, 1)

    def per_kind(self) -> dict[str, tuple[int, float | None, float | None]]:
        """kind -> (gold count, precision, recall), for the kinds present as gold or predicted."""
        out = {}
        for kind in KINDS:
            tp = self.pairs[kind, kind]
            gold = sum(c for (g, _), c in self.pairs.items() if g == kind)
            pred = sum(c for (_, p), c in self.pairs.items() if p == kind)
            if gold or pred:
                out[kind] = (gold, tp / pred if pred else None, tp / gold if gold else None)
        return out


def questions(directory: Path) -> list[tuple[str, str]]:
    """(question, qtype) for every question of one MedQuAD collection (tags matched case-insensitively)."""
    out = []
    for path in sorted(directory.glob("*.xml")):
        root = etree.parse(str(path), etree.XMLParser(**XML_SAFE)).getroot()
        for elem in root.iter(etree.Element):
            if elem.tag.lower() == "question":
                text = " ".join("".join(elem.itertext()).split())
                if text:
                    out.append((text, elem.get("qtype") or ""))
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def report(name: str, tally: Tally, errors: int) -> list[str]:
    """Markdown lines: accuracy, the per-kind table and the top confusions of one split."""
    lines = [f"### {name}: accuracy {_pct(tally.accuracy)}% of {tally.n} questions", "",
             "| kind | gold n | precision % | recall % |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {n} | {_pct(p)} | {_pct(r)} |" for k, (n, p, r) in tally.per_kind().items()]
    qtypes = sorted({q for q, _ in tally.qtypes}, key=lambda q: -tally.qtypes[q, True] - tally.qtypes[q, False])
    lines += ["", "| qtype (gold kind) | n | accuracy % |", "|---|---:|---:|"]
    for q in qtypes:
        right, n = tally.qtypes[q, True], tally.qtypes[q, True] + tally.qtypes[q, False]
        lines.append(f"| {q} ({qtype_kind(q)}) | {n} | {_pct(right / n)} |")
    confusions = sorted(((c, g, p) for (g, p), c in tally.pairs.items() if g != p), reverse=True)[:errors]
    if confusions:
        lines += ["", "Most frequent confusions (gold -> predicted, count, commonest question):", ""]
        for c, g, p in confusions:
            q, _ = tally.examples[g, p].most_common(1)[0]
            lines.append(f"- {g} -> {p}: {c} (\"{q}\")")
    return lines + [""]


def chinese_agreement(path: Path) -> tuple[int, int, list[str]]:
    """(agreeing, total, disagreements) of the Chinese kind (with its translation given) vs the English kind."""
    agree, total, misses = 0, 0, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if not row.get("english"):
            continue
        zh, en = question_kind(row["question"], row["english"]), question_kind(row["english"])
        total += 1
        agree += zh == en
        if zh != en:
            misses.append(f"{row['question']} -> {zh}; \"{row['english']}\" -> {en}")
    return agree, total, misses


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--medquad", type=Path, default=MEDQUAD)
    ap.add_argument("--chinese", type=Path, default=CHINESE)
    ap.add_argument("--json", type=Path, help="write the figures (flat keys) here")
    ap.add_argument("--errors", type=int, default=8, help="confusions shown per split")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    splits = {"dev": DEV, "held-out": HELD_OUT}
    tallies: dict[str, Tally] = {}
    for split, names in splits.items():
        tallies[split] = Tally()
        for name in names:
            tally = tallies[name] = Tally()
            for question, qtype in questions(args.medquad / name):
                gold, pred = qtype_kind(qtype), question_kind(question)
                tally.add(qtype, gold, pred, question)
                tallies[split].add(qtype, gold, pred, question)

    out = []
    for split, names in splits.items():
        out += report(f"{split} ({', '.join(n.split('_')[1] for n in names)})", tallies[split], args.errors)
        out += ["| collection | n | accuracy % |", "|---|---:|---:|"]
        out += [f"| {n} | {tallies[n].n} | {_pct(tallies[n].accuracy)} |" for n in names] + [""]
    metrics: dict[str, float | int] = {}
    for name, tally in tallies.items():
        metrics[f"accuracy_{name}"], metrics[f"n_{name}"] = round(tally.accuracy, 4), tally.n
    if args.chinese.exists():
        agree, total, misses = chinese_agreement(args.chinese)
        metrics["zh_agreement"], metrics["n_zh"] = round(agree / max(total, 1), 4), total
        out += [f"### Chinese ({args.chinese.name}): kind agrees with the English translation's in "
                f"{agree}/{total} ({_pct(agree / max(total, 1))}%)", ""] + [f"- {m}" for m in misses] + [""]
    print("\n".join(out))
    if args.json:
        args.json.write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    print(f"kind accuracy: {tallies['held-out'].accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
