"""How each kind of question is answered in an evaluation: multiple choice by log-likelihood, by generated
letter or by similarity to the extractive answer; free text through ``MedRAG.ask``."""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from medrag.errors import MedRAGError
from medrag.evaluation import metrics as M
from medrag.evaluation.exact import candidates
from medrag.generation.citations import clean_citations

if TYPE_CHECKING:
    from medrag.documents import Chunk
    from medrag.evaluation.datasets import Question
    from medrag.generation import Generator
    from medrag.pipeline import MedRAG

log = logging.getLogger(__name__)

MODES = ("loglik", "generate")
EXACT_TYPES = ("factoid", "list")  # BioASQ questions answered with entities besides the ideal answer
EXACT_CANDIDATES = 5  # BioASQ scores the first 5 factoid candidates
SUBMISSION_DOCUMENTS = 10  # BioASQ accepts at most 10 documents and 10 snippets per question
TOY_HIDDEN_SIZE = 64  # a causal LM narrower than this is a test model: its scores are noise


def ranked(pairs: Iterable[tuple[str | None, str | None]]) -> dict[str, list[str]]:
    """Distinct document ids and PMIDs in rank order from (doc id, pmid) pairs."""
    pairs = list(pairs)
    return {"docs": list(dict.fromkeys(d for d, _ in pairs if d)), "pmids": list(dict.fromkeys(p for _, p in pairs if p))}


def _snippets(chunks: Iterable[Chunk]) -> list[dict[str, str]]:
    """PubMed passages for a BioASQ submission (at most ``SUBMISSION_DOCUMENTS``)."""
    return [{"pmid": c.pmid, "text": c.text} for c in chunks if c.pmid][:SUBMISSION_DOCUMENTS]


def choice_prompt(q: Question) -> str:
    """The question followed by its options, as one line for the prompt."""
    assert q.options is not None
    if all(k == v for k, v in q.options.items()):
        return f"{q.question} ({', '.join(q.options)})"
    return f"{q.question} Options: " + " ".join(f"{k}. {v}" for k, v in q.options.items())


def parse_choice(text: str, options: dict[str, str]) -> str | None:
    """The option a generated answer names: a letter (``B``, ``(B)``, ``answer is B``), else the option
    text that appears first (whole words, any case); None when it names none."""
    if all(len(k) == 1 and k.isalpha() and k.isupper() for k in options):
        match = (re.search(r"\b(?:answer|option)\s*(?:is|:)?\s*\(?([A-Z])\b", text, re.IGNORECASE)
                 or re.match(r"\s*\(?([A-Z])(?:[).:,]|\s|$)", text))
        if match and match.group(1).upper() in options:
            return match.group(1).upper()
    found = [(m.start(), k) for k, v in options.items() if v
             for m in [re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text, re.IGNORECASE)] if m]
    return min(found)[1] if found else None


class QA:
    """Answers one batch of questions: multiple choice by ``method``, free text through ``rag.ask``."""

    def __init__(self, rag: MedRAG, gen: Generator, spec: str, method: str, k: int, no_retrieval: bool,
                 snippets: bool) -> None:
        self.rag, self.gen, self.spec, self.method, self.k = rag, gen, spec, method, k
        self.no_retrieval, self.snippets = no_retrieval, snippets  # snippets: kept for the BioASQ submission

    def __call__(self, batch: list[Question]) -> Iterator[dict[str, Any]]:
        choice = [q for q in batch if q.options]
        started = time.perf_counter()
        hits = (self.rag.retrieve_batch([q.question for q in choice], self.k) if choice and not self.no_retrieval
                else [[] for _ in choice])
        share = (time.perf_counter() - started) / max(len(choice), 1)
        for q, found in zip(choice, hits):
            yield self.choose(q, [h.chunk for h in found], share)
        for q in batch:
            if not q.options:
                yield self.free_text(q)

    def choose(self, q: Question, chunks: list[Chunk], seconds: float) -> dict[str, Any]:
        assert q.options is not None
        started = time.perf_counter()
        keys, texts = list(q.options), list(q.options.values())
        record: dict[str, Any] = {"id": q.id, "dataset": q.dataset, "type": q.type}
        if self.method == "loglik":
            scores = self.gen.option_logprobs(choice_prompt(q), texts, chunks, per_token=True)  # type: ignore[attr-defined]
            record["prediction"] = keys[int(np.argmax(scores))]
            record["scores"] = {k: round(s, 4) for k, s in zip(keys, scores)}
        elif self.method == "generate":
            letters = "the letter of the correct option" if keys != texts else " or ".join(keys)
            result = self.gen.generate(f"{choice_prompt(q)} Answer with {letters}.", chunks)
            record["generated"] = result.text
            record["prediction"] = parse_choice(result.text, q.options)
        else:  # similarity: the option closest to the extractive answer (MiniLM cosine)
            result = self.gen.generate(q.question, chunks) if chunks else None
            text = clean_citations(result.text, set())[0] if result else ""
            record["generated"] = text
            record["prediction"] = None
            if text:
                vectors = self.rag.embedder.embed_documents([text, *texts])
                similarity = vectors[1:] @ vectors[0]
                record["prediction"] = keys[int(np.argmax(similarity))]
                record["scores"] = {k: round(float(s), 4) for k, s in zip(keys, similarity)}
        record.update(gold=q.answer, **ranked((c.doc_id, c.pmid) for c in chunks), citations=[],
                      seconds=round(seconds + time.perf_counter() - started, 4))
        if self.snippets:
            record["snippets"] = _snippets(chunks)
        return record

    def free_text(self, q: Question) -> dict[str, Any]:
        started = time.perf_counter()
        answer = self.rag.ask(q.question, k=self.k, generator=self.spec)
        supports = [s.support for s in answer.sentences]
        record = {"id": q.id, "dataset": q.dataset, "type": q.type, "prediction": answer.body.strip(),
                  "gold": None, "n_references": len(q.ideal),  # reference texts stay in the dataset
                  **ranked((r.doc_id, r.pmid) for r in answer.retrieved),
                  "citations": [{"n": c.n, "pmid": c.pmid, "url": c.url} for c in answer.citations],
                  "abstained": answer.abstained, "support": M.mean(supports),
                  "invalid_citations": answer.invalid_citations}
        ids = [r.chunk_id for r in answer.retrieved if r.chunk_id is not None]
        found = self.rag.chunks.get(ids) if self.snippets or q.type in EXACT_TYPES else {}
        if self.snippets:
            record["snippets"] = _snippets(found[i] for i in ids if i in found)
        if q.type in EXACT_TYPES:  # BioASQ factoid/list: phrases of the retrieved passages (medrag.evaluation.exact)
            record["exact"] = candidates(q.question, [found[i].text for i in ids if i in found], EXACT_CANDIDATES)
        record["seconds"] = round(time.perf_counter() - started, 4)
        return record


def method(gen: Generator, mode: str) -> str:
    if mode not in MODES:
        raise MedRAGError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if hasattr(gen, "option_logprobs"):
        return mode
    return "similarity" if gen.name == "extractive" else "generate"


def model_info(gen: Generator) -> dict[str, Any] | None:
    """Size of a Hugging Face generator's network, and whether it is a toy test model."""
    config = getattr(getattr(gen, "model", None), "config", None) if hasattr(gen, "option_logprobs") else None
    if config is None:
        return None
    hidden = next((getattr(config, a) for a in ("hidden_size", "n_embd", "d_model") if getattr(config, a, None)), None)
    layers = next((getattr(config, a) for a in ("num_hidden_layers", "n_layer") if getattr(config, a, None)), None)
    return {"hidden_size": hidden, "layers": layers, "toy": bool(hidden and hidden < TOY_HIDDEN_SIZE)}


def scorable(q: Question, no_retrieval: bool) -> bool:
    """Whether a question can be scored: a gold option, or references for a retrieved free-text answer."""
    return q.answer is not None if q.options else bool(q.ideal) and not no_retrieval


__all__ = ["EXACT_TYPES", "MODES", "QA", "choice_prompt", "method", "model_info", "parse_choice", "ranked",
           "scorable"]
