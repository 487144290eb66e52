"""ask: a question in, a cited ``Answer`` out; ``MedRAG.ask`` is its front door.

The steps: translate a Chinese question (``medrag.i18n``), spot an emergency in it as asked, take a long
message's focus (``focus``), search once (``evidence.gather``: the passages, widened, and the dense cosines),
abstain on weak evidence (a long message is also gated on the conditions and drugs it names: one more dense
search, ``eval/reports/consumer.md``), let the generator write from the widened passages, check each sentence
against the passages it cites (keeping the answer's lines and lists), and number the cited passages by first
appearance.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from medrag import safety
from medrag.answer import Answer, Citation, Passage, Sentence
from medrag.answering.evidence import gather
from medrag.answering.focus import Focus, focus
from medrag.answering.kinds import topic_words
from medrag.generation.citations import BULLET, CITATION, marker_numbers
from medrag.i18n import message, translate
from medrag.retrieval import Hit

if TYPE_CHECKING:
    from medrag.documents import Chunk
    from medrag.filters import Filter
    from medrag.pipeline import MedRAG

log = logging.getLogger(__name__)



def ask(rag: MedRAG, question: str, *, k: int | None = None, generator: str | None = None,
        where: Filter | str | None = None, retriever: str | None = None, context: str | None = None,
        strict: bool | None = None, on_token: Callable[[str], None] | None = None) -> Answer:
    """``MedRAG.ask``: see its docstring."""
    s = rag.settings.safety
    tr = translate(question, rag._idf)  # a Chinese question is searched in English; others pass through
    lang, trad = tr.language, tr.traditional
    emergency = safety.detect_emergency(question)  # on the question as asked
    notices = [n for n in (emergency.message if emergency else None,
                           None if tr.translated else safety.language_notice(question, rag.settings.embedding.model),
                           message("untranslated", lang, traditional=trad, terms="、".join(tr.untranslated))
                           if tr.untranslated and tr.query else None) if n]
    common = {"question": question, "language": lang, "query": tr.query if tr.translated else "",
              "emergency": emergency is not None, "disclaimer": message("disclaimer", lang, traditional=trad)}
    if tr.translated and not tr.query.strip():  # nothing could be translated: say which terms, search nothing
        return Answer(body=message("nothing_translated", lang, traditional=trad, terms="、".join(tr.untranslated)),
                      notices=notices, generator=rag.generator(generator).name, abstained=True, **common)
    found = focus(tr.query) if rag.settings.answer.focus else None
    searched = found.text if found else tr.query
    if searched != tr.query and not tr.translated:
        common["query"] = searched  # what was searched, shown so a reader can see what medrag understood
    query = f"{searched} (patient: {context.strip()})" if context and context.strip() else searched
    vector = rag.embedder.embed_queries([query])  # embedded once: the answer's and the abstention's search
    evidence = gather(rag, query, vector, k, where, retriever, safety.MARGIN_DEPTH, rag.settings.answer.expand)
    hits, passages = evidence.hits, evidence.passages
    cosines, coverage = gate_scores(rag, searched, evidence.dense, found, where, bool(s.abstain_coverage_weight))
    gen = rag.generator(generator)
    abstained = not hits or safety.abstain(cosines, s.abstain_threshold, s.abstain_margin_weight, coverage,
                                           s.abstain_coverage_weight)
    asked = query  # a language model is asked in the user's language, with the English it was searched with
    if tr.translated and gen.name != "extractive":
        asked = f"{question} ({query}) {message('answer_language', lang)}"
    result = None if abstained else gen.generate(asked, passages, on_token=on_token)
    checked: list[tuple[str, safety.SentenceSupport]] = []
    removed = 0
    if result is None:
        body = message("no_evidence" if not hits else "abstain", lang, traditional=trad)
    else:
        text, removed = safety.remove_doctor_claims(result.text)
        checked = check(text, passages, safety.SupportChecker(rag.embedder, s.support_threshold))
        if strict if strict is not None else s.strict:
            removed += sum(not c.supported for _, c in checked)
            checked = [(b, c) for b, c in checked if c.supported]
        body = lay_out(checked)
        if not body:
            body = message("no_sentence", lang, traditional=trad)
        elif tr.translated and gen.name == "extractive":  # quoted English sentences, introduced in the user's
            body = f"{message('sources_english', lang, traditional=trad)}\n{body}"
    order = first_cited(body, len(hits))
    new = {old: i for i, old in enumerate(order, start=1)}
    body = renumber(body, new)
    cited = sorted({new[n] for _, c in checked for n in c.citations if n in new})
    ranked = [hits[old - 1] for old in order]
    shown = [passages[old - 1] for old in order]
    return Answer(body=body, notices=notices,
                  citations=[_citation(n, ranked[n - 1], shown[n - 1]) for n in cited],
                  generator=result.generator if result else gen.name,
                  retrieved=[Passage.from_hit(n, h) for n, h in enumerate(ranked, 1)],
                  invalid_citations=result.invalid_citations if result else 0, abstained=abstained,
                  removed_sentences=removed,
                  sentences=[Sentence(text=c.text, citations=[new[n] for n in c.citations if n in new],
                                      support=round(c.support, 4), supported=c.supported, layout=place)
                             for place, c in checked],
                  **common)


def gate_scores(rag: MedRAG, searched: str, dense: Sequence[Hit], found: Focus | None = None,
                where: Filter | str | None = None, coverage: bool = True) -> tuple[list[float], float | None]:
    """What the abstention gate weighs for ``searched`` and its best dense hits ``dense``: their cosines, and the
    coverage of its topic words (``kinds.topic_words``) in them (None without a lexical index, or ``coverage``).
    A focused long message is also searched by the conditions and drugs it names (``Focus.gate_text``): those
    cosines count too, and the coverage is of that text in its own hits."""
    cosines, gated, near = [h.score for h in dense], searched, list(dense)
    if found is not None and found.gate_text != found.text:
        near = rag.find(found.gate_text, safety.MARGIN_DEPTH, where=where, retriever="dense",
                        dense_k=safety.MARGIN_DEPTH).dense
        cosines, gated = cosines + [h.score for h in near], found.gate_text
    covered = (rag.lexical.coverage(topic_words(gated), [h.chunk.id for h in near])
               if rag.lexical is not None and coverage else None)
    return cosines, covered


def check(text: str, passages: Sequence[Chunk], checker: safety.SupportChecker
          ) -> list[tuple[str, safety.SentenceSupport]]:
    """Each answer sentence checked against the passages it cites, with where it stands in the answer's layout
    (``Sentence.layout``): ``line`` (starts a line), ``item`` (starts a list item) or ``same`` (goes on the line)."""
    sentences: list[tuple[str, list[int]]] = []
    places: list[str] = []
    for line in text.split("\n"):
        bullet = BULLET.match(line.strip())
        found = safety.split_answer(line.strip()[bullet.end():] if bullet else line.strip())
        # a marker ending a line cites the uncited sentences before it ("- A. B. [2]", 'See "Why?" [2]')
        markers = list(CITATION.finditer(line))
        if markers and markers[-1].end() >= len(line.rstrip()):
            following = marker_numbers(markers[-1].group(2))
            for i, (sentence, cited) in reversed(list(enumerate(found))):
                following = cited or following
                found[i] = (sentence, cited or following)
        for i, sentence in enumerate(found):
            sentences.append(sentence)
            places.append(("item" if bullet else "line") if i == 0 else "same")
    supports = checker.check(sentences, [p.text for p in passages])
    return list(zip(places, supports))


def lay_out(checked: Sequence[tuple[str, safety.SentenceSupport]]) -> str:
    """The checked sentences with their citations, in the answer's lines and list items."""
    lines: list[str] = []
    for place, c in checked:
        sentence = f"{c.text} {''.join(f'[{n}]' for n in c.citations)}".strip()
        if place == "same" and lines:
            lines[-1] += f" {sentence}"
        else:
            lines.append(f"- {sentence}" if place == "item" else sentence)
    return "\n".join(lines)


def first_cited(text: str, passages: int) -> list[int]:
    """Passage numbers ``1..passages`` reordered: those ``text`` cites, by first appearance, then the rest."""
    cited = [n for m in CITATION.finditer(text) for n in marker_numbers(m.group(2)) if 1 <= n <= passages]
    first = list(dict.fromkeys(cited))
    return first + [n for n in range(1, passages + 1) if n not in first]


def renumber(text: str, new: dict[int, int]) -> str:
    """``text`` with every ``[n]`` marker's numbers mapped through ``new``."""
    def fix(match: re.Match[str]) -> str:
        lead, body, trail = match.groups()
        numbers = [new.get(n, n) for n in marker_numbers(body)]
        return f"{lead}[{', '.join(map(str, dict.fromkeys(numbers)))}]{trail}"

    return CITATION.sub(fix, text)


def _citation(n: int, hit: Hit, passage: Chunk) -> Citation:
    """The ``n``-th cited source: the hit's chunk with the widened text the answer quotes from."""
    meta = hit.chunk.metadata
    return Citation(n=n, pmid=hit.chunk.pmid, url=hit.chunk.url, title=hit.chunk.title,
                    journal=meta.get("journal"), year=meta.get("year"), source=meta.get("source"),
                    score=round(hit.score, 4), text=passage.text)


__all__ = ["ask", "check", "gate_scores", "first_cited", "lay_out", "renumber"]
