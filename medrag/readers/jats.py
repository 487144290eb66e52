"""PMC full text in JATS XML (``.nxml`` ``<article>``, or an efetch ``<pmc-articleset>`` of them), streamed.

Each article gives one Document per abstract (section "Abstract", or the title of a typed one such
as PLOS's "Author Summary") and one per top-level body ``<sec>`` (section = its title); paragraphs
before the first ``<sec>`` form a section "Body". Ids are ``pmc:PMC123#n`` (or ``pmid:N#secn`` when
the article has no PMCID), n counting the article's Documents from 0. Sub-section titles, lists,
figure and table captions are kept as paragraphs; table cells, formulas, graphics, supplementary
files, references and back matter are dropped, and so are body sections that are administrative
(competing interests, authors' contributions, funding, supplementary material ...).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from medrag.documents import Deletion, Document
from medrag.readers._util import (
    XML_SAFE,
    compact,
    file_id,
    inner_text,
    norm,
    open_bytes,
    pmc_url,
    pubmed_url,
    reader,
    year_of,
)

log = logging.getLogger(__name__)

_MML = "{http://www.w3.org/1998/Math/MathML}"
#: elements whose text is never worth indexing
_DROP = ("ref-list", "table", "graphic", "inline-graphic", "media", "supplementary-material", "tex-math",
         f"{_MML}math", "alternatives", "object-id")
#: elements that start a new paragraph
_BLOCKS = frozenset({"sec", "title", "p", "list", "list-item", "caption", "fig", "table-wrap", "boxed-text",
                     "disp-quote", "def-list", "def-item", "statement", "disp-formula", "label"})
#: top-level body sections that are not content (matched on the lower-cased title)
_SKIP = frozenset({"competing interests", "conflict of interest", "conflicts of interest", "funding",
                   "authors' contributions", "author contributions", "acknowledgements", "acknowledgments",
                   "abbreviations", "disclosure", "supplementary material", "supporting information",
                   "pre-publication history", "electronic supplementary material"})
_SEP = "\ue000"  # a private-use character: the paragraph mark planted in the tree before joining its text
_DATE_ORDER = ("ppub", "collection", "epub-ppub", "epub", "pmc-release")


@reader
def read(path: Path) -> Iterator[Document | Deletion]:
    """Yield the abstract and body-section Documents of every ``<article>`` in the file."""
    with open_bytes(path) as fh:
        for _, article in etree.iterparse(fh, events=("end",), tag="article", **XML_SAFE):
            yield from _article(article, path)
            article.clear(keep_tail=True)


def _article(article: etree._Element, path: Path) -> Iterator[Document]:
    """The Documents of one article."""
    meta = article.find("front/article-meta")
    if meta is None:
        log.warning("%s: an <article> without <front>/<article-meta>: skipped", path)
        return
    ids = {a.get("pub-id-type"): norm(a.text) for a in meta.iterfind("article-id")}
    pmcid = ids.get("pmcid") or ids.get("pmc") or ""
    pmcid = f"PMC{pmcid.removeprefix('PMC')}" if pmcid else ""
    pmid, doi = ids.get("pmid", ""), ids.get("doi", "")
    title = inner_text(meta.find("title-group/article-title"))
    common = compact({
        "pmid": pmid, "pmcid": pmcid, "doi": doi, "title": title,
        "journal": inner_text(article.find(".//journal-meta//journal-title"))
        or norm(article.findtext(".//journal-meta/journal-id[@journal-id-type='nlm-ta']")),
        "year": _year(meta),
        "url": pmc_url(pmcid) if pmcid else pubmed_url(pmid) if pmid else f"https://doi.org/{doi}" if doi else None,
        "source": "PMC", "source_type": "pmc",
    })
    sections = [(_abstract_name(a), a) for a in meta.iterfind("abstract")]
    body = article.find("body")
    if body is not None:
        lead = [c for c in body.iterchildren(etree.Element) if c.tag != "sec"]
        sections += [("Body", lead)] if lead else []
        sections += [(inner_text(s.find("title")) or "Section", s) for s in body.iterfind("sec")]
    n = 0
    for name, node in sections:
        if name.lower().rstrip(":") in _SKIP or not (text := _text(node)):
            continue
        doc_id = (f"pmc:{pmcid}#{n}" if pmcid else f"pmid:{pmid}#sec{n}" if pmid
                  else f"doi:{doi}#{n}" if doi else file_id(path, n))
        yield Document(id=doc_id, title=title, text=text, metadata={**common, "section": name.rstrip(":")})
        n += 1


def _abstract_name(abstract: etree._Element) -> str:
    """'Abstract', or the title (else the type) of a typed abstract such as an author summary."""
    kind = abstract.get("abstract-type")
    return (inner_text(abstract.find("title")) or kind.replace("-", " ").capitalize()) if kind else "Abstract"


def _text(node: etree._Element | list[etree._Element]) -> str:
    """The paragraphs of an element (or of a run of elements), separated by blank lines; the element's
    own title and label (the section name, kept in metadata) left out."""
    parts: list[str] = []
    for elem in node if isinstance(node, list) else [node]:
        elem = etree.fromstring(etree.tostring(elem, with_tail=False))  # a copy to strip and mark
        for heading in [*elem.iterchildren("title", "label")] if elem.tag in ("sec", "abstract") else []:
            elem.remove(heading)
        etree.strip_elements(elem, *_DROP, with_tail=False)
        for block in elem.iter(*_BLOCKS):
            block.text = _SEP + (block.text or "")
            block.tail = _SEP + (block.tail or "")
        parts += map(norm, "".join(elem.itertext()).split(_SEP))
    return "\n\n".join(p for p in parts if p)


def _year(meta: etree._Element) -> int | None:
    """Publication year: the issue's (ppub/collection) date first, then the electronic one, then any."""
    dates = {d.get("pub-type") or d.get("date-type"): d.findtext("year") for d in meta.iterfind("pub-date")}
    ordered = [dates[k] for k in _DATE_ORDER if k in dates] + list(dates.values())
    return next((y for y in map(year_of, ordered) if y), None)


