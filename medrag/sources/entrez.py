"""Live PubMed through NCBI E-utilities: one esearch on the history server, then efetch in resumable batches.

``download`` writes ``dest/efetch-{retstart:08d}.xml`` (each a complete, checked ``PubmedArticleSet``
written atomically) and ``dest/query.json``; a re-run with the same query and folder fetches only the
batches that are missing. The files are ordinary PubMed XML that ``medrag.readers`` reads as such.

What comes from Biopython (``Bio.Entrez``, 1.88 read): ``Entrez.read`` parses the esearch answer against
the eSearch DTD it ships (offline; an ``<ERROR>`` in the answer raises). Its request layer is not used:
``Entrez.esearch``/``efetch`` hard-code the NCBI URL (no base-URL setting), set no socket timeout, retry
HTTP 429/5xx at once without sleeping (``sleep_between_tries`` applies only to connection errors) and
ignore Retry-After. So the requests here are plain ``urllib`` with the same pacing as Biopython's
``_open`` (0.37 s between requests without an API key, about 0.1 s with one), exponential backoff that
honours Retry-After, a timeout, and the same parameters (email, tool, api_key; POST above 1,000 bytes).
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from io import BytesIO
from pathlib import Path
from typing import Any, TypeVar

from lxml import etree
from tqdm.auto import tqdm

from medrag.errors import MedRAGError
from medrag.fileio import write_atomic, write_json
from medrag.retry_after import retry_after
from medrag.readers._util import XML_SAFE

log = logging.getLogger(__name__)

__all__ = ["NCBI_EUTILS", "download", "parse_source"]

T = TypeVar("T")

NCBI_EUTILS = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
SOURCE_PREFIX = "pubmed:"
META_NAME = "query.json"

#: seconds between the starts of two requests: Biopython's 0.37 s without a key (it found 1/3 s sometimes
#: hit NCBI's 3/s limit) and 0.11 s with one, so that 11 requests never fit in one second
_INTERVAL = {False: 0.37, True: 0.11}
_MAX_BACKOFF = 60.0  # cap on one exponential backoff step, in seconds
_MAX_RETRY_AFTER = 300.0  # a server asking for a longer pause than this is not waited for
_POST_OVER = 1000  # like Biopython (and NCBI's advice): POST when the encoded parameters are longer
_PUBMED_WINDOW = 10_000  # PubMed's E-utilities serve only the first 10,000 records of a search
_BATCH_NAME = re.compile(r"efetch-\d{8}\.xml")
_RECORD_TAGS = frozenset({"PubmedArticle", "PubmedBookArticle"})
_META_FORMAT = 1


class _Pacer:
    """A process-wide request pacer: each request gets the next free start time (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self, interval: float) -> None:
        """Sleep until this caller's slot, at least ``interval`` s after the previous caller's."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + interval
        if start > now:
            time.sleep(start - now)


#: NCBI limits per user (IP or key), so every download in this process shares one pacer
_PACER = _Pacer()


class _Retry(Exception):
    """A failure worth another try: HTTP 429/5xx, a connection error or timeout, a malformed answer."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


def parse_source(spec: str) -> str | None:
    """The query of a ``pubmed:QUERY`` source given on the command line, else None."""
    if spec[:len(SOURCE_PREFIX)].lower() == SOURCE_PREFIX:
        return spec[len(SOURCE_PREFIX):].strip()
    return None


def download(query: str, dest: Path, *, max_records: int, email: str | None = None, api_key: str | None = None,
             base_url: str = NCBI_EUTILS, batch_size: int = 200, tool: str = "medrag", progress: bool = True,
             max_tries: int = 5, backoff: float = 2.0, timeout: float = 60.0) -> list[Path]:
    """Download up to ``max_records`` PubMed citations matching ``query`` into ``dest``; the batch files in order.

    esearch (``usehistory=y``) stores the result set on NCBI's history server; efetch then pulls it in
    batches of ``batch_size`` as PubMed XML. A batch already in ``dest`` from an earlier run of the same
    query is kept when the search still counts as many records; otherwise every batch is fetched again.
    A failed request is tried ``max_tries`` times in all, waiting ``backoff * 2**n`` s (or the server's
    Retry-After, if longer) between tries; then ``MedRAGError``.
    """
    query = (query or "").strip()
    if not query:
        raise MedRAGError("empty PubMed query")
    if not email or "@" not in email:
        raise MedRAGError("an email address is required for NCBI E-utilities (NCBI policy: "
                          "they contact it before blocking a client)" + (f"; got {email!r}" if email else ""))
    if max_records < 1:
        raise MedRAGError(f"max_records must be at least 1, got {max_records}")
    if not 1 <= batch_size <= 10_000:
        raise MedRAGError(f"batch_size must be between 1 and 10000, got {batch_size}")
    if max_tries < 1:
        raise MedRAGError(f"max_tries must be at least 1, got {max_tries}")
    scheme = urllib.parse.urlsplit(base_url).scheme
    if scheme not in {"http", "https"}:
        raise MedRAGError(f"E-utilities base URL must be http(s), got {base_url!r}")

    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MedRAGError(f"{dest}: cannot create folder ({e.strerror or e})") from e
    _remove_temp_files(dest)
    previous = _read_meta(dest)
    if previous is not None and previous.get("query") != query:
        raise MedRAGError(f"{dest} holds a download of another query ({previous.get('query')!r}); "
                          "choose another folder")

    client = _Client(base_url=base_url.rstrip("/") + "/", email=email.strip(), tool=tool,
                     api_key=api_key or None, max_tries=max_tries, backoff=backoff, timeout=timeout)
    search = client.call("esearch", {"db": "pubmed", "term": query, "usehistory": "y", "retmax": "0"},
                         "esearch", _parse_esearch)
    count = search["count"]
    total = min(count, max_records)
    if total > _PUBMED_WINDOW:
        log.warning("PubMed search %r counts %d records; NCBI serves only the first %d through E-utilities",
                    query, count, _PUBMED_WINDOW)
    if previous is not None and (previous.get("count"), previous.get("batch_size")) != (count, batch_size):
        log.warning("%s: the search now counts %d records in batches of %d (was %s in batches of %s): "
                    "fetching every batch again", dest, count, batch_size, previous.get("count"),
                    previous.get("batch_size"))
        for old in _batch_files(dest):
            old.unlink()
    meta = {"format": _META_FORMAT, "db": "pubmed", "query": query, "query_translation": search["translation"],
            "count": count, "max_records": max_records, "records": total, "batch_size": batch_size,
            "rettype": "abstract", "retmode": "xml", "complete": False}
    _write_meta(dest, meta)

    plan = [(start, min(batch_size, total - start)) for start in range(0, total, batch_size)]
    paths = [dest / f"efetch-{start:08d}.xml" for start, _ in plan]
    have = {start for (start, n), path in zip(plan, paths) if _records_in(path) == n}
    with tqdm(total=total, initial=sum(n for start, n in plan if start in have), unit="rec", desc="PubMed",
              disable=not progress) as bar:
        for (start, n), path in zip(plan, paths):
            if start in have:
                continue
            params = {"db": "pubmed", "query_key": search["query_key"], "WebEnv": search["webenv"],
                      "retstart": str(start), "retmax": str(n), "rettype": "abstract", "retmode": "xml"}
            what = f"efetch of records {start + 1}-{start + n}"
            data, got = client.call("efetch", params, what, lambda body, n=n: (body, _check_batch(body, n)))
            if got < n:
                log.warning("%s: %d of %d records returned", what, got, n)
            write_atomic(path, data)
            bar.update(n)
    _write_meta(dest, {**meta, "complete": True})
    log.info("PubMed %r: %d records in %d batch files under %s (%d fetched now)", query, total, len(paths),
             dest, len(paths) - len(have))
    return paths


class _Client:
    """E-utilities requests: common parameters, pacing, retries with backoff, one-line errors."""

    def __init__(self, *, base_url: str, email: str, tool: str, api_key: str | None, max_tries: int,
                 backoff: float, timeout: float) -> None:
        self.base_url, self.max_tries, self.backoff, self.timeout = base_url, max_tries, backoff, timeout
        self.common = {"email": email, "tool": tool, **({"api_key": api_key} if api_key else {})}
        self.interval = _INTERVAL[bool(api_key)]

    def call(self, utility: str, params: dict[str, str], what: str, check: Callable[[bytes], T]) -> T:
        """``check(body)`` of a successful request to ``{base_url}{utility}.fcgi``, after retries."""
        url = f"{self.base_url}{utility}.fcgi"
        encoded = urllib.parse.urlencode({**params, **self.common})
        for attempt in range(1, self.max_tries + 1):
            _PACER.wait(self.interval)
            try:
                return check(self._fetch(url, encoded, what))
            except _Retry as e:
                failure = e
            if attempt == self.max_tries:
                break
            delay = min(self.backoff * 2 ** (attempt - 1), _MAX_BACKOFF)
            if failure.retry_after is not None:
                if failure.retry_after > _MAX_RETRY_AFTER:
                    raise MedRAGError(f"{what} failed: {failure.reason} ({url}); the server asks to wait "
                                      f"{failure.retry_after:.0f} s")
                delay = max(delay, failure.retry_after)
            log.warning("%s: %s; try %d of %d in %.1f s", what, failure.reason, attempt + 1, self.max_tries, delay)
            time.sleep(delay)
        raise MedRAGError(f"{what} failed after {self.max_tries} tries: {failure.reason} ({url})")

    def _fetch(self, url: str, encoded: str, what: str) -> bytes:
        """The body of one GET (or POST, for long parameters); retryable failures raise ``_Retry``."""
        post = len(encoded) > _POST_OVER
        request = urllib.request.Request(url if post else f"{url}?{encoded}",
                                         data=encoded.encode() if post else None,
                                         headers={"User-Agent": f"{self.common['tool']} (medrag)"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            reason = f"HTTP {e.code} {e.reason}".rstrip()
            e.close()
            if e.code == 429 or e.code >= 500:
                raise _Retry(reason, retry_after(e.headers.get("Retry-After"))) from None
            raise MedRAGError(f"{what} failed: {reason} ({url})") from None
        except urllib.error.URLError as e:
            raise _Retry(f"cannot connect ({e.reason})") from None
        except (HTTPException, OSError) as e:  # timeouts, resets, truncated bodies
            raise _Retry(f"connection failed ({type(e).__name__}: {e})") from None


def _parse_esearch(body: bytes) -> dict[str, Any]:
    """Count, history-server session and query translation of an eSearchResult (via ``Entrez.read``)."""
    try:
        from Bio import Entrez
    except ImportError as e:
        raise MedRAGError("live PubMed needs Biopython: pip install biopython") from e
    try:
        record = Entrez.read(BytesIO(body), validate=False)  # tags newer than the shipped DTD are skipped
    except RuntimeError as e:  # an <ERROR> in the answer, e.g. a malformed query
        raise MedRAGError(f"esearch: NCBI answered with an error: {e}") from None
    except ValueError as e:  # not XML, or truncated
        raise _Retry(f"esearch answer is not a valid eSearchResult ({e})") from None
    try:
        result = {"count": int(record["Count"]), "query_key": str(record["QueryKey"]),
                  "webenv": str(record["WebEnv"]), "translation": str(record.get("QueryTranslation", ""))}
    except (KeyError, TypeError, ValueError) as e:
        raise _Retry(f"esearch answer lacks Count, QueryKey or WebEnv ({e})") from None
    for kind in ("ErrorList", "WarningList"):
        notes = {k: list(v) for k, v in (record.get(kind) or {}).items() if v}
        if notes:
            log.warning("esearch %s: %s", kind, notes)
    return result


def _check_batch(body: bytes, expected: int) -> int:
    """The number of citations in one efetch answer, after checking it is a PubmedArticleSet of them."""
    try:
        root = etree.fromstring(body, etree.XMLParser(**XML_SAFE))
    except etree.XMLSyntaxError as e:
        raise _Retry(f"malformed XML in the answer ({e})") from None
    tag = etree.QName(root).localname
    if tag != "PubmedArticleSet":
        error = " ".join(root.xpath("string(//ERROR)").split()) if tag == "eFetchResult" else ""
        raise _Retry(f"NCBI error: {error}" if error else f"expected a PubmedArticleSet, got <{tag}>")
    got = sum(1 for child in root if isinstance(child.tag, str) and etree.QName(child).localname in _RECORD_TAGS)
    if not 0 < got <= expected:
        raise _Retry(f"{got} citations in the answer, expected {expected}")
    return got


def _records_in(path: Path) -> int | None:
    """How many citations a batch file from an earlier run holds, or None if it is absent or unusable."""
    if not path.is_file():
        return None
    try:
        return _check_batch(path.read_bytes(), _PUBMED_WINDOW)
    except (_Retry, OSError) as e:
        log.warning("%s: cannot reuse (%s); fetching it again", path, e)
        return None


def _batch_files(dest: Path) -> list[Path]:
    """The batch files present in ``dest``, in order."""
    return sorted(p for p in dest.iterdir() if _BATCH_NAME.fullmatch(p.name))


def _remove_temp_files(dest: Path) -> None:
    """Delete the half-written files an interrupted run left (hidden, so readers skip them anyway)."""
    for pattern in (".efetch-*.xml.*.tmp", f".{META_NAME}.*.tmp"):
        for tmp in dest.glob(pattern):
            tmp.unlink(missing_ok=True)


def _read_meta(dest: Path) -> dict[str, Any] | None:
    """The ``query.json`` of an earlier run, if any."""
    path = dest / META_NAME
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MedRAGError(f"{path}: unreadable ({e}); remove it or choose another folder") from e
    if not isinstance(meta, dict):
        raise MedRAGError(f"{path}: not a medrag PubMed download record; choose another folder")
    return meta


def _write_meta(dest: Path, meta: dict[str, Any]) -> None:
    """Write ``query.json`` atomically."""
    write_json(dest / META_NAME, meta)
