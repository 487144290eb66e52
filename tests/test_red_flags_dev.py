"""Red flags described by their signs (not named) and near-miss ordinary questions, in English and Chinese.

``tests/data/red_flags_dev.tsv`` is the development table for the sign-level rules in
``medrag/safety/emergencies.json``; together with ``red_flags.tsv`` it must keep recall >= 0.95 and false alarms
<= 0.05. (``red_flags_independent.tsv`` is a held-out set measured by ``eval/eval_red_flags.py``, not here.)
"""
from __future__ import annotations

import csv
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import opencc
import pytest

from medrag.safety import MESSAGES, detect_emergency, present_concepts
from tests.conftest import MEDQUAD
from tests.test_safety import RED_FLAGS

DEV = Path(__file__).parent / "data" / "red_flags_dev.tsv"
_T2S = opencc.OpenCC("t2s")


def _rows(path: Path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [(r["text"], r["expected"]) for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]


def _chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def _kind(text: str) -> str:
    found = detect_emergency(text)
    return found.kind if found else "none"


def test_dev_table_is_big_and_mixed() -> None:
    rows = _rows(DEV)
    positives = [t for t, kind in rows if kind != "none"]
    chinese = [t for t, _ in rows if _chinese(t)]
    traditional = [t for t in chinese if _T2S.convert(t) != t]
    assert len(positives) >= 500 and len(rows) - len(positives) >= 400
    assert len(chinese) >= 400 and len(traditional) >= 50 and len(rows) - len(chinese) >= 500
    assert {kind for _, kind in rows} == {"none", *MESSAGES}
    texts = [t for t, _ in rows]
    assert len(set(texts)) == len(texts) and not set(texts) & {t for t, _ in _rows(RED_FLAGS)}, "new phrasings only"


def test_recall_and_false_alarms() -> None:
    rows = _rows(RED_FLAGS) + _rows(DEV)
    got = [(text, expected, _kind(text)) for text, expected in rows]
    missed = [(t, e) for t, e, g in got if e != "none" and g == "none"]
    alarms = [(t, g) for t, e, g in got if e == "none" and g != "none"]
    wrong_kind = [(t, e, g) for t, e, g in got if e != "none" and g not in ("none", e)]
    positives = sum(e != "none" for _, e, _ in got)
    negatives = len(got) - positives
    assert 1 - len(missed) / positives >= 0.95, f"missed: {missed}"
    assert len(alarms) / negatives <= 0.05, f"false alarms: {alarms}"
    assert len(wrong_kind) / positives <= 0.05, f"wrong kind: {wrong_kind}"


def test_traditional_chinese_matches_like_simplified() -> None:
    for traditional, simplified, kind in [("爺爺突然口齒不清，嘴巴歪向一邊", "爷爷突然口齿不清，嘴巴歪向一边", "stroke"),
                                          ("他喘不過氣，嘴唇發紫", "他喘不过气，嘴唇发紫", "breathing"),
                                          ("孩子誤食了洗衣球", "孩子误食了洗衣球", "poisoning")]:
        assert _kind(traditional) == _kind(simplified) == kind
        assert present_concepts(traditional) == present_concepts(simplified)


def test_negation_history_and_information_scopes() -> None:
    assert _kind("Her face is drooping on one side") == "stroke"
    assert _kind("Her face is not drooping and she can lift both arms") == "none"
    assert _kind("Since her stroke last year her face droops and her speech is slurred") == "none"
    assert _kind("I'm vomiting blood and feel faint") == "bleeding"
    assert _kind("What causes vomiting blood?") == "none"
    assert _kind("Black tarry stool and I feel dizzy") == "bleeding"
    assert _kind("Black stool after taking iron tablets, is that normal?") == "none"
    assert _kind("吃海鲜后有点痒，没有呼吸困难") == "none"  # 没有呼吸困难 is not 没有呼吸 (not breathing)
    assert _kind("咳嗽止不住怎么办") == "none"  # a cough that won't stop is not bleeding


def test_examples_from_the_brief() -> None:
    for text in ["Can you overdose on vitamin C?", "How do I store detergent pods safely away from children?",
                 "How can I fade my healed self-harm scars?", "My father had a stroke five years ago, what should he eat?",
                 "没有呼吸困难，只是有点咳嗽", "我以前中风过，现在能运动吗？"]:
        assert _kind(text) == "none", text
    for text, kind in [("My mom's face is lopsided and she can't lift her arm", "stroke"),
                       ("Her words are jumbled and gibberish and she seems confused", "stroke"),
                       ("I'm vomiting something that looks like coffee grounds", "bleeding"),
                       ("My son can't finish a sentence and the skin between his ribs is sucking in", "breathing"),
                       ("It feels like an elephant is sitting on my chest", "heart_attack"),
                       ("I broke out in hives after the antibiotic and my throat is tight", "anaphylaxis"),
                       ("We all have headaches and feel sick and the gas heater was on all night", "poisoning"),
                       ("My sister sent goodbye messages to everyone and isn't answering her phone", "suicide"),
                       ("我爸口齒不清，右手舉不起來", "stroke"), ("我喘不過氣，嘴唇發紫", "breathing")]:
        assert _kind(text) == kind, text


def test_ordinary_nih_questions_raise_no_alarm() -> None:
    """Every 4th question of the MedQuAD NIH/CDC consumer-health pages (none describes an emergency in progress)."""
    if not MEDQUAD.is_dir():
        pytest.skip("shared MedQuAD data not present")
    files = sorted(MEDQUAD.glob("*/*.xml"))[::4]
    questions = [q.text.strip() for f in files for q in ET.parse(f).getroot().iter("Question") if q.text]
    alarms = [q for q in questions if detect_emergency(q)]
    assert len(questions) > 2000 and len(alarms) <= 2, alarms


def test_detection_stays_fast() -> None:
    rows = _rows(RED_FLAGS) + _rows(DEV)
    start = time.perf_counter()
    for text, _ in rows:
        detect_emergency(text)
    per_question = (time.perf_counter() - start) / len(rows)
    assert per_question < 0.01, f"{per_question * 1000:.1f} ms per question"
    start = time.perf_counter()  # many cues and concepts in one long text: no quadratic blow-up in the scope check
    assert detect_emergency("No chest pain and no sweating. " * 300) is None
    assert detect_emergency("没有胸痛，" * 500) is None
    assert time.perf_counter() - start < 5
