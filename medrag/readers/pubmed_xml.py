"""PubMed/MEDLINE XML (``PubmedArticleSet`` or ``MedlineCitationSet``, plain or gzipped), streamed.

``parse(source, name)`` reads a path or an open binary file object (an efetch response, say);
``read(path)`` is the registry's entry point.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from medrag.documents import Deletion, Document
from medrag.readers._util import XML_SAFE, inner_text, norm, open_bytes, parse_errors, pubmed_record, year_of

log = logging.getLogger(__name__)

_TAGS = ("PubmedArticle", "MedlineCitation", "DeleteCitation")


def read(path: Path) -> Iterator[Document | Deletion]:
    """Yield one Document per citation with a title or abstract, one Deletion per deleted PMID."""
    return parse(Path(path))


def parse(source: BinaryIO | Path | str, name: str | None = None) -> Iterator[Document | Deletion]:
    """Documents and Deletions of PubMed XML from a path (gzip or not) or an open binary file of plain XML.

    ``name`` (default: the path, or the file object's ``name``) is what error messages call the source.
    """
    path = isinstance(source, (str, Path))
    name = name or str(source if path else getattr(source, "name", "<stream>"))
    with parse_errors(name):
        if path:
            with open_bytes(Path(source)) as fh:
                yield from _parse(fh)
        else:
            yield from _parse(source)


def _parse(fh: BinaryIO) -> Iterator[Document | Deletion]:
    """Stream the citations and deletions of one XML byte stream, freeing each element once read."""
    for _, elem in etree.iterparse(fh, events=("end",), tag=_TAGS, **XML_SAFE):
        if elem.tag == "MedlineCitation":
            parent = elem.getparent()
            if parent is not None and parent.tag == "PubmedArticle":
                continue  # handled with its PubmedArticle
            yield from _citation(elem, None)
        elif elem.tag == "PubmedArticle":
            yield from _citation(elem.find("MedlineCitation"), elem)
        else:
            for pmid in elem.iterfind("PMID"):
                yield Deletion(id=f"pmid:{norm(pmid.text)}")
        elem.clear(keep_tail=True)
        while elem.getprevious() is not None:
            del elem.getparent()[0]


def _citation(mc: etree._Element | None, article: etree._Element | None) -> Iterator[Document]:
    """The Document of one MedlineCitation (and its PubmedArticle wrapper, for the DOI), if any."""
    pmid = norm(mc.findtext("PMID")) if mc is not None else ""
    art = mc.find("Article") if mc is not None else None
    if not pmid or art is None:
        return
    title = inner_text(art.find("ArticleTitle")) or inner_text(art.find("VernacularTitle"))
    paragraphs: list[str] = []
    labels: list[str] = []
    for node in art.iterfind("Abstract/AbstractText"):
        text, label = inner_text(node), norm(node.get("Label"))
        label = "" if label == "UNLABELLED" else label  # MEDLINE's mark of an unlabelled paragraph
        if label:
            labels.append(label)
        if text:
            paragraphs.append(f"{label}: {text}" if label else text)
    if not title and not paragraphs:
        log.debug("pmid %s has neither title nor abstract: skipped", pmid)
        return
    journal = art.find("Journal")
    mesh = mc.find("MeshHeadingList")
    doi = art.findtext("ELocationID[@EIdType='doi']")
    if not doi and article is not None:
        doi = article.findtext("PubmedData/ArticleIdList/ArticleId[@IdType='doi']")
    yield pubmed_record(
        pmid, title, "\n\n".join(paragraphs), "PubMed",
        journal=norm((journal.findtext("Title") if journal is not None else None)
                     or mc.findtext("MedlineJournalInfo/MedlineTA")),
        year=_year(art, journal),
        doi=norm(doi),
        mesh=[norm(d.text) for d in mesh.iter("DescriptorName")] if mesh is not None else [],
        sections=labels or None,
    )


def _year(art: etree._Element, journal: etree._Element | None) -> int | None:
    """Publication year: PubDate/Year, else the first 4-digit run of MedlineDate, else ArticleDate/Year."""
    date = journal.find("JournalIssue/PubDate") if journal is not None else None
    for text in (date.findtext("Year"), date.findtext("MedlineDate")) if date is not None else ():
        if year := year_of(text):
            return year
    return year_of(art.findtext("ArticleDate/Year"))
