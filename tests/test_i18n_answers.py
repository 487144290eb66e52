"""Chinese questions answered end to end over the English index: searched in English, answered with quoted,
cited English sentences introduced and closed in Chinese; emergencies and untranslatable terms in Chinese."""
from __future__ import annotations

import json

from medrag import MedRAG
from medrag.i18n import message

from .conftest import medrag_cli


def test_chinese_question_gets_a_cited_answer_in_chinese_frame(rag: MedRAG) -> None:
    answer = rag.ask("请问高血压有哪些治疗方法？")
    assert answer.language == "zh" and "high blood pressure" in answer.query.lower()
    assert not answer.abstained and answer.citations
    intro, quoted = answer.body.split("\n", 1)
    assert intro == message("sources_english", "zh") and "[" in quoted  # English quotations with their [n]
    assert answer.disclaimer == message("disclaimer", "zh") and answer.text.endswith(answer.disclaimer)
    cited = {c.n for c in answer.citations}
    assert cited and all(1 <= n <= len(answer.retrieved) for n in cited)
    assert any(w in (answer.retrieved[n - 1].title or "").lower() for n in cited for w in ("blood pressure", "hypertension"))
    rendered = answer.render()
    assert "资料来源：" in rendered and "（回答方式：extractive）" in rendered
    assert message("query", "zh", query=answer.query) in rendered  # what was searched, shown to the reader


def test_traditional_script_is_searched_like_simplified(rag: MedRAG) -> None:
    simplified = rag.ask("高血压有哪些治疗方法？")
    traditional = rag.ask("高血壓有哪些治療方法？")
    assert traditional.query == simplified.query and traditional.language == "zh"
    assert [p.doc_id for p in traditional.retrieved] == [p.doc_id for p in simplified.retrieved]
    assert traditional.disclaimer == message("disclaimer", "zh", traditional=True) != simplified.disclaimer


def test_out_of_scope_chinese_question_abstains_in_chinese(rag: MedRAG) -> None:
    answer = rag.ask("怎么做红烧肉？")
    assert answer.abstained and answer.body == message("abstain", "zh")


def test_chinese_emergency_comes_first(rag: MedRAG) -> None:
    answer = rag.ask("我爸爸突然胸口剧痛，出冷汗，左臂发麻")
    assert answer.emergency and answer.notices[0].endswith(message("emergency_number", "zh"))
    assert answer.text.startswith(answer.notices[0])


def test_untranslatable_terms_are_named(rag: MedRAG) -> None:
    answer = rag.ask("嘞嚒")  # no dictionary knows these: nothing to search with, and the answer says so
    assert answer.abstained and answer.language == "zh" and not answer.retrieved
    assert answer.body == message("nothing_translated", "zh", terms="嘞、嚒")
    partly = rag.ask("我得了𠀀𠀁病怎么办？")  # some terms translate: searched without the others, which are named
    assert partly.query and any("𠀀" in n and "𠀁" in n for n in partly.notices)


def test_cli_json_carries_language_and_query(small_index) -> None:
    data = json.loads(medrag_cli("ask", "请问高血压有哪些治疗方法？", "--index", small_index, "--json", check=True).stdout)
    assert data["language"] == "zh" and "blood pressure" in data["query"].lower() and data["citations"]
