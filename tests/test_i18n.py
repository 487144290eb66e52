"""Query translation of Chinese questions (medrag.i18n): segmentation, script, senses by IDF, messages."""
from __future__ import annotations

import csv
import math
from types import SimpleNamespace

import numpy as np
import pytest

from medrag.errors import MedRAGError
from medrag.i18n import (MESSAGES, Translation, Translator, bm25_idf, detect_language, index_idf, labels,
                         message, to_simplified, translate)
from medrag.i18n.translation import TEMPLATES, Dictionary, choose, clean_gloss, load_glossary
from medrag.lexical import BM25Store

#: IDF as a medical index has it: the technical word is rarer than the everyday ones
MEDICAL_IDF = {"hypertension": 4.0, "high": 1.9, "blood": 1.2, "pressure": 2.3, "treatment": 1.3, "asthma": 3.5}


def idf_of(table: dict[str, float]):
    return lambda word: table.get(word)


@pytest.fixture(scope="module")
def store() -> BM25Store:
    """A real BM25 index over a few texts: "hypertension" is in 2 of 7, "high", "blood", "pressure" in more."""
    texts = ["Hypertension is high blood pressure; hypertension treatment includes medicines.",
             "Treating hypertension with lifestyle changes and blood pressure medicines.",
             "Blood tests measure blood sugar and blood cells.",
             "A high fever in children; a high temperature.",
             "Pressure ulcers form where pressure on the skin lasts.",
             "Asthma symptoms include wheezing and coughing.",
             "Blood pressure is high in many adults; salt raises blood pressure."]
    lexical = BM25Store()
    lexical.add(np.arange(len(texts)), texts)
    return lexical


def test_segmentation_keeps_compound_terms_whole():
    tr = translate("请问高血压有哪些治疗方法？")
    assert tr.language == "zh" and not tr.traditional
    assert [zh for zh, _ in tr.terms] == ["高血压"]  # not 高 + 血压
    assert tr.query == "What are the treatments for high blood pressure?"  # no index: CC-CEDICT's first sense
    assert tr.untranslated == []
    # adjacent segments that together are a dictionary headword are joined, longest first
    assert [zh for zh, _ in translate("地中海贫血有哪些症状？").terms] == ["地中海贫血"]
    assert [zh for zh, _ in translate("阿尔茨海默病是什么病？").terms] == ["阿尔茨海默病"]


def test_traditional_script_is_normalised_to_simplified():
    assert to_simplified("高血壓要怎麼預防？") == ("高血压要怎么预防？", True)
    assert to_simplified("高血压要怎么预防？") == ("高血压要怎么预防？", False)
    # Taiwan vocabulary becomes mainland vocabulary (攝護腺 -> 前列腺), which the dictionaries know better
    assert to_simplified("攝護腺肥大")[0] == "前列腺肥大"
    traditional, simplified = translate("高血壓要怎麼預防？"), translate("高血压要怎么预防？")
    assert traditional.traditional and not simplified.traditional
    assert traditional.simplified == simplified.simplified == "高血压要怎么预防？"
    assert traditional.query == simplified.query == "How can high blood pressure be prevented?"


def test_sense_choice_by_idf_prefers_the_specific_term():
    specific = Translator(prefer="specific")
    tr = specific.translate("请问高血压有哪些治疗方法？", idf_of(MEDICAL_IDF))
    assert tr.terms == [("高血压", "hypertension")]
    assert tr.query == "What are the treatments for hypertension?"
    # a gloss with a word the index does not know is not chosen, however specific
    assert specific.translate("高血压", idf_of({**MEDICAL_IDF, "hypertension": None})).query == "high blood pressure"
    # the default takes the usual (first) sense among those the index knows
    assert translate("高血压", idf_of(MEDICAL_IDF)).query == "high blood pressure"
    assert translate("高血压", idf_of({**MEDICAL_IDF, "pressure": None})).query == "hypertension"
    with pytest.raises(MedRAGError, match="sense preference"):
        Translator(prefer="rarest")


def test_sense_choice_with_a_real_bm25_index(store):
    idf = bm25_idf(store)
    n = store.count()
    assert idf("hypertension") == pytest.approx(math.log(1 + (n - 2 + 0.5) / (2 + 0.5)))
    assert idf("Hypertension") == idf("hypertension")  # lower-cased and stemmed as the index stems
    assert idf("hypertensions") == idf("hypertension")
    assert idf("wheezing") is None  # in one text only: below min_df
    assert idf("zebra") is None
    assert idf("hypertension") > max(idf("high"), idf("blood"), idf("pressure"))
    assert Translator(prefer="specific").translate("高血压", idf).query == "hypertension"
    # an index whose texts never say "pressure" keeps only the gloss it knows
    lexical = BM25Store()
    lexical.add(np.arange(3), ["Hypertension raises the risk of stroke.", "Treating hypertension.", "High fever."])
    assert translate("高血压", bm25_idf(lexical)).query == "hypertension"
    # a lexical store without its own idf(): counted with one-word searches, the same figures
    searched = bm25_idf(SimpleNamespace(count=store.count, search=store.search))
    assert [searched(w) for w in ("hypertension", "blood", "wheezing", "zebra")] == \
        [pytest.approx(idf("hypertension")), pytest.approx(idf("blood")), None, None]
    assert index_idf(SimpleNamespace(lexical=store))("blood") == idf("blood")
    assert index_idf(SimpleNamespace(lexical=None)) is None


def test_choose_prefers_medical_senses_and_skips_explanations():
    senses = [clean_gloss(g) for g in ("(of clothes) baggy", "loose", "(medicine) hypertrophy")]
    assert choose(senses, None).text == "hypertrophy"  # marked medical
    assert choose(senses, idf_of({"baggy": 5.0, "loose": 2.0})).text == "baggy"  # the index lacks the medical word
    assert choose(senses, idf_of({"baggy": 5.0, "loose": 2.0, "hypertrophy": 3.0}), prefer="specific").text == \
        "hypertrophy"  # medical: counts twice its IDF
    assert clean_gloss("CL:個|个[ge4]") is None and clean_gloss("surname Gao") is None
    assert clean_gloss("to suffer from insomnia").text == "insomnia"
    assert clean_gloss("Beijing, capital of the People's Republic of China").text == "Beijing"
    assert choose([], None) is None


def test_untranslatable_terms_are_reported():
    tr = translate("奥司他韦有什么副作用？")  # oseltamivir: a drug name written by sound, in no dictionary
    assert tr.untranslated == ["奥司他韦"]
    assert "奥司他韦" not in tr.query and "side effect" in tr.query
    rare = translate("请问\U00030000病怎么治疗？")  # a character no dictionary has
    assert rare.untranslated == ["\U00030000"]
    assert translate("卡斯尔曼病是什么病？").untranslated == ["卡斯尔曼病"]
    # a name the dictionary has is translated, not reported
    assert translate("瑞德西韦有什么副作用？").untranslated == []
    assert "remdesivir" in translate("瑞德西韦有什么副作用？").query


@pytest.mark.parametrize("question, query", [
    ("哮喘有哪些症状？", "What are the symptoms of asthma?"),
    ("贫血是什么原因引起的？", "What causes anemia?"),
    ("怎样预防肺炎？", "How can pneumonia be prevented?"),
    ("怎么诊断睡眠呼吸暂停？", "How is sleep apnea diagnosed?"),
    ("哪些人容易得中风？", "Who is at risk for stroke?"),
    ("青光眼是什么病？", "What is glaucoma?"),
    ("乳糖不耐受应该怎么办？", "What to do for lactose intolerance?"),
    ("哮喘能治好吗？应该怎么治疗？", "Can asthma be cured? What are the treatments for asthma?"),
])
def test_question_words_become_the_english_question_shape(question, query):
    assert translate(question).query == query


def test_question_word_without_an_intent_opens_the_question():
    assert translate("为什么会打呼噜？").query == "What causes snore?"  # 为什么会: a cause
    assert translate("孩子发烧多久需要看医生？").query.startswith("How long")


def test_english_and_other_questions_pass_through_unchanged():
    question = "What are the treatments for high blood pressure?"
    tr = translate(question, idf_of(MEDICAL_IDF))
    assert tr == Translation("en", question, question, question)
    assert not tr.translated and tr.terms == [] and tr.untranslated == []
    assert translate("高血圧の治療法は？").language == "ja"
    assert translate("고혈압 치료 방법은?").query == "고혈압 치료 방법은?"
    with pytest.raises(MedRAGError):
        translate(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("text, language", [
    ("请问高血压有哪些治疗方法？", "zh"), ("高血壓要怎麼預防？", "zh"), ("HPV疫苗有什么副作用？", "zh"),
    ("What does 高血压 mean in English?", "en"), ("Qu'est-ce que l'hypertension ?", "en"),
    ("高血圧の治療法は？", "ja"), ("고혈압 치료 방법은?", "ko"), ("Что такое гипертония?", "und"), ("123 ?", "und"),
])
def test_detect_language(text, language):
    assert detect_language(text) == language


def test_translation_is_a_plain_record():
    tr = translate("高血压有什么症状？", idf_of(MEDICAL_IDF))
    assert tr.to_dict() == {"language": "zh", "original": "高血压有什么症状？", "simplified": "高血压有什么症状？",
                            "query": "What are the symptoms of high blood pressure?",
                            "terms": [("高血压", "high blood pressure")],
                            "untranslated": [], "traditional": False}
    assert tr.translated


def test_glossary_only_overrides_and_adds_terms():
    glossary = load_glossary()
    assert glossary["中风"].text == "stroke"  # CC-CEDICT: "to suffer a paralyzing stroke"
    assert translate("中风以后怎么治疗？").query == "What are the treatments for stroke?"
    bare = Translator(glossary=False)
    assert "paralyzing stroke" in bare.translate("中风以后怎么治疗？").query
    from importlib import resources

    with resources.files("medrag.i18n").joinpath("glossary.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t"))
    assert rows and all(r["zh"] and r["en"] and r["source"] for r in rows)
    assert len({r["zh"] for r in rows}) == len(rows)
    assert all(not to_simplified(r["zh"])[1] for r in rows)  # Simplified, as questions are after normalising
    cedict = Dictionary.load().cedict
    overrides = {"中风", "感冒", "睡眠呼吸暂停", "烧心", "帕金森", "肥胖", "发烧", "发热"}  # verb or odd senses
    assert {r["zh"] for r in rows if r["zh"] in cedict} == overrides


def test_bad_glossary_is_refused(tmp_path):
    path = tmp_path / "glossary.tsv"
    path.write_text("zh\ten\tsource\n高血压\thypertension\t\n", encoding="utf-8")
    with pytest.raises(MedRAGError, match="row 1"):
        load_glossary(path)


def test_chinese_messages_and_fallback():
    from medrag.answer import ABSTAIN, DISCLAIMER, NO_EVIDENCE, NO_SENTENCE

    for key, texts in MESSAGES.items():
        assert set(texts) == {"en", "zh"}, key
    # the English texts are the ones medrag writes today
    assert [message(k) for k in ("abstain", "disclaimer", "no_evidence", "no_sentence")] == \
        [ABSTAIN, DISCLAIMER, NO_EVIDENCE, NO_SENTENCE]
    assert message("abstain", "zh").startswith("已收录的资料不足以回答这个问题")
    assert message("abstain", "fr") == MESSAGES["abstain"]["en"]
    assert message("label_answered_by", "zh", generator="extractive") == "（回答方式：extractive）"
    assert message("untranslated", "zh", terms="奥司他韦") == \
        "以下词语无法译成英文，检索时未能使用：奥司他韦。请换用更常见的说法，或直接用英文提问。"
    assert message("label_sources", "zh", traditional=True) == "資料來源："
    assert message("sources_english", "en") == ""
    with pytest.raises(KeyError):
        message("no such message", "zh")


def test_render_labels_in_chinese():
    from medrag.answer import Answer

    assert set(labels("zh")) == set(labels("en"))
    english = Answer(question="q", body="b", generator="extractive").render()
    assert labels("en")["answered_by"].format(generator="extractive") in english  # what Answer.render uses
    chinese = Answer(question="q", body="b", generator="extractive", language="zh").render()
    assert "（回答方式：extractive）" in chinese
    zh = labels("zh")
    assert zh["sources"] == "资料来源："
    assert zh["answered_by"].format(generator="extractive") == "（回答方式：extractive）"
    assert labels("zh", traditional=True)["closest"] == "最接近的資料（它們並未回答這個問題）："


def test_chinese_emergency_question_keeps_its_call_line():
    from medrag.safety import EMERGENCY_NUMBER, EMERGENCY_NUMBER_ZH, detect_emergency

    assert message("emergency_number", "zh") == EMERGENCY_NUMBER_ZH
    assert message("emergency_number", "en") == EMERGENCY_NUMBER
    question = "我爸爸突然胸口剧痛，还出冷汗，怎么办？"
    emergency = detect_emergency(question)
    assert emergency is not None and EMERGENCY_NUMBER_ZH in emergency.message
    tr = translate(question)  # translated all the same, for the search that follows the call-for-help message
    assert tr.language == "zh" and "sweat" in tr.query.lower()


def test_templates_cover_every_intent():
    from medrag.i18n.translation import INTENTS

    assert set(INTENTS) == set(TEMPLATES)
