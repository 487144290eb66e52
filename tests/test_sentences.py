"""Sentence vectors stored at ingest (late chunking): what is stored, and that answers embed no stored text."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from medrag import MedRAG, Settings
from medrag.documents import Chunk
from medrag.generation.citations import passage_sentences, sentence_spans, split_sentences
from medrag.safety import SupportChecker
from medrag.sentences import SentenceVectors, embed_passages, pool_spans, sentences_of
from medrag.stores import layout
from tests.conftest import QUESTION

TRICKY = [
    "BACKGROUND: Hypertension is common. METHODS: We used e.g. diuretics vs. placebo (Fig. 2). J. Smith agreed!",
    "Symptoms include:\n - headache\n - dizziness\nSee a doctor.  It rose 2.5 mmHg [3].",
    "   ", "no end", "A. B. C", "Risk fell.[1][2] Then it rose.",
]


@pytest.mark.parametrize("text", TRICKY)
def test_spans_locate_every_sentence(text: str) -> None:
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == split_sentences(text)
    assert all(0 <= a < b <= len(text) for a, b in spans)
    assert spans == sorted(spans)


def test_pool_spans_averages_the_tokens_inside_each_span() -> None:
    tokens = np.array([[9, 9], [1, 0], [3, 0], [0, 2], [9, 9]], dtype=np.float32)
    offsets = np.array([[0, 0], [0, 4], [5, 9], [10, 14], [0, 0]])  # first and last: special tokens
    pooled = pool_spans(tokens, offsets, [(0, 9), (10, 14), (20, 30)])
    assert np.allclose(pooled[0], [1, 0]) and np.allclose(pooled[1], [0, 1])
    assert not pooled[2].any()  # past the model's window: no token, a zero row (embedded on its own later)


def test_ingest_stores_one_vector_per_sentence(rag: MedRAG, embedder) -> None:  # noqa: ANN001
    ids = rag.chunks.ids()
    stored = rag.chunks.sentence_vectors(ids, embedder.dim)
    assert set(stored) == set(ids)
    chunks = rag.chunks.get(ids[:40])
    for i, chunk in chunks.items():
        assert len(stored[i]) == len(sentences_of(chunk)) == len(passage_sentences(chunk.text))
        assert np.allclose(np.linalg.norm(stored[i], axis=1), 1, atol=2e-3)  # float16 rows, unit length
    # the same vectors a fresh forward pass gives (stored as float16)
    again = embed_passages(embedder, [chunks[i] for i in ids[:40]])[1]
    assert all(np.abs(a - stored[i]).max() < 2e-3 for a, i in zip(again, ids[:40]))


def test_late_vectors_rank_a_passage_sentence_near_its_own_text(rag: MedRAG, embedder) -> None:  # noqa: ANN001
    """A sentence's pooled vector is closer to the sentence embedded on its own than other sentences are."""
    chunk = next(c for c in rag.chunks.get(rag.chunks.ids()).values() if len(sentences_of(c)) >= 4)
    late = rag.chunks.sentence_vectors([chunk.id], embedder.dim)[chunk.id]
    alone = embedder.embed_documents(sentences_of(chunk))
    sims = alone @ late.T
    assert (sims.argmax(axis=1) == np.arange(len(alone))).mean() >= 0.75


class Counting:
    """The session embedder, counting the document texts it embeds."""

    def __init__(self, embedder) -> None:  # noqa: ANN001
        self.inner, self.documents = embedder, 0

    def embed_documents(self, texts, progress=False):  # noqa: ANN001, ANN201
        self.documents += len(texts)
        return self.inner.embed_documents(texts, progress)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.inner, name)


def test_an_extractive_answer_embeds_no_stored_text(small_index: Path, embedder) -> None:  # noqa: ANN001
    rag = MedRAG.load(small_index)
    counting = Counting(embedder)
    rag.embedder = counting
    answer = rag.ask(QUESTION)
    assert not answer.abstained and answer.citations
    assert counting.documents == 0  # the question is embedded as a query; no passage sentence at all
    assert all(s.supported and s.support == 1.0 for s in answer.sentences)  # quoted from the cited passage


def test_an_index_without_sentence_vectors_still_answers_the_same_way(index_copy: Path, embedder) -> None:  # noqa: ANN001
    """Built before they were stored: the answerer embeds the sentences itself, and says the same thing."""
    with_vectors = MedRAG.load(index_copy)
    with_vectors.embedder = embedder
    expected = with_vectors.ask(QUESTION)
    db = index_copy / layout.read_manifest(index_copy)["files"]["chunks"]
    with sqlite3.connect(db) as con:
        con.execute("DROP TABLE sentence_vectors")
    old = MedRAG.load(index_copy)
    counting = Counting(embedder)
    old.embedder = counting
    answer = old.ask(QUESTION)
    assert counting.documents > 0
    assert answer.citations and answer.abstained == expected.abstained
    # the same passages (numbered cited-first, so their order follows what each answer quotes)
    assert sorted(p.chunk_id for p in answer.retrieved) == sorted(p.chunk_id for p in expected.retrieved)
    assert all(s.supported for s in answer.sentences)


def test_sentence_vectors_can_be_switched_off(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    rag = MedRAG(Settings().replace(**{"ingest.sentence_vectors": False}))
    rag.embedder = embedder
    doc = tmp_path / "a.txt"
    doc.write_text("Anemia is a lack of red blood cells. Iron deficiency is its most common cause worldwide.")
    rag.ingest([doc], save_to=tmp_path / "idx", progress=False)
    assert rag.chunks.sentence_vectors(rag.chunks.ids(), embedder.dim) == {}
    assert MedRAG.load(tmp_path / "idx").settings.ingest.sentence_vectors is False


def test_support_of_a_quoted_sentence_needs_no_embedding(embedder) -> None:  # noqa: ANN001
    counting = Counting(embedder)
    passages = ["Iron deficiency is the most common cause of anemia. It is treated with oral iron.",
                "Vitamin B12 deficiency causes a large-cell anemia."]
    checked = SupportChecker(counting).check([("It is treated with oral iron.", [1])], passages)
    assert counting.documents == 0 and checked[0].support == 1.0 and checked[0].supported
    checked = SupportChecker(counting).check([("Oral iron treats it.", [1]), ("It is treated with oral iron.", [2])],
                                             passages)
    assert counting.documents > 0  # a paraphrase is embedded, and so is every passage sentence
    assert checked[1].support < 1.0  # quoted, but from a passage it does not cite


def test_sentence_vectors_of_passages_not_in_the_index(embedder) -> None:  # noqa: ANN001
    chunk = Chunk(doc_id="x", index=0, text="First sentence here. Second sentence there.", title="T")
    found = SentenceVectors(embedder).of([chunk])[0]
    assert found.texts == ["First sentence here.", "Second sentence there."]
    assert np.allclose(found.vectors, embedder.embed_documents(found.texts), atol=1e-5)
