"""Encryption at rest (``medrag ingest --encrypt``): every file of an index sealed with AES-256-GCM under a
scrypt-stretched passphrase; the same answers with the key; a missing or wrong key, or a changed byte, is one
clear line (exit 2 on the command line); an interrupted encrypted ingest resumes; the server serves one.

Real parts throughout: the MiniLM embedder, FAISS, bm25s, SQLite, the CLI and the server as subprocesses.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medrag import MedRAG, MedRAGError, Settings
from medrag.deid import Deidentifier, index_keyed
from medrag.embedding import Embedder
from medrag.lexical.bm25s_store import BM25Store
from medrag.stores import layout, sealed
from medrag.stores.sealed import IndexKey, IndexKeyError, SealError

from .conftest import MEDQUAD
from .test_ingest import _state

NOTES = Path(__file__).parent / "data" / "notes"
NOTE_FILES = [NOTES / "ed_note.txt", NOTES / "clinic_letter.txt", NOTES / "radiology.csv", NOTES / "discharge.csv"]
MPLUS = MEDQUAD / "4_MPlus_Health_Topics_QA"
TEXT_FILES = [MPLUS / "0000107.xml", MPLUS / "0000471.xml", MEDQUAD / "8_NHLBI_QA_XML" / "0000071.xml",
              MEDQUAD / "9_CDC_QA" / "0000001.xml"]
CORPUS = [*TEXT_FILES, *NOTE_FILES]
PASSPHRASE = "correct horse battery staple"
QUESTIONS = ["What are the symptoms of high blood pressure?", "torsemide for heart failure",
             "portal vein patency on ultrasound", "Which medicines lower blood pressure?"]
#: headers of the stores' plaintext formats: SQLite, FAISS (IDMap2, flat IP), .npy, zip/npz, JSON
MAGICS = (b"SQLite format 3", b"IxM2", b"IxFI", b"\x93NUMPY", b"PK\x03\x04")
KEYS_ENV = (sealed.KEY_ENV, "MEDRAG_DEID_KEY")


def _phi() -> set[str]:
    lines = (NOTES / "planted_phi.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = [line.split("\t") for line in lines if line.strip()]
    return {row[2] for row in rows if row[0] in {p.name for p in NOTE_FILES} and len(row[2]) >= 6}


def _cli(*args: Any, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``medrag ARGS`` as a user runs it, with exactly ``env``'s index and de-id keys."""
    clean = {k: v for k, v in os.environ.items() if k not in KEYS_ENV}
    return subprocess.run([sys.executable, "-m", "medrag.cli", *map(str, args)], capture_output=True, text=True,
                          check=False, timeout=timeout, env={**clean, "HF_HUB_OFFLINE": "1", **(env or {})})


def _one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("medrag: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert all(w in result.stderr for w in words), result.stderr


def _top(rag: MedRAG, retriever: str | None = None) -> list[list[tuple[str, float]]]:
    return [[(h.chunk.text, round(h.score, 4)) for h in rag.retrieve(q, k=5, retriever=retriever)] for q in QUESTIONS]


@pytest.fixture(autouse=True)
def _no_keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEYS_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> dict[str, Any]:
    """The same corpus (plain text and synthetic notes) ingested plaintext and encrypted; the encrypted ingest
    runs with its temporary directory pointed at a scratch folder, to show it writes nothing there."""
    root = tmp_path_factory.mktemp("encryption")
    scratch = root / "tmp"
    scratch.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for name in KEYS_ENV:
            mp.delenv(name, raising=False)
        plain = MedRAG(Settings(threads=1).replace(**{"lexical.backend": "bm25s"}))  # what an encrypted one gets
        plain.embedder = embedder
        plain.ingest(CORPUS, save_to=root / "plain", progress=False)
        mp.setenv("TMPDIR", str(scratch))
        mp.setattr(tempfile, "tempdir", str(scratch))
        encrypted = MedRAG(Settings(threads=1), key=PASSPHRASE)
        encrypted.embedder = embedder
        with index_keyed(encrypted.key):
            encrypted.ingest(CORPUS, save_to=root / "encrypted", progress=False)
    return {"plain": root / "plain", "encrypted": root / "encrypted", "scratch": scratch, "rag": plain}


def _load(directory: Path, embedder: Embedder, **kwargs: Any) -> MedRAG:
    rag = MedRAG.load(directory, threads=1, **kwargs)
    rag.embedder = embedder
    return rag


# -- nothing in plaintext ------------------------------------------------------------------------------------
def test_no_file_holds_plaintext(built: dict[str, Any]) -> None:
    rag: MedRAG = built["rag"]
    chunks = rag.chunks.get(rag.chunks.ids())
    assert {c.metadata.get("source_type") for c in chunks.values()} >= {"clinical_note", "consumer_health"}
    words = {w for c in chunks.values() for w in re.findall(r"[A-Za-z]{10,}", c.text)}
    needles = [w.encode() for w in sorted(words)][:400] + [p.encode() for p in _phi()]
    needles += [p.name.encode() for p in CORPUS] + [b"all-MiniLM-L6-v2", b"clinical_note"]
    vectors = rag.vectors.vectors_of(rag.chunks.ids())  # embeddings can be inverted to text: none in the clear
    assert len(words) > 100 and len(vectors) == len(chunks)

    plain_files = [p for p in built["plain"].rglob("*") if p.is_file()]
    plain_text = b"".join(p.read_bytes() for p in plain_files)
    assert sum(n in plain_text for n in needles) > 100  # the check does see text where it is stored in the clear
    assert any(m in plain_text for m in MAGICS[:2]) and vectors[0].tobytes() in plain_text

    files = sorted(p for p in built["encrypted"].rglob("*") if p.is_file())
    assert [p.name for p in files] == ["chunks.1.enc", "lexical.1.enc", "manifest.json", "settings.1.enc",
                                       "vectors.1.enc"]
    for path in files:
        data = path.read_bytes()
        assert not [n for n in needles if n in data or n.lower() in data.lower()], path.name
        assert not [m for m in MAGICS if m in data], path.name
        if path.name != "manifest.json":
            assert data.startswith(sealed.MAGIC) and path.stat().st_mode & 0o077 == 0
    sealed_text = b"".join(p.read_bytes() for p in files)
    assert not [v for v in vectors if v.tobytes()[:32] in sealed_text]
    manifest = json.loads((built["encrypted"] / "manifest.json").read_text())
    assert set(manifest) == {"format", "generation", "files", "saved", "encryption", "mac"}
    assert manifest["encryption"]["cipher"] == "AES-256-GCM" and manifest["encryption"]["kdf"]["name"] == "scrypt"
    assert [p for p in built["scratch"].rglob("*")] == []  # no temporary file either


# -- the same answers with the key ---------------------------------------------------------------------------
def test_loads_with_the_key_and_answers_the_same(built: dict[str, Any], embedder: Embedder,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _load(built["plain"], embedder)
    encrypted = _load(built["encrypted"], embedder, key=PASSPHRASE)
    assert encrypted.key is not None and plain.key is None
    assert _top(encrypted) == _top(plain) and _top(encrypted, "bm25") == _top(plain, "bm25")
    assert all(_top(plain))
    info, want = encrypted.info(), plain.info()
    assert {k: info[k] for k in ("documents", "chunks", "vectors", "bm25_rows", "sources")} == \
        {k: want[k] for k in ("documents", "chunks", "vectors", "bm25_rows", "sources")}
    monkeypatch.setenv(sealed.KEY_ENV, PASSPHRASE)  # the key from the environment
    assert _top(_load(built["encrypted"], embedder)) == _top(plain)
    answer = encrypted.ask(QUESTIONS[0])
    assert answer.citations and answer.citations[0].text


def test_missing_or_wrong_key_is_one_clear_error(built: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(IndexKeyError, match="is encrypted: give its key") as missing:
        MedRAG.load(built["encrypted"])
    with pytest.raises(IndexKeyError, match="wrong key") as wrong:
        MedRAG.load(built["encrypted"], key="correct horse battery stapler")
    assert "\n" not in str(missing.value) + str(wrong.value)
    assert MedRAG.load(built["plain"], key="anything").key is None  # a plaintext index ignores a key
    _one_line_error(_cli("info", "--index", built["encrypted"]), "is encrypted", "--key-file")
    key_file = tmp_path / "wrong.key"
    key_file.write_text("not the passphrase\n")
    key_file.chmod(0o600)
    _one_line_error(_cli("info", "--index", built["encrypted"], "--key-file", key_file), "wrong key")
    _one_line_error(_cli("ask", "What is hypertension?", "--index", built["encrypted"],
                         env={sealed.KEY_ENV: "nope"}), "wrong key")
    key_file.write_text(PASSPHRASE + "\n")  # a key file's final newline is not part of the key
    shown = _cli("info", "--index", built["encrypted"], "--key-file", key_file, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["sources"]["clinical_note"]["documents"] > 5


def test_a_flipped_byte_in_any_file_is_refused(built: dict[str, Any], tmp_path: Path) -> None:
    index = Path(shutil.copytree(built["encrypted"], tmp_path / "index"))
    messages = {}
    for path in sorted(index.iterdir()):
        original = path.read_bytes()
        changed = bytearray(original)
        changed[len(changed) // 2] ^= 0x01
        path.write_bytes(bytes(changed))
        with pytest.raises(MedRAGError) as err:
            MedRAG.load(index, key=PASSPHRASE)
        messages[path.name] = str(err.value)
        path.write_bytes(original)
    assert all("\n" not in m for m in messages.values())
    assert all("tampered or corrupt" in m for name, m in messages.items() if name != "manifest.json"), messages
    manifest = json.loads((index / "manifest.json").read_text())
    salt = manifest["encryption"]["kdf"]["salt"]
    manifest["encryption"]["kdf"]["salt"] = ("1" if salt[0] != "1" else "2") + salt[1:]  # another salt: another key
    (index / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexKeyError, match="wrong key"):
        MedRAG.load(index, key=PASSPHRASE)
    shutil.copy(built["encrypted"] / "manifest.json", index / "manifest.json")
    # files swapped for one another, or truncated, do not open either
    (index / "chunks.1.enc").rename(index / "swap")
    (index / "lexical.1.enc").rename(index / "chunks.1.enc")
    with pytest.raises(SealError, match="tampered or corrupt"):
        MedRAG.load(index, key=PASSPHRASE)
    (index / "chunks.1.enc").rename(index / "lexical.1.enc")
    (index / "swap").rename(index / "chunks.1.enc")
    manifest = json.loads((index / "manifest.json").read_text())
    manifest["generation"] = 7  # the manifest is authenticated too
    (index / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MedRAGError, match="manifest does not match its MAC"):
        MedRAG.load(index, key=PASSPHRASE)
    flipped = bytearray((built["encrypted"] / "vectors.1.enc").read_bytes())
    flipped[-1] ^= 0x80
    shutil.copy(built["encrypted"] / "manifest.json", index / "manifest.json")
    (index / "vectors.1.enc").write_bytes(bytes(flipped))
    _one_line_error(_cli("info", "--index", index, env={sealed.KEY_ENV: PASSPHRASE}), "vectors.1.enc",
                    "tampered or corrupt")


def test_segments_bind_order_length_and_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sealed, "SEGMENT", 64)  # several segments from a small blob
    key = IndexKey.new("segments", n=2 ** 14)
    data = os.urandom(64 * 3 + 10)
    blob = key.seal(data, b"chunks/1")
    assert bytes(key.open(blob, b"chunks/1", "blob")) == data and len(blob) == 20 + len(data) + 4 * 16
    assert bytes(key.open(key.seal(b"", b"x"), b"x", "empty")) == b""
    head, body = blob[:20], blob[20:]
    segments = [body[i:i + 80] for i in range(0, len(body), 80)]
    for changed in (head + b"".join([segments[1], segments[0], *segments[2:]]),  # reordered
                    head + b"".join(segments[:2]),  # truncated at a segment boundary
                    blob[:-1]):  # cut
        with pytest.raises(SealError):
            key.open(changed, b"chunks/1", "blob")
    with pytest.raises(SealError):
        key.open(blob, b"vectors/1", "blob")  # another role
    with pytest.raises(SealError):
        IndexKey.new("other", n=2 ** 14).open(blob, b"chunks/1", "blob")


def test_bm25_in_memory_form_answers_as_the_saved_folder(tmp_path: Path) -> None:
    texts = ["Hypertension raises the risk of stroke.", "Metformin lowers blood glucose in diabetes.",
             "Stroke symptoms include weakness of the face.", "Blood pressure medicines include diuretics."]
    for method in ("lucene", "bm25+"):  # BM25+ carries a non-occurrence array too
        store = BM25Store(method=method)
        store.add(np.arange(len(texts)), texts)
        store.save(tmp_path / method)
        saved, packed = BM25Store.load(tmp_path / method), BM25Store.from_bytes(store.to_bytes())
        for query in ("stroke risk", "blood pressure diuretics", "glucose"):
            want = saved.search([query], 3)
            got = packed.search([query], 3)
            assert np.array_equal(want[1], got[1]) and np.allclose(want[0], got[0]) and want[1][0, 0] >= 0
        assert packed.idf("stroke") == saved.idf("stroke") and packed.method == method


def test_encryption_never_switches_in_place(built: dict[str, Any], tmp_path: Path, embedder: Embedder) -> None:
    plain = Path(shutil.copytree(built["plain"], tmp_path / "plain"))
    encrypted = Path(shutil.copytree(built["encrypted"], tmp_path / "encrypted"))
    rag = _load(plain, embedder)
    rag.key = IndexKey.new(PASSPHRASE, n=2 ** 14)
    with pytest.raises(MedRAGError, match="not encrypted"):
        rag.save(plain)
    fresh = MedRAG(Settings(threads=1))
    fresh.embedder = embedder
    with pytest.raises(IndexKeyError, match="is encrypted"):
        fresh.ingest([TEXT_FILES[0]], save_to=encrypted, progress=False)
    _one_line_error(_cli("ingest", TEXT_FILES[0], "--index", tmp_path / "new", "--encrypt"), "--encrypt needs a key")
    _one_line_error(_cli("ingest", TEXT_FILES[0], "--index", plain, "--encrypt", env={sealed.KEY_ENV: PASSPHRASE}),
                    "not encrypted", "new directory")
    assert not (tmp_path / "new").exists()
    # a re-save keeps the key and salt, and seals the next generation
    again = _load(encrypted, embedder, key=PASSPHRASE)
    again.save(encrypted)
    manifest = layout.read_manifest(encrypted)
    assert manifest["generation"] == 2 and manifest["encryption"] == json.loads(
        (built["encrypted"] / "manifest.json").read_text())["encryption"]
    assert sorted(p.name for p in encrypted.iterdir()) == ["chunks.2.enc", "lexical.2.enc", "manifest.json",
                                                          "settings.2.enc", "vectors.2.enc"]


def test_deid_key_is_derived_from_the_index_key() -> None:
    one, two = IndexKey.new("first", n=2 ** 14), IndexKey.new("second", n=2 ** 14)
    outside = Deidentifier("rules").pseudonym("MRN 123")
    with index_keyed(one):
        first = Deidentifier("rules").pseudonym("MRN 123")
        assert Deidentifier("rules").pseudonym("MRN 123") == first
        assert Deidentifier("rules", key=b"given").pseudonym("MRN 123") == Deidentifier(
            "rules", key=b"given").pseudonym("MRN 123") != first
    with index_keyed(two):
        second = Deidentifier("rules").pseudonym("MRN 123")
    with index_keyed(IndexKey.derive("first", one.kdf)):  # the same key, stretched again: the same pseudonyms
        assert Deidentifier("rules").pseudonym("MRN 123") == first
    assert len({outside, first, second}) == 3


# -- an interrupted encrypted ingest resumes -----------------------------------------------------------------
def _generation(index: Path) -> int:
    try:
        return int(json.loads((index / "manifest.json").read_text())["generation"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_interrupted_encrypted_ingest_resumes(tmp_path: Path, embedder: Embedder) -> None:
    corpus = [*NOTE_FILES, *sorted((MEDQUAD / "9_CDC_QA").glob("*.xml"))[:3]]
    options = ["--quiet", "--threads", "1", "--set", "checkpoint_chunks=8"]
    key_file = tmp_path / "index.key"
    key_file.write_text(PASSPHRASE)
    key_file.chmod(0o600)
    index = tmp_path / "killed"
    clean = {k: v for k, v in os.environ.items() if k not in KEYS_ENV}
    process = subprocess.Popen([sys.executable, "-m", "medrag.cli", "ingest", *corpus, "--index", index, "--encrypt",
                                "--key-file", key_file, *options], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**clean, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 300
    while _generation(index) == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(60)
    partial = _load(index, embedder, key=PASSPHRASE)  # the last checkpoint loads, whole and encrypted
    assert 0 < partial.chunks.count() == partial.vectors.count()
    finish = _cli("ingest", *corpus, "--index", index, *options, env={sealed.KEY_ENV: PASSPHRASE})  # no --encrypt
    assert finish.returncode == 0, finish.stderr
    resumed = _load(index, embedder, key=PASSPHRASE)
    reference = MedRAG(Settings(threads=1))
    reference.embedder = embedder
    with index_keyed(resumed.key):  # the notes' pseudonyms: keyed by the index key in both CLI runs
        reference.ingest(corpus, progress=False)
    assert _state(resumed) == _state(reference) and resumed.chunks.count() > partial.chunks.count()
    assert any(doc.startswith("note:") for doc in _state(resumed))
    assert all(p.name == "manifest.json" or p.name.endswith(".enc") for p in index.iterdir())  # no leftovers


# -- the server ----------------------------------------------------------------------------------------------
@pytest.fixture()
def served(built: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    httpx = pytest.importorskip("httpx")
    from medrag.server.keys import KeyStore
    from medrag.server.testing import free_port
    from tests.test_server import wait_ready

    keys = tmp_path / "keys.json"
    token = KeyStore(keys).add("ward")
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if k not in KEYS_ENV}
    err = tmp_path / "server.err"
    with open(err, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "medrag.server.cli", "serve", "--index", built["encrypted"],
                                    "--keys", keys, "--no-audit", "--port", str(port), "--threads", "1",
                                    "--reload-interval", "0"], stdout=subprocess.DEVNULL, stderr=stderr,
                                   env={**clean, "HF_HUB_OFFLINE": "1", sealed.KEY_ENV: PASSPHRASE})
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                          headers={"Authorization": f"Bearer {token}"})
    try:
        wait_ready(client, 180, process, err)
        yield {"client": client, "keys": keys}
    finally:
        client.close()
        process.send_signal(signal.SIGINT)
        process.wait(30)


@pytest.mark.slow
def test_server_serves_an_encrypted_index_with_the_key_from_the_environment(served: dict[str, Any],
                                                                            built: dict[str, Any],
                                                                            embedder: Embedder) -> None:
    found = served["client"].post("/v1/search", json={"query": QUESTIONS[0], "k": 5})
    assert found.status_code == 200, found.text
    want = [h.chunk.text for h in _load(built["plain"], embedder).retrieve(QUESTIONS[0], k=5)]
    assert [r["text"] for r in found.json()["results"]] == want
    asked = served["client"].post("/v1/ask", json={"question": QUESTIONS[0]})
    assert asked.status_code == 200 and asked.json()["citations"]
    # without the key it is refused at once, in one line; a notes index still needs API keys
    _one_line_error(_cli("serve", "--index", built["encrypted"], "--keys", served["keys"]), "is encrypted")
    _one_line_error(_cli("serve", "--index", built["encrypted"], env={sealed.KEY_ENV: PASSPHRASE}),
                    "holds clinical notes")
