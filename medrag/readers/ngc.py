"""National Guideline Clearinghouse (NGC) guideline summaries: ``<Version><Section Name><Field Name
Type><FieldValue Value="escaped HTML"/>``.

One Document per field worth retrieving, not one per guideline: a summary's indexed text averages
~24,000 characters, and a field (Major Recommendations, Potential Harms ...) is the unit a citation
should point at, with ``section`` = the field name; the rating scheme is kept so that a "grade B"
in a recommendation can be looked up. The short scope fields (condition, category, specialty, users,
objectives, population, interventions, outcomes) are gathered into one "Scope" Document, as
``Name: value`` paragraphs: alone each is a few words, together they say what the guideline covers.
Methodology, disclosure, availability and disclaimer fields are not indexed, nor are placeholder
values such as "None provided". Values are HTML, turned into text by inscriptis (paragraphs, lists
as ``* `` items, tables laid out as text).

Metadata: ``title`` (Guideline Title), ``source`` (the Guideline Developer(s), their type such as
"Federal Government Agency [U.S.]" dropped, joined by "; "), ``year`` (the latest year in Date
Released, i.e. that of the revision summarised), ``url`` (the first link of Guideline
Availability: the files carry no NGC address), ``pmid`` (the PubMed link of the Bibliographic
Source, when there is one), ``source_type`` "guideline". Ids are ``ngc:{number}#{field slug}``
(``ngc:10008#major-recommendations`` for ``ngc-10008.xml``).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from inscriptis import get_text
from lxml import etree, html

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.readers._util import XML_SAFE, compact, norm, open_bytes, reader, tidy, year_of

log = logging.getLogger(__name__)

#: fields indexed one Document each, in this order
FIELDS = ("Major Recommendations", "Clinical Algorithm(s)", "Contraindications", "FDA Warning/Regulatory Alert",
          "Potential Benefits", "Potential Harms", "Qualifying Statements",
          "Rating Scheme for the Strength of the Recommendations")
#: fields gathered into the "Scope" Document
SCOPE = ("Disease/Condition(s)", "Other Disease/Condition(s) Addressed", "Guideline Category",
         "Clinical Specialty", "Intended Users", "Guideline Objective(s)", "Target Population",
         "Interventions and Practices Considered", "Major Outcomes Considered")
_PLACEHOLDERS = frozenset({"none provided", "none available", "not stated", "not applicable", "none"})


@reader
def read(path: Path) -> Iterator[Document | Deletion]:
    """Yield the Scope Document and one per indexed field of one guideline summary."""
    with open_bytes(path) as fh:
        root = etree.parse(fh, etree.XMLParser(**XML_SAFE)).getroot()
    values: dict[str, list[str]] = {}
    for field in root.iter("Field"):  # a field may occur in two sections: its first values count
        values.setdefault(field.get("Name") or "", [v.get("Value") or "" for v in field.iter("FieldValue")])
    title = _text(values.get("Guideline Title", []))
    if not title:
        raise MedRAGError(f"{path}: not an NGC guideline summary (no Guideline Title field)")
    developers = [d.rpartition(" - ")[0] or d for d in _texts(values.get("Guideline Developer(s)", []))]
    links = _links(values.get("Guideline Availability", []))
    pubmed = [parse_qs(urlparse(u).query).get("list_uids", [""])[0] for u in
              _links(values.get("Bibliographic Source(s)", []))]
    common = compact({
        "title": title,
        "year": year_of(_text(values.get("Date Released", [])), last=True),
        "url": links[0] if links else None,
        "pmid": next((p for p in pubmed if p.isdigit()), None),
        "source": "; ".join(dict.fromkeys(filter(None, developers))),
        "source_type": "guideline",
    })
    scope = [f"{name}:\n{text}" if "\n" in text else f"{name}: {text}"
             for name in SCOPE if (text := _value(values.get(name, [])))]
    stem = path.name.split(".")[0].removeprefix("ngc-")
    sections = [("Scope", "\n\n".join(scope))] + [(name, _value(values.get(name, []))) for name in FIELDS]
    for name, text in sections:
        if text:
            yield Document(id=f"ngc:{stem}#{_slug(name)}", title=title, text=text,
                           metadata={**common, "section": name})


def _texts(values: list[str]) -> list[str]:
    """The text of each of a field's (HTML) values."""
    return [t for t in (tidy(get_text(v)) for v in values if v.strip()) if t]


def _text(values: list[str]) -> str:
    """A field's text: one-line values (a picklist's choices) joined by "; ", longer ones as paragraphs."""
    texts = _texts(values)
    return ("\n\n" if any("\n" in t for t in texts) else "; ").join(texts)


def _value(values: list[str]) -> str:
    """A field's text, or "" for a placeholder such as "None provided"."""
    text = _text(values)
    return "" if norm(text).rstrip(".").lower() in _PLACEHOLDERS else text


def _links(values: list[str]) -> list[str]:
    """The http(s) links of a field's HTML values, in order."""
    hrefs = (a.get("href") or "" for v in values if v.strip()
             for a in html.fragment_fromstring(v, create_parent="div").iter("a"))
    return [h for h in hrefs if h.startswith(("http://", "https://"))]


def _slug(name: str) -> str:
    """``Potential Harms`` -> ``potential-harms``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
