"""Live PubMed download (``medrag.sources.entrez``) against a real HTTP server on 127.0.0.1.

The server speaks the E-utilities protocol (esearch with a history-server session, efetch by
WebEnv/query_key/retstart/retmax) and serves real PubMed XML: the 30 citations of one MEDLINE update file.
"""
from __future__ import annotations

import gzip
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from medrag.errors import MedRAGError
from medrag.readers import read, sniff
from medrag.sources.entrez import download, parse_source

from .conftest import MEDLINE

SOURCE = MEDLINE / "pmparser" / "pubmed26n1334.xml.gz"
EMAIL = "medrag-tests@example.org"
QUERY = "uric acid[tiab] AND kidney"

ESEARCH_HEAD = (b'<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch '
                b'20060628//EN" "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n')
EFETCH_HEAD = (b'<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January '
               b'2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n')


def _load_articles() -> list[tuple[str, bytes]]:
    """(PMID, serialized PubmedArticle) of every citation in ``SOURCE``, in file order."""
    with gzip.open(SOURCE) as fh:
        root = etree.parse(fh).getroot()
    return [(a.findtext("MedlineCitation/PMID"), etree.tostring(a, encoding="utf-8", xml_declaration=False))
            for a in root.iterfind("PubmedArticle")]


ARTICLES = _load_articles()
PMIDS = [pmid for pmid, _ in ARTICLES]


@dataclass
class Hit:
    """One request as the server saw it."""

    t: float  # time.monotonic() on arrival
    utility: str  # "esearch" or "efetch"
    params: dict[str, str]
    status: int = 200


@dataclass
class EUtils:
    """State of the fake E-utilities: the request log and scripted failures."""

    log: list[Hit] = field(default_factory=list)
    #: "esearch" or "efetch:RETSTART" -> statuses to answer, one per request, before answering normally
    script: dict[str, list[int]] = field(default_factory=dict)
    #: "esearch", "efetch:RETSTART" or "*" -> a status answered to every such request
    always: dict[str, int] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def requests(self, utility: str) -> list[Hit]:
        return [h for h in self.log if h.utility == utility]

    def answer(self, utility: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one request, logging it."""
        with self.lock:
            hit = Hit(time.monotonic(), utility, params)
            self.log.append(hit)
            key = utility if utility == "esearch" else f"efetch:{params.get('retstart', '0')}"
            status = self.always.get(key) or self.always.get("*")
            if status is None and self.script.get(key):
                status = self.script[key].pop(0)
            if status is None:
                status, headers, body = self._ok(utility, params)
            else:
                headers = {"Retry-After": "1"} if status == 429 else {}
                body = b"<html><body>busy</body></html>"
            hit.status = status
            return status, headers, body

    def _ok(self, utility: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if utility == "esearch":
            webenv = f"MCID_medrag_test_{len(self.sessions) + 1}"
            self.sessions.add(webenv)
            retmax = int(params.get("retmax", "20"))
            ids = "".join(f"<Id>{pmid}</Id>" for pmid in PMIDS[:retmax])
            body = (f"<eSearchResult><Count>{len(PMIDS)}</Count><RetMax>{min(retmax, len(PMIDS))}</RetMax>"
                    f"<RetStart>0</RetStart><QueryKey>1</QueryKey><WebEnv>{webenv}</WebEnv><IdList>{ids}</IdList>"
                    f"<TranslationSet/><QueryTranslation>{escape(params.get('term', ''))}</QueryTranslation>"
                    "</eSearchResult>\n")
            return 200, {}, ESEARCH_HEAD + body.encode()
        if params.get("WebEnv") not in self.sessions or params.get("query_key") != "1":
            return 200, {}, b"<eFetchResult><ERROR>Unable to obtain query #1</ERROR></eFetchResult>\n"
        start, count = int(params["retstart"]), int(params["retmax"])
        records = b"\n".join(xml for _, xml in ARTICLES[start:start + count])
        return 200, {}, EFETCH_HEAD + b"<PubmedArticleSet>\n" + records + b"\n</PubmedArticleSet>\n"


def _handler(state: EUtils) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, query: str) -> None:
            path = urllib.parse.urlsplit(self.path).path
            utility = path.rsplit("/", 1)[-1].removesuffix(".fcgi")
            if utility not in {"esearch", "efetch"}:
                self.send_error(404)
                return
            params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
            status, headers, body = state.answer(utility, params)
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(urllib.parse.urlsplit(self.path).query)

        def do_POST(self) -> None:  # noqa: N802
            self._serve(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture()
def eutils(monkeypatch: pytest.MonkeyPatch) -> Iterator[EUtils]:
    """A running fake E-utilities server on 127.0.0.1 (stopped after the test)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # requests go to 127.0.0.1 directly, nowhere else
    state = EUtils()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/entrez/eutils/"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _fetch(server: EUtils, dest: Path, query: str = QUERY, **kw: object) -> list[Path]:
    """``download`` from the fake server: 30 records in batches of 5 unless told otherwise."""
    options = {"max_records": 30, "email": EMAIL, "base_url": server.url, "batch_size": 5, "progress": False,
               **kw}
    return download(query, dest, **options)  # type: ignore[arg-type]


def _pmids(paths: list[Path]) -> list[str]:
    """The PMIDs of the citations in the batch files, in order."""
    return [pmid for p in paths
            for pmid in etree.parse(str(p)).getroot().xpath("PubmedArticle/MedlineCitation/PMID/text()")]


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most requests that arrived within any half-open ``window`` seconds."""
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times)), default=0)


def test_download_all_in_batches(eutils: EUtils, tmp_path: Path) -> None:
    paths = _fetch(eutils, tmp_path / "dl", progress=True)
    assert [p.name for p in paths] == [f"efetch-{i:08d}.xml" for i in range(0, 30, 5)]
    pmids = _pmids(paths)
    assert sorted(pmids) == sorted(PMIDS) and len(pmids) == 30
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == sorted([*(p.name for p in paths), "query.json"])

    (search,) = eutils.requests("esearch")
    assert search.params == {"db": "pubmed", "term": QUERY, "usehistory": "y", "retmax": "0", "email": EMAIL,
                             "tool": "medrag"}
    fetches = eutils.requests("efetch")
    assert [f.params["retstart"] for f in fetches] == [str(i) for i in range(0, 30, 5)]
    for f in fetches:
        assert f.params == {"db": "pubmed", "query_key": "1", "WebEnv": "MCID_medrag_test_1",
                            "retstart": f.params["retstart"], "retmax": "5", "rettype": "abstract",
                            "retmode": "xml", "email": EMAIL, "tool": "medrag"}
    # the batches are ordinary PubMed XML to the readers
    assert sniff(paths[0]) == "pubmed_xml"
    assert [d.id for d in read(paths[0])] == [f"pmid:{p}" for p in PMIDS[:5]]


def test_rate_without_key_at_most_three_per_second(eutils: EUtils, tmp_path: Path) -> None:
    _fetch(eutils, tmp_path / "dl", batch_size=3)  # 1 esearch + 10 efetch
    times = [h.t for h in eutils.log]
    assert len(times) == 11
    assert _max_in_window(times) <= 3
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.3


def test_rate_with_key_is_faster_and_sends_key(eutils: EUtils, tmp_path: Path) -> None:
    _fetch(eutils, tmp_path / "dl", batch_size=2, tool="medrag-test", api_key="k3y")  # 1 + 15 requests
    times = [h.t for h in eutils.log]
    assert len(times) == 16
    assert all(h.params["api_key"] == "k3y" and h.params["tool"] == "medrag-test" for h in eutils.log)
    assert 3 < _max_in_window(times) <= 10
    assert times[-1] - times[0] < 15 * 0.33  # faster than the keyless pace


def test_retries_429_then_503_with_backoff(eutils: EUtils, tmp_path: Path) -> None:
    eutils.script["efetch:10"] = [429, 503]
    paths = _fetch(eutils, tmp_path / "dl", backoff=0.2)
    assert sorted(_pmids(paths)) == sorted(PMIDS)
    tries = [h for h in eutils.requests("efetch") if h.params["retstart"] == "10"]
    assert [h.status for h in tries] == [429, 503, 200]
    assert tries[1].t - tries[0].t >= 0.95  # Retry-After: 1 outweighs the 0.2 s first backoff
    assert tries[2].t - tries[1].t >= 0.38  # second backoff: 0.2 * 2
    assert _max_in_window([h.t for h in eutils.log]) <= 3


def test_server_error_gives_up_after_bounded_tries(eutils: EUtils, tmp_path: Path) -> None:
    eutils.always["*"] = 500
    started = time.monotonic()
    with pytest.raises(MedRAGError, match=r"esearch failed after 3 tries: HTTP 500") as err:
        _fetch(eutils, tmp_path / "dl", max_tries=3, backoff=0.05)
    assert "\n" not in str(err.value)
    assert [h.status for h in eutils.log] == [500, 500, 500]
    assert time.monotonic() - started < 5
    assert not list((tmp_path / "dl").glob("efetch-*"))


def test_client_error_is_not_retried(eutils: EUtils, tmp_path: Path) -> None:
    eutils.always["esearch"] = 400
    with pytest.raises(MedRAGError, match=r"^esearch failed: HTTP 400 Bad Request \(http://127\.0\.0\.1:\d+/"):
        _fetch(eutils, tmp_path / "dl", max_tries=3, backoff=0.05)
    assert len(eutils.log) == 1


def test_connection_refused_is_retried_then_fails(tmp_path: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]  # bound then closed: nothing listens there any more
    with pytest.raises(MedRAGError, match=r"esearch failed after 2 tries: cannot connect"):
        download(QUERY, tmp_path / "dl", max_records=5, email=EMAIL, base_url=f"http://127.0.0.1:{port}/",
                 progress=False, max_tries=2, backoff=0.05)


def test_esearch_error_is_reported_not_retried(eutils: EUtils, tmp_path: Path) -> None:
    eutils._ok = lambda utility, params: (  # type: ignore[method-assign]
        200, {}, ESEARCH_HEAD + b"<eSearchResult><ERROR>Invalid query syntax</ERROR></eSearchResult>\n")
    with pytest.raises(MedRAGError, match=r"^esearch: NCBI answered with an error: Invalid query syntax$"):
        _fetch(eutils, tmp_path / "dl", max_tries=3, backoff=0.05)
    assert len(eutils.log) == 1


def test_malformed_batch_is_not_kept(eutils: EUtils, tmp_path: Path) -> None:
    original = eutils._ok

    def truncated(utility: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = original(utility, params)
        return (status, headers, body[:len(body) // 2]) if params.get("retstart") == "5" else (status, headers, body)

    eutils._ok = truncated  # type: ignore[method-assign]
    with pytest.raises(MedRAGError, match=r"efetch of records 6-10 failed after 2 tries: malformed XML"):
        _fetch(eutils, tmp_path / "dl", max_tries=2, backoff=0.05)
    assert [p.name for p in (tmp_path / "dl").iterdir() if p.name != "query.json"] == ["efetch-00000000.xml"]


def test_resume_fetches_only_missing_batches(eutils: EUtils, tmp_path: Path) -> None:
    dest = tmp_path / "dl"
    eutils.always["efetch:15"] = 500
    with pytest.raises(MedRAGError, match=r"efetch of records 16-20 failed after 2 tries: HTTP 500"):
        _fetch(eutils, dest, max_tries=2, backoff=0.05)
    kept = sorted(p.name for p in dest.iterdir())
    assert kept == ["efetch-00000000.xml", "efetch-00000005.xml", "efetch-00000010.xml", "query.json"]
    before = {p.name: p.stat().st_mtime_ns for p in dest.glob("efetch-*")}

    del eutils.always["efetch:15"]
    eutils.log.clear()
    paths = _fetch(eutils, dest)
    assert sorted(_pmids(paths)) == sorted(PMIDS)
    assert [h.params["retstart"] for h in eutils.requests("efetch")] == ["15", "20", "25"]
    assert all(h.params["WebEnv"] == "MCID_medrag_test_2" for h in eutils.requests("efetch"))  # a new session
    assert {n: (dest / n).stat().st_mtime_ns for n in before} == before  # old batches untouched

    eutils.log.clear()
    assert _fetch(eutils, dest) == paths  # complete: only the esearch
    assert [h.utility for h in eutils.log] == ["esearch"]

    eutils.log.clear()
    _fetch(eutils, dest, max_records=12)  # fewer records: the last batch is a short one, refetched
    assert [(h.params["retstart"], h.params["retmax"]) for h in eutils.requests("efetch")] == [("10", "2")]


def test_changed_result_set_refetches_everything(eutils: EUtils, tmp_path: Path) -> None:
    dest = tmp_path / "dl"
    _fetch(eutils, dest, max_records=10)
    meta = json.loads((dest / "query.json").read_text())
    assert meta | {"query_translation": None} == {
        "format": 1, "db": "pubmed", "query": QUERY, "query_translation": None, "count": 30, "max_records": 10,
        "records": 10, "batch_size": 5, "rettype": "abstract", "retmode": "xml", "complete": True}
    (dest / "query.json").write_text(json.dumps({**meta, "count": 29}))  # as if PubMed had grown since
    eutils.log.clear()
    _fetch(eutils, dest, max_records=10)
    assert [h.params["retstart"] for h in eutils.requests("efetch")] == ["0", "5"]


def test_other_query_in_same_folder_is_refused(eutils: EUtils, tmp_path: Path) -> None:
    _fetch(eutils, tmp_path / "dl", max_records=5)
    with pytest.raises(MedRAGError, match=r"holds a download of another query"):
        _fetch(eutils, tmp_path / "dl", max_records=5, query="asthma[mh]")


def test_missing_email_and_source_spec(tmp_path: Path) -> None:
    for email in (None, "", "   ", "nobody"):
        with pytest.raises(MedRAGError, match=r"email address is required"):
            download(QUERY, tmp_path / "dl", max_records=5, email=email, base_url="http://127.0.0.1:9/")
    with pytest.raises(MedRAGError, match=r"email address is required"):
        download(QUERY, tmp_path / "dl", max_records=5, base_url="http://127.0.0.1:9/")
    assert not (tmp_path / "dl").exists()  # refused before touching disk or network
    assert parse_source("pubmed:asthma[mh]") == "asthma[mh]"
    assert parse_source("PubMed: asthma AND child[mh] ") == "asthma AND child[mh]"
    assert parse_source("corpora/quickstart.toml") is None
    assert parse_source("/data/pubmed/x.xml") is None


def test_cli_ingests_a_live_query_then_resumes_from_the_downloads(eutils: EUtils, tmp_path: Path) -> None:
    """`medrag ingest "pubmed:QUERY"` end to end: esearch + efetch from the local server, then a cited answer."""
    from .conftest import medrag_cli

    index = tmp_path / "live"
    args = ("ingest", f"pubmed:{QUERY}", "--index", index, "--max", "12", "--email", EMAIL,
            "--eutils-url", eutils.url, "--quiet")
    first = medrag_cli(*args, check=True)
    assert "12 documents added" in first.stderr
    assert len(eutils.requests("efetch")) == 1 and eutils.requests("efetch")[0].params["retmax"] == "12"
    info = json.loads(medrag_cli("info", "--index", index, "--json", check=True).stdout)
    assert info["documents"] == 12 and set(info["sources"]) == {"pubmed"}
    answer = json.loads(medrag_cli("ask", "uric acid and kidney function", "--index", index, "--json",
                                   check=True).stdout)
    assert {c["pmid"] for c in answer["citations"]} <= set(PMIDS[:12])
    medrag_cli(*args, check=True)  # a re-run reuses the downloaded batch: one more esearch, no efetch
    assert len(eutils.requests("efetch")) == 1 and len(eutils.requests("esearch")) == 2
    missing = medrag_cli("ingest", f"pubmed:{QUERY}", "--index", tmp_path / "other", "--eutils-url", eutils.url)
    assert missing.returncode == 2 and "email" in missing.stderr and not eutils.requests("esearch")[2:]
