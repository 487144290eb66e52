"""The CPU's class, from its flags and the instruction caps in the environment, and the ``auto`` embedding path.

A class names what the CPU can run fast: ``amx`` (AMX tiles, bf16 and int8), ``avx512_bf16`` (AVX-512 with bf16
dot products), ``avx512``, ``avx2`` and ``other``. The three caps that make libraries behave as on a lesser CPU
(``ONEDNN_MAX_CPU_ISA``, ``MKL_ENABLE_INSTRUCTIONS``, ``ATEN_CPU_CAPABILITY``) lower the class too: a machine
capped at AVX2 is an AVX2 machine. Reading the flags imports nothing heavy (settings resolve ``auto`` with it).
"""
from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

#: CPU classes, slowest first
CLASSES = ("other", "avx2", "avx512", "avx512_bf16", "amx")
#: the caps that lower a class: variable -> (value prefix, longest first -> the highest class it allows)
CAPS: dict[str, tuple[tuple[str, str], ...]] = {
    "ONEDNN_MAX_CPU_ISA": (("AVX10_1_512_AMX", "amx"), ("AVX512_CORE_AMX", "amx"), ("AVX10_1_512", "avx512_bf16"),
                           ("AVX512_CORE_FP16", "avx512_bf16"), ("AVX512_CORE_BF16", "avx512_bf16"),
                           ("AVX512_CORE", "avx512"), ("AVX2", "avx2"), ("AVX", "other"), ("SSE41", "other")),
    "MKL_ENABLE_INSTRUCTIONS": (("AVX512", "amx"), ("AVX2", "avx2"), ("AVX", "other"), ("SSE4_2", "other")),
    "ATEN_CPU_CAPABILITY": (("AVX512", "amx"), ("AVX2", "avx2"), ("DEFAULT", "other")),
}
#: the fastest embedding path (backend, precision) per CPU class that passes the quality guard
#: (top-10 agreement with torch fp32 >= 0.98, BioASQ hybrid recall@10 within 0.005: eval/reports/embedding.md)
AUTO: dict[str, tuple[str, str]] = {
    "amx": ("openvino", "bf16"),
    "avx512_bf16": ("openvino", "bf16"),
    "avx512": ("openvino", "fp32"),
    "avx2": ("openvino", "fp32"),
    "other": ("torch", "fp32"),
}


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The first processor's flags in ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def flag_class(flags: frozenset[str] | set[str]) -> str:
    """The class the flags alone give."""
    if {"amx_bf16", "amx_tile"} <= flags and "avx512_bf16" in flags:
        return "amx"
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        return "avx512_bf16" if "avx512_bf16" in flags else "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "other"


def cap_class(env: Mapping[str, str] | None = None) -> str:
    """The highest class the caps in ``env`` (default: the environment) allow; ``amx`` when none is set."""
    env = os.environ if env is None else env
    allowed = "amx"
    for name, table in CAPS.items():
        value = env.get(name, "").strip().upper()
        if not value or value == "ALL":
            continue
        cap = next((cls for prefix, cls in table if value.startswith(prefix)), None)
        if cap is None:
            log.warning("%s=%s is not a cap medrag knows; ignored for the embedding path", name, value)
            continue
        allowed = min(allowed, cap, key=CLASSES.index)
    return allowed


def cpu_class(flags: frozenset[str] | set[str] | None = None, env: Mapping[str, str] | None = None) -> str:
    """This CPU's class: its flags, lowered by any instruction cap in the environment."""
    flags = cpu_flags() if flags is None else frozenset(flags)
    return min(flag_class(flags), cap_class(env), key=CLASSES.index)


def has_bf16(cls: str) -> bool:
    """Whether the class computes bf16 natively (else bf16 is emulated, slower than fp32)."""
    return CLASSES.index(cls) >= CLASSES.index("avx512_bf16")


def installed(backend: str) -> bool:
    """Whether the backend's library is importable (torch is always there)."""
    module = {"openvino": "openvino", "onnx": "onnxruntime"}.get(backend)
    return module is None or importlib.util.find_spec(module) is not None


def gpu_present() -> bool:
    """Whether an NVIDIA GPU is visible (without importing torch): torch then embeds on it."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir()) and os.environ.get("CUDA_VISIBLE_DEVICES", "x") not in ("", "-1")


#: the precisions each backend runs
PRECISIONS = {"torch": ("fp32", "bf16", "fp16"), "openvino": ("fp32", "bf16", "int8"), "onnx": ("fp32", "int8")}


def resolve(backend: str, precision: str, *, cls: str | None = None, device: str = "") -> tuple[str, str]:
    """``(backend, precision)`` with ``auto`` in either replaced by the fastest guarded choice for this CPU
    (``cls``: its class; a GPU, or a device named, means torch). Concrete values pass through unchanged."""
    if backend != "auto" and precision != "auto":
        return backend, precision
    cls = cls or cpu_class()
    if device.startswith("cuda") or (not device and cls is not None and gpu_present()):
        return ("torch" if backend == "auto" else backend), ("fp32" if precision == "auto" else precision)
    best_backend, best_precision = AUTO[cls]
    if not installed(best_backend):
        best_backend, best_precision = "torch", ("bf16" if has_bf16(cls) else "fp32")
    if backend == "auto" and precision == "auto":
        return best_backend, best_precision
    if backend == "auto":  # the precision is fixed: the fastest backend that runs it
        if precision == best_precision or (precision in PRECISIONS[best_backend] and precision != "int8"):
            return best_backend, precision
        return next(b for b in ("openvino", "onnx", "torch") if precision in PRECISIONS[b] and installed(b)), precision
    # the backend is fixed: its fastest guarded precision here (int8 is opt-in)
    if best_precision in PRECISIONS[backend] and best_precision != "int8":
        return backend, best_precision
    return backend, ("bf16" if has_bf16(cls) and "bf16" in PRECISIONS[backend] else "fp32")


@lru_cache(maxsize=8)
def _resolve_cached(backend: str, precision: str, caps: tuple[str, ...]) -> tuple[str, str]:
    return resolve(backend, precision)


def resolve_here(backend: str, precision: str) -> tuple[str, str]:
    """``resolve`` for this CPU and environment, remembered per cap setting (settings call it often)."""
    if backend != "auto" and precision != "auto":
        return backend, precision
    caps = tuple(os.environ.get(name, "") for name in CAPS)
    choice = _resolve_cached(backend, precision, caps)
    log.debug("embedding path auto -> %s %s (CPU class %s)", *choice, cpu_class())
    return choice


__all__ = ["AUTO", "CAPS", "CLASSES", "PRECISIONS", "cap_class", "cpu_class", "cpu_flags", "flag_class", "gpu_present",
           "has_bf16", "installed", "resolve", "resolve_here"]
