"""Nugget recall (``medrag.evaluation.metrics``) and the nugget dev set ``eval/data/nuggets.jsonl``."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from medrag.evaluation.metrics import nugget_matches, nugget_recall

NUGGETS = Path(__file__).resolve().parents[1] / "eval" / "data" / "nuggets.jsonl"
ASTHMA = [["long[- ]term control", "controller", r"inhaled (cortico)?steroid"],
          ["quick[- ]relief", "rescue", "albuterol", "bronchodilator"],
          ["trigger", "allergens?"],
          ["action plan"]]


@pytest.fixture(scope="module")
def entries() -> list[dict[str, Any]]:
    return [json.loads(line) for line in NUGGETS.read_text(encoding="utf-8").splitlines() if line.strip()]


def patterns(entry: dict[str, Any]) -> list[list[str]]:
    return [n["patterns"] for n in entry["nuggets"]]


def test_matches_any_pattern_ignoring_case() -> None:
    answer = ("Asthma is treated with two kinds of medicines: Long-term control medicines such as inhaled "
              "corticosteroids, and quick-relief inhalers (Albuterol) for attacks.")
    assert nugget_matches(answer, ASTHMA) == [True, True, False, False]
    assert nugget_recall(answer, ASTHMA) == 0.5


def test_echo_of_the_question_scores_nothing() -> None:
    assert nugget_recall("Asthma treatment varies from mild to severe cases; ask your doctor.", ASTHMA) == 0.0
    assert nugget_recall("", ASTHMA) == 0.0


def test_word_boundaries_come_from_the_patterns() -> None:
    assert nugget_matches("they are treated", [[r"\bre-?treat"], ["re-?treat"]]) == [False, False]
    assert nugget_matches("retreat after 7 days", [[r"\bre-?treat"]]) == [True]
    assert nugget_matches("a damaged artery", [["age"], [r"\bage\b"]]) == [True, False]


def test_no_nuggets_is_zero() -> None:
    assert nugget_matches("anything", []) == []
    assert nugget_recall("anything", []) == 0.0


def test_dev_set_is_well_formed(entries: list[dict[str, Any]]) -> None:
    english = [e for e in entries if e.get("lang", "en") == "en"]
    chinese = [e for e in entries if e.get("lang") == "zh"]
    assert len(english) >= 80 and len(chinese) >= 5
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids))
    for e in entries:
        assert {"id", "question", "kind", "topic", "nuggets"} <= e.keys(), e.get("id")
        assert 3 <= len(e["nuggets"]) <= 6, e["id"]
        names = [n["name"] for n in e["nuggets"]]
        assert len(names) == len(set(names)), e["id"]
        for n in e["nuggets"]:
            assert n["name"] and n["patterns"], e["id"]
            for p in n["patterns"]:
                re.compile(p, re.IGNORECASE)
    kinds = Counter(e["kind"] for e in english)
    assert {"treatment", "symptoms", "causes", "prevention", "diagnosis", "risk factors"} <= kinds.keys()


def test_no_nugget_credits_the_question_itself(entries: list[dict[str, Any]]) -> None:
    vague = "Symptoms can vary from mild to severe. Talk to your doctor about treatment options."
    for e in entries:
        assert nugget_recall(e["question"], patterns(e)) == 0.0, e["id"]
        assert nugget_recall(vague, patterns(e)) == 0.0, e["id"]


def test_quoted_questions_are_present(entries: list[dict[str, Any]]) -> None:
    by_question = {e["question"]: e for e in entries}
    for question, kind in (("How is asthma treated?", "treatment"),
                           ("What are the symptoms of pneumonia?", "symptoms"),
                           ("What are the treatments for high blood pressure?", "treatment"),
                           ("请问高血压有哪些治疗方法？", "treatment")):
        assert by_question[question]["kind"] == kind
    assert by_question["请问高血压有哪些治疗方法？"]["lang"] == "zh"


def test_a_good_answer_gets_full_credit(entries: list[dict[str, Any]]) -> None:
    by_id = {e["id"]: e for e in entries}
    pneumonia = ("Common signs are a cough that may bring up phlegm, fever, shaking chills, shortness of breath "
                 "and sharp chest pain when you breathe deeply.")
    assert nugget_recall(pneumonia, patterns(by_id["pneumonia-symptoms"])) == 1.0
    bp = ("Eat a heart-healthy diet low in sodium such as DASH, be physically active, lose weight if you are "
          "overweight, limit alcohol, quit smoking, and take medicines such as diuretics or ACE inhibitors.")
    assert nugget_recall(bp, patterns(by_id["hbp-treatment"])) == 1.0
    assert nugget_recall("Take water pills.", patterns(by_id["hbp-treatment"])) == pytest.approx(1 / 6)
