"""The safety layer: red flags (EN/ZH), doctor claims, language notice, citation support, abstention."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from medrag import readers
from medrag.embedding import Embedder
from medrag.safety import (
    SUPPORT_THRESHOLD,
    SupportChecker,
    abstain,
    confidence,
    detect_emergency,
    language_notice,
    remove_doctor_claims,
    split_answer,
)
from tests.conftest import MEDLINE

RED_FLAGS = Path(__file__).parent / "data" / "red_flags.tsv"


def _red_flag_rows() -> list[tuple[str, str]]:
    with open(RED_FLAGS, encoding="utf-8", newline="") as fh:
        return [(r["text"], r["expected"]) for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]


def test_red_flag_table_is_big_and_mixed() -> None:
    rows = _red_flag_rows()
    positives = [t for t, kind in rows if kind != "none"]
    chinese = [t for t, _ in rows if any("\u4e00" <= c <= "\u9fff" for c in t)]
    assert len(positives) >= 30 and len(rows) - len(positives) >= 30 and len(chinese) >= 10


@pytest.mark.parametrize(("text", "expected"), _red_flag_rows())
def test_red_flags(text: str, expected: str) -> None:
    found = detect_emergency(text)
    assert (found.kind if found else "none") == expected


def test_emergency_messages() -> None:
    heart = detect_emergency("I have crushing chest pain and I'm sweating")
    assert heart and "911" in heart.message and "112" in heart.message and "120" in heart.message
    suicide = detect_emergency("I want to kill myself")
    assert suicide and "988" in suicide.message
    chinese = detect_emergency("宝宝没有呼吸了")
    assert chinese and "120" in chinese.message and "急救" in chinese.message


def test_doctor_claims_removed_mentions_kept() -> None:
    text, n = remove_doctor_claims("As a doctor, I recommend rest [1]. Ask your doctor about statins [2]. "
                                   "I am a physician. I diagnose you with anemia. I prescribe iron. "
                                   "Your doctor may prescribe iron tablets [3].")
    assert n == 4
    assert text == "Ask your doctor about statins [2]. Your doctor may prescribe iron tablets [3]."
    kept = "I'm not a doctor. Specialists such as a cardiologist can help [1].\nSee a nurse [2]."
    assert remove_doctor_claims(kept) == (kept, 0)
    assert remove_doctor_claims("作为医生，我建议你多休息。高血压需要长期治疗[1]。") == ("高血压需要长期治疗[1]。", 1)


def test_language_notice() -> None:
    chinese = language_notice("高血压有哪些治疗方法？", "all-MiniLM-L6-v2")
    assert chinese and "CJK" in chinese and "multilingual" in chinese
    russian = language_notice("Как лечить гипертонию?", "all-MiniLM-L6-v2")
    assert russian and "Cyrillic" in russian
    assert language_notice("How is hypertension treated?", "all-MiniLM-L6-v2") is None
    assert language_notice("高血压有哪些治疗方法？", "intfloat/multilingual-e5-small") is None


def test_split_answer() -> None:
    answer = "Anemia is common. [1] Iron helps [2, 3]. No marker here. Ranges expand [4-5].\nA line [6]"
    assert split_answer(answer) == [("Anemia is common.", [1]), ("Iron helps.", [2, 3]), ("No marker here.", []),
                                    ("Ranges expand.", [4, 5]), ("A line", [6])]


def test_support_checker(embedder: Embedder) -> None:
    docs = {d.id: d.text for d in readers.read(MEDLINE / "pmparser" / "pubmed26n1334.xml.gz")}
    passages = [docs["pmid:41576697"], docs["pmid:41583336"]]  # glioma fatigue; colonoscopy perforation
    sentences = [("Cancer-related fatigue is a common symptom in patients after glioma surgery.", [1]),
                 ("Chikungunya is a virus spread by the same mosquitoes that spread dengue.", [1]),
                 ("Perforation of the colon after a diagnostic colonoscopy is rare.", []),
                 ("Bananas are yellow.", [])]
    supported, unrelated, uncited, nothing = SupportChecker(embedder, SUPPORT_THRESHOLD).check(sentences, passages)
    assert supported.supported and supported.support >= SUPPORT_THRESHOLD and supported.citations == [1]
    assert not unrelated.supported and unrelated.support < SUPPORT_THRESHOLD
    assert uncited.supported and uncited.added == [2] and uncited.citations == [2]
    assert not nothing.supported and nothing.citations == [] and nothing.added == []


def test_abstain() -> None:
    assert abstain([], 0.4) and abstain([0.3, 0.2], 0.4)
    assert not abstain([0.55, 0.3], 0.4)
    peaked, flat = [0.62, 0.45, 0.44, 0.43, 0.40], [0.62, 0.61, 0.61, 0.60, 0.60]  # same top-1 cosine
    assert not abstain(peaked, 0.66, margin_weight=0.5) and abstain(flat, 0.66, margin_weight=0.5)
    # a question whose rare words the passages lack loses up to coverage_weight; no coverage known: no penalty
    assert confidence([0.6, 0.5], coverage=0.25, coverage_weight=0.2) == pytest.approx(0.6 - 0.2 * 0.75)
    assert confidence([0.6, 0.5], coverage=None, coverage_weight=0.2) == confidence([0.6, 0.5]) == 0.6
    assert abstain([0.6], 0.55, coverage=0.5, coverage_weight=0.15) and not abstain([0.6], 0.55, coverage=1.0,
                                                                                      coverage_weight=0.15)
