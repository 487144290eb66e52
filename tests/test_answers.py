"""Answers that answer (issue 24): the quick-start pages' own answers to the issue's three questions, lists kept
as lists, no dangling openings, citations numbered by first appearance; the parts in isolation on small text."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from medrag import MedRAG, Settings
from medrag.answering.ask import first_cited, renumber
from medrag.answering.compose import DANGLING, choose, lay_out, novelty, units_of
from medrag.answering.evidence import widen
from medrag.documents import Chunk
from medrag.embedding import Embedder
from medrag.generation.citations import CITATION, marker_numbers
from tests.conftest import MEDQUAD

#: quick-start pages: NHLBI asthma, pneumonia and high blood pressure, MedlinePlus high blood pressure and COPD
#: (a neighbour of all three)
PAGES = [MEDQUAD / "8_NHLBI_QA_XML" / f"{n}.xml" for n in ("0000010", "0000105", "0000071")] + \
        [MEDQUAD / "4_MPlus_Health_Topics_QA" / f"{n}.xml" for n in ("0000471", "0000232")]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> MedRAG:
    directory = tmp_path_factory.mktemp("answers") / "index"
    built = MedRAG(Settings())
    built.embedder = embedder
    built.ingest(PAGES, save_to=directory, progress=False)
    rag = MedRAG.load(directory)
    rag.embedder = embedder
    return rag


def _numbers(text: str) -> list[int]:
    return [n for m in CITATION.finditer(text) for n in marker_numbers(m.group(2))]


def _plain(body: str) -> str:
    return re.sub(r"\s*\[\d+(?:, \d+)*\]", "", body)


def _check_shape(answer) -> None:  # noqa: ANN001
    """Every line cited, numbered 1.. by first appearance, each body sentence quoted (support 1.0), no dangling
    opening without the sentence before it."""
    lines = [line for line in answer.body.split("\n") if line.strip()]
    assert all(_numbers(line) for line in lines if not line.startswith("以下")), answer.body
    first = list(dict.fromkeys(_numbers(answer.body)))
    assert first == list(range(1, len(first) + 1)), answer.body
    assert [c.n for c in answer.citations] == sorted(first)
    assert [p.n for p in answer.retrieved] == list(range(1, len(answer.retrieved) + 1))
    assert all(s.support == 1.0 for s in answer.sentences), [(s.text, s.support) for s in answer.sentences]
    assert "described above" not in answer.body
    for i, s in enumerate(answer.sentences):
        if DANGLING.match(s.text) and not s.text.startswith("These habits include"):
            assert i > 0, s.text


def test_asthma_treatment_names_the_medicines(pages: MedRAG) -> None:
    answer = pages.ask("How is asthma treated?")
    text = _plain(answer.body).lower()
    assert not answer.abstained
    assert "long-term control" in text and "quick-relief" in text  # the two kinds of medicine
    assert "action plan" in text and "trigger" in text
    _check_shape(answer)


def test_pneumonia_symptoms_are_listed(pages: MedRAG) -> None:
    answer = pages.ask("What are the symptoms of pneumonia?")
    text = _plain(answer.body).lower()
    for symptom in ("fever", "chills", "cough", "shortness of breath", "chest pain"):
        assert symptom in text, symptom
    assert text.count("vary from mild to severe") <= 1  # the echo is not repeated
    items = [line for line in answer.body.split("\n") if line.startswith("- ")]
    assert len(items) >= 4 and all(_numbers(item) for item in items)  # the list kept as a list, each item cited
    _check_shape(answer)


def test_chinese_hypertension_question_names_treatments(pages: MedRAG) -> None:
    answer = pages.ask("请问高血压有哪些治疗方法？")
    assert answer.language == "zh" and answer.body.startswith("以下回答摘自英文资料")
    text = _plain(answer.body).lower()
    assert not text.split("\n")[1].startswith("scientists")
    assert re.search(r"physically active|physical activity", text) and re.search(r"weight", text)
    assert re.search(r"inhibitor|blocker|diuretic|medicines|medications", text)
    assert "（回答方式：extractive）" in answer.render()
    _check_shape(answer)


def test_language_models_get_the_widened_passages(pages: MedRAG) -> None:
    """A passage is read with its neighbours: the generator sees the chunk before and after the hit."""
    found = pages.find("How is asthma treated?", 3)
    widened = widen([h.chunk for h in found.hits], pages.chunks.neighbours([h.chunk for h in found.hits]))
    assert any(len(p.parts) > 1 for p in widened)
    for passage, hit in zip(widened, found.hits):
        assert hit.chunk.text in passage.text and (not passage.parts or hit.chunk.id in passage.parts)


def test_one_search_gives_hits_and_dense_cosines(pages: MedRAG) -> None:
    found = pages.find("What are the symptoms of pneumonia?", 5, dense_k=5)
    alone = pages.retrieve_batch(["What are the symptoms of pneumonia?"], 5, retriever="dense", rerank=False)[0]
    assert [h.chunk.id for h in found.dense] == [h.chunk.id for h in alone]
    assert np.allclose([h.score for h in found.dense], [h.score for h in alone], atol=1e-5)
    assert [h.chunk.id for h in found.hits] == [h.chunk.id for h in pages.retrieve("What are the symptoms of "
                                                                                    "pneumonia?", 5)]


# -- the parts on small text ----------------------------------------------------------------------------------
LIST_PASSAGE = ("Swelling in the anal veins causes hemorrhoids. Several factors may cause this swelling, including\n"
                "- chronic constipation or diarrhea\n- straining during bowel movements\n"
                "- a lack of fiber in the diet\n\nThe signs and symptoms vary from mild to severe.")


def test_a_list_is_read_with_its_lead_in() -> None:
    from medrag.sentences import sentences_of

    chunk = Chunk("d", 0, LIST_PASSAGE, id=1)
    texts = sentences_of(chunk)
    units = units_of(1, LIST_PASSAGE, texts, np.eye(len(texts), 8, dtype=np.float32))
    lists = [u for u in units if u.is_list]
    assert len(lists) == 1 and lists[0].sentences == [
        "Several factors may cause this swelling, including", "chronic constipation or diarrhea",
        "straining during bowel movements", "a lack of fiber in the diet"]
    rendered = lay_out(lists)
    assert rendered.split("\n")[1] == "- chronic constipation or diarrhea [1]"


def test_echoes_have_no_novelty() -> None:
    question = "What are the symptoms of pneumonia?"
    assert novelty("The signs and symptoms of pneumonia vary from mild to severe.", question) == 0.0
    assert novelty("Pneumonia causes fever, chills and a cough with phlegm.", question) > 0.5


def test_choose_prefers_content_over_echo(embedder: Embedder) -> None:
    text = ("Symptoms of gout vary from person to person.\nGout is treated with medicines.\n"
            "Treatment options include:\n- anti-inflammatory medicines such as NSAIDs or colchicine\n"
            "- corticosteroids\n- medicines that lower uric acid, such as allopurinol")
    chunk = Chunk("g", 0, text, title="What are the treatments for Gout ?", metadata={"qtype": "treatment"}, id=5)
    from medrag.sentences import SentenceVectors

    found = SentenceVectors(embedder).of([chunk])[0]
    query = embedder.embed_queries(["How is gout treated?"])[0]
    units = choose("How is gout treated?", "treatment", [chunk], [(found.texts, found.vectors)], query)
    body = lay_out(units)
    assert "- corticosteroids [1]" in body and "allopurinol" in body
    assert "vary from person to person" not in body


def test_citations_are_numbered_by_first_appearance() -> None:
    text = "A sentence. [3]\n- item [3]\nAnother. [1]"
    order = first_cited(text, 4)
    assert order == [3, 1, 2, 4]
    new = {old: i for i, old in enumerate(order, 1)}
    assert renumber(text, new) == "A sentence. [1]\n- item [1]\nAnother. [2]"


def test_answer_words_follow_the_kind(pages: MedRAG) -> None:
    definition = pages.ask("What is asthma?")
    listing = pages.ask("What are the symptoms of pneumonia?")
    assert len(_plain(definition.body).split()) <= 70
    assert len(_plain(listing.body).split()) <= 160


def test_pages_are_real(pages: MedRAG) -> None:
    assert all(Path(p).exists() for p in PAGES) and pages.chunks.count() > 50


def test_a_long_message_is_searched_by_its_focus(pages: MedRAG) -> None:
    message = ("Hello doctor, I hope you are well. My father is 70 and has had a bad cough and fever for three days, "
               "and now he gets short of breath walking to the kitchen. We live far from town. What are the "
               "symptoms of pneumonia? Thank you so much, Maria")
    answer = pages.ask(message)
    assert answer.query and "Maria" not in answer.query and "pneumonia" in answer.query
    assert not answer.abstained and "fever" in _plain(answer.body).lower()
    plain = pages.ask("What are the symptoms of pneumonia?")
    assert plain.query == ""  # a plain question is searched as it is


def test_the_gate_covers_topic_words_only() -> None:
    from medrag.answering.kinds import topic_words

    assert topic_words("What is the mechanism of action of Emicizumab?") == "Emicizumab"
    assert topic_words("What are the symptoms of pneumonia?") == "pneumonia"
    assert topic_words("What is it?") == "What is it?"  # nothing left: the question as it is


def test_case_problems_are_asked_as_the_conditions_they_name() -> None:
    from medrag.case import condition_of

    assert condition_of("Acute on chronic systolic heart failure") == "heart failure"
    assert condition_of("Type 2 diabetes mellitus") == "Type 2 diabetes"
    assert condition_of("COPD exacerbation due to viral infection") == "COPD exacerbation"
    assert condition_of("Pneumonia") == "Pneumonia"


class Capture:
    """A generator that keeps the passages it is given and quotes the first line of the first (``Capture.seen``)."""

    name = "capture"
    seen: list[Chunk] = []

    @classmethod
    def from_settings(cls, model: str, options: object, env: object) -> Capture:
        return cls()

    def generate(self, question: str, passages, on_token=None):  # noqa: ANN001
        from medrag.generation import Generation

        Capture.seen = list(passages)
        return Generation(f"{passages[0].text.splitlines()[0]} [1]", [1], 0, list(range(1, len(passages) + 1)),
                          self.name)


def test_any_generator_is_given_the_widened_passages(pages: MedRAG) -> None:
    answer = pages.ask("How is asthma treated?", generator="tests.test_answers:Capture")
    assert any(len(p.parts) > 1 for p in Capture.seen)  # read with the chunks around it
    hits = pages.find("How is asthma treated?")
    assert all(h.chunk.text in p.text for h, p in zip(hits.hits, Capture.seen, strict=True))
    assert answer.citations[0].text == Capture.seen[0].text  # the source shows what the answer read
