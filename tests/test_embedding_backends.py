"""Embedding paths (torch, OpenVINO, ONNX Runtime) x precisions: vectors close to torch fp32, the ``auto``
choice from CPU flags and instruction caps, the converted-model cache, path mismatches and legacy indexes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medrag import MedRAG, MedRAGError, Settings
from medrag.embedding import EMBEDDERS, Embedder, cpu, runtime

ROOT = Path(__file__).resolve().parents[1]
MEDQUAD = ROOT.parent / "shared" / "data" / "corpora" / "guidelines" / "medquad"
AVX2_CAPS = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
TEXTS = [
    "High blood pressure usually has no symptoms; it is found by measuring it.",
    "Iron deficiency is the most common cause of anaemia worldwide.",
    "Metformin is the first-line drug for type 2 diabetes.",
    "Pneumonia presents with cough, fever and shortness of breath, and a chest X-ray shows consolidation. " * 6,
    "What causes anemia?",
    "   leading and trailing spaces   ",
]
#: the least cosine to torch fp32 each precision must keep on these texts
FLOOR = {"fp32": 0.9999, "bf16": 0.999, "int8": 0.95}
HERE = cpu.cpu_class()
PATHS = [(b, p) for b in ("torch", "openvino", "onnx") for p in cpu.PRECISIONS[b]
         if p != "fp16" and cpu.installed(b) and not (p == "bf16" and not cpu.has_bf16(HERE))]


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh converted-model cache for this module (conversions are tested, not reused from elsewhere)."""
    folder = tmp_path_factory.mktemp("medrag-cache")
    before = os.environ.get("MEDRAG_CACHE")
    os.environ["MEDRAG_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("MEDRAG_CACHE", None)
    else:
        os.environ["MEDRAG_CACHE"] = before


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return Embedder(threads=1).embed_documents(TEXTS)


@pytest.mark.parametrize(("backend", "precision"),
                         [pytest.param(b, p, marks=[pytest.mark.slow] if (b, p) == ("openvino", "int8") else [])
                          for b, p in PATHS])
def test_each_path_gives_vectors_close_to_torch_fp32(backend: str, precision: str, reference: np.ndarray) -> None:
    embedder = Embedder(threads=1, backend=backend, precision=precision)
    vectors = embedder.embed_documents(TEXTS)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() >= FLOOR[precision], (backend, precision, cosines)
    if precision == "fp32":  # the same computation: any difference is rounding
        assert cosines.min() >= 0.99999
    queries = embedder.embed_queries(["What causes anemia?", "symptoms of high blood pressure"])
    assert list(np.argmax(queries @ vectors[:4].T, axis=1)) == [1, 0]  # each question finds its passage
    assert embedder.max_seq_length == 256 and embedder.dim == 384
    assert embedder.count_tokens(TEXTS[2]) == Embedder(threads=1).count_tokens(TEXTS[2])
    assert embedder.embed_documents([]).shape == (0, 384)
    pooled, tokens = embedder.embed_tokens(TEXTS[:3])  # one pass: the vectors and each text's token rows
    _, reference_tokens = Embedder(threads=1).embed_tokens(TEXTS[:3])
    assert (pooled * vectors[:3]).sum(1).min() >= (0.99999 if precision == "fp32" else FLOOR[precision])
    for text, rows, want in zip(TEXTS, tokens, reference_tokens, strict=False):
        assert rows.shape == want.shape == (embedder.count_tokens(text), 384)
        cos = (rows * want).sum(1) / np.linalg.norm(rows, axis=1) / np.linalg.norm(want, axis=1)
        assert cos.min() >= (FLOOR[precision] if precision != "int8" else 0.8)


@pytest.mark.skipif(not cpu.installed("openvino"), reason="openvino is not installed")
def test_a_converted_model_is_cached_and_loads_without_torch(cache: Path) -> None:
    Embedder(threads=1, backend="openvino", precision="fp32").embed_documents(TEXTS[:1])  # converted (or cached)
    entries = [p.name for p in runtime.cache_root().iterdir() if p.name.startswith("openvino-f32-")]
    assert len(entries) == 1 and not [p for p in runtime.cache_root().iterdir() if p.name.startswith(".")]
    script = ("import sys, numpy as np; from medrag.embedding import Embedder\n"
              "v = Embedder(threads=1, backend='openvino', precision='fp32').embed_documents(['anemia'])\n"
              "print(json.dumps({'torch': 'torch' in sys.modules, 'norm': float(np.linalg.norm(v))}))")
    run = subprocess.run([sys.executable, "-c", "import json\n" + script], capture_output=True, text=True,
                         env={**os.environ, "MEDRAG_CACHE": str(cache)}, timeout=120, check=True)
    shown = json.loads(run.stdout.strip().splitlines()[-1])
    assert shown == {"torch": False, "norm": pytest.approx(1.0, abs=1e-5)}  # no conversion: torch never imported


# -- auto: the CPU's class from its flags and the caps ----------------------------------------------------------
ZEN4 = {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_vnni"}
SAPPHIRE_RAPIDS = ZEN4 | {"amx_bf16", "amx_tile", "amx_int8"}
SKYLAKE = {"avx2", "fma", "avx512f", "avx512bw", "avx512vl"}
HASWELL = {"avx", "avx2", "fma"}


def test_cpu_class_from_flags_and_caps(tmp_path: Path) -> None:
    assert [cpu.flag_class(f) for f in (SAPPHIRE_RAPIDS, ZEN4, SKYLAKE, HASWELL, {"sse4_2"})] == \
        ["amx", "avx512_bf16", "avx512", "avx2", "other"]
    assert cpu.cpu_class(SAPPHIRE_RAPIDS, {}) == "amx"
    assert cpu.cpu_class(SAPPHIRE_RAPIDS, AVX2_CAPS) == "avx2"  # a machine capped at AVX2 is an AVX2 machine
    for name, value in AVX2_CAPS.items():  # any one of the caps alone lowers the class
        assert cpu.cpu_class(SAPPHIRE_RAPIDS, {name: value}) == "avx2", name
    assert cpu.cpu_class(SAPPHIRE_RAPIDS, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}) == "avx512_bf16"
    assert cpu.cpu_class(SAPPHIRE_RAPIDS, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}) == "avx512"
    assert cpu.cpu_class(HASWELL, {"ONEDNN_MAX_CPU_ISA": "ALL", "MKL_ENABLE_INSTRUCTIONS": "AVX512"}) == "avx2"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu.cpu_flags(cpuinfo) == {"fpu", "avx", "avx2", "fma"}
    assert cpu.cpu_flags(tmp_path / "missing") == frozenset()


def test_auto_picks_the_guarded_path_per_class() -> None:
    for cls, (backend, precision) in cpu.AUTO.items():
        got = cpu.resolve("auto", "auto", cls=cls, device="cpu")
        assert got == ((backend, precision) if cpu.installed(backend) else got) and got[1] != "int8", cls
        assert got[1] != "bf16" or cpu.has_bf16(cls)  # bf16 only where the CPU computes it
    assert cpu.resolve("auto", "auto", cls="amx", device="cuda") == ("torch", "fp32")
    assert cpu.resolve("torch", "auto", cls="avx2", device="cpu") == ("torch", "fp32")
    assert cpu.resolve("torch", "auto", cls="amx", device="cpu") == ("torch", "bf16")
    assert cpu.resolve("onnx", "auto", cls="amx", device="cpu") == ("onnx", "fp32")
    assert cpu.resolve("auto", "fp16", cls="amx", device="cpu") == ("torch", "fp16")
    assert cpu.resolve("openvino", "int8", cls="avx2") == ("openvino", "int8")  # concrete: untouched


def test_settings_record_the_resolved_path_and_honour_the_caps() -> None:
    """``auto`` never reaches an index's settings; under the three caps this machine is an AVX2 one."""
    script = ("from medrag import Settings; from medrag.embedding import cpu\n"
              "e = Settings(embedding={'backend': 'auto', 'precision': 'auto'}).embedding\n"
              "print(cpu.cpu_class(), e.backend, e.precision)")
    shown = {}
    for name, env in (("as is", {}), ("avx2", AVX2_CAPS)):
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True,
                             env={**{k: v for k, v in os.environ.items() if k not in AVX2_CAPS}, **env})
        shown[name] = run.stdout.split()
    assert shown["avx2"][0] == "avx2" and shown["avx2"][2] != "bf16"
    assert tuple(shown["avx2"][1:]) == cpu.resolve("auto", "auto", cls="avx2")
    assert shown["as is"][0] == cpu.flag_class(cpu.cpu_flags())


@pytest.mark.skipif(not cpu.installed("openvino") or not cpu.has_bf16(HERE), reason="needs openvino and a bf16 CPU")
def test_a_bf16_path_still_answers_on_a_cpu_without_bf16(cache: Path, reference: np.ndarray) -> None:
    """OpenVINO refuses to compile bf16 under an AVX2 cap: the path compiles in fp32 instead, with a warning."""
    script = ("import json, numpy as np; from medrag.embedding import Embedder\n"
              f"texts = {TEXTS!r}\n"
              "e = Embedder(threads=1, backend='openvino', precision='bf16')\n"
              "print(json.dumps({'how': e.describe(), 'v': e.embed_documents(texts).tolist()}))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True,
                         env={**os.environ, **AVX2_CAPS, "MEDRAG_CACHE": str(cache)})
    shown = json.loads(run.stdout.strip().splitlines()[-1])
    assert shown["how"] == "openvino bf16 (inference precision f32)" and "no bf16 instructions" in run.stderr
    assert (np.asarray(shown["v"], dtype=np.float32) * reference).sum(axis=1).min() >= FLOOR["bf16"]


def test_unknown_paths_are_one_clear_error() -> None:
    with pytest.raises(MedRAGError, match="onnx embedder runs fp32, int8, not bf16"):
        Settings(embedding={"backend": "onnx", "precision": "bf16"})
    with pytest.raises(MedRAGError, match="embedding.backend"):
        Settings().replace(**{"embedding.backend": "tensorrt"})
    with pytest.raises(MedRAGError, match="calibration_textz"):
        Settings(embedding={"backend": "openvino", "options": {"calibration_textz": 5}})
    with pytest.raises(MedRAGError, match="torch embedder runs fp32, bf16, fp16, not int8"):
        Embedder(backend="torch", precision="int8")
    assert set(EMBEDDERS.names()) == {"torch", "openvino", "onnx"}


# -- indexes: the path is a build field ------------------------------------------------------------------------
@pytest.mark.skipif(not cpu.installed("openvino"), reason="openvino is not installed")
def test_an_index_is_queried_with_its_own_path(tmp_path: Path) -> None:
    files = [MEDQUAD / "4_MPlus_Health_Topics_QA" / f"{n}.xml" for n in ("0000029", "0000107")]
    settings = Settings(threads=1, embedding={"backend": "openvino", "precision": "fp32"})
    rag = MedRAG(settings)
    rag.ingest(files, save_to=tmp_path / "ov", progress=False)
    saved = json.loads((tmp_path / "ov" / "settings.json").read_text())["embedding"]
    assert (saved["backend"], saved["precision"]) == ("openvino", "fp32")
    loaded = MedRAG.load(tmp_path / "ov", threads=1)
    assert loaded.embedder.path == "openvino fp32"
    question = "What are the symptoms of high blood pressure?"
    torch_top = Embedder(threads=1).embed_queries([question]) @ Embedder(threads=1).embed_documents(
        [c.embed_text for c in loaded.chunks.get(loaded.chunks.ids()).values()]).T
    assert loaded.retrieve(question, 3, retriever="dense")[0].score == pytest.approx(float(torch_top.max()), abs=1e-4)
    with pytest.raises(MedRAGError, match=r"embedding\.backend: index has 'openvino', asked for 'torch'") as caught:
        MedRAG.load(tmp_path / "ov", **{"embedding.backend": "torch"})
    assert "re-ingest" in str(caught.value) and len(str(caught.value).splitlines()) == 1
    info = loaded.info(speed=True)["embedding"]
    assert info["path"] == "openvino fp32" and info["texts_per_second"] > 0 and info["cpu_class"] == HERE


def test_an_index_saved_before_embedding_paths_is_a_torch_index(tmp_path: Path) -> None:
    legacy = ROOT / "tests" / "data" / "legacy_index" / "index"
    index = Path(shutil.copytree(legacy, tmp_path / "legacy"))
    assert "backend" not in json.loads((index / "settings.json").read_text()).get("embedding", {})
    rag = MedRAG.load(index, threads=1)
    assert (rag.settings.embedding.backend, rag.settings.embedding.precision) == ("torch", "fp32")
    nested = Settings(threads=1).to_dict()
    nested["embedding"].pop("backend")
    nested["embedding"]["precision"] = "bf16"
    (index / "settings.json").write_text(json.dumps(nested))
    migrated = Settings.load(index / "settings.json").embedding
    assert (migrated.backend, migrated.precision) == ("torch", "bf16")
