"""The OpenVINO path: the sentence-transformers model converted in-process (``openvino.convert_model``, no
optimum), cached on disk, compiled for the CPU with an fp32 or bf16 inference precision, or statically
quantized to int8 with NNCF on corpus text."""
from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from medrag.embedding import cpu, runtime
from medrag.errors import MedRAGError

log = logging.getLogger(__name__)


class OpenVINOOptions(BaseModel):
    """OpenVINO's own options (``embedding.options``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calibration_texts: int = Field(300, gt=0, description="int8: corpus texts NNCF calibrates the quantization on")


class OpenVINOPath:
    """One model compiled by OpenVINO for this CPU; ``encode`` gives unit-length float32 vectors."""

    Options = OpenVINOOptions
    precisions = ("fp32", "bf16", "int8")

    def __init__(self, model_path: str, precision: str, *, threads: int, device: str = "",
                 options: OpenVINOOptions | None = None) -> None:
        import openvino as ov

        if precision not in self.precisions:
            raise MedRAGError(f"the openvino embedder runs {', '.join(self.precisions)}, not {precision!r}")
        self.model_path, self.precision, self.threads = model_path, precision, threads
        self.options = options or OpenVINOOptions()
        self.core = ov.Core()
        self.base = runtime.cache_dir("openvino", "f32", model_path, ov.__version__)  # fp32 and bf16 share the IR
        if not (self.base / runtime.META).is_file():
            runtime.publish(self._convert, self.base)
        self.info = runtime.ModelInfo.load(self.base)
        self.tokenizer = runtime.load_tokenizer(self.base)
        self.hint = self._hint()
        self._compiled: Any = None
        self._lock = threading.Lock()
        if precision != "int8":
            self._compiled = self._compile(self.base / "model.xml")
        else:
            quantized = runtime.cache_dir("openvino", "int8", model_path, ov.__version__)
            self.int8_dir = quantized
            if (quantized / runtime.META).is_file():
                self._compiled = self._compile(quantized / "model.xml")

    def _hint(self) -> str:
        """The inference precision: bf16 where the CPU computes it (int8's unquantized parts too), else f32."""
        native = cpu.has_bf16(cpu.cpu_class())
        if self.precision == "bf16" and not native:
            log.warning("this CPU (class %s) has no bf16 instructions: the bf16 OpenVINO embedder runs in fp32 "
                        "(slower than on a bf16 CPU; vectors within bf16 rounding of the index's)", cpu.cpu_class())
        return "bf16" if native and self.precision in ("bf16", "int8") else "f32"

    def _convert(self, folder: Path) -> None:
        import openvino as ov
        import torch

        log.info("converting embedding model %s to OpenVINO (once; cached in %s)", self.model_path, self.base)
        model = runtime.load_sentence_transformer(self.model_path, self.threads)
        module, example, info = runtime.export_inputs(model)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape checks that hold for every real input
            converted = ov.convert_model(module, example_input=example)
        for port, name in zip(converted.inputs, info.inputs, strict=True):
            port.get_tensor().set_names({name})
        for port, name in zip(converted.outputs, ("sentence_embedding", "token_embeddings"), strict=True):
            port.get_tensor().set_names({name})
        converted.reshape({port: ov.PartialShape([-1, -1]) for port in converted.inputs})  # any batch, any length
        ov.save_model(converted, folder / "model.xml", compress_to_fp16=False)
        runtime.save_tokenizer(model, folder)
        info.save(folder)

    def _compile(self, xml: Path) -> Any:
        config = {"INFERENCE_PRECISION_HINT": self.hint, "INFERENCE_NUM_THREADS": self.threads,
                  "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY", "CACHE_DIR": str(runtime.cache_root() / "compiled")}
        try:
            return self.core.compile_model(str(xml), "CPU", config)
        except RuntimeError as exc:
            raise MedRAGError(f"OpenVINO cannot compile the embedding model for this CPU ({self.hint}): "
                              f"{str(exc).splitlines()[0]}") from exc

    def _quantize(self, texts: Sequence[str]) -> None:
        """Static int8 quantization calibrated on ``texts`` (the first corpus texts this embedder sees), cached."""
        import nncf

        n = self.options.calibration_texts
        sample = [t for t in texts if t.strip()][:n]
        if not sample:
            raise MedRAGError("the int8 OpenVINO embedder is calibrated on the first texts it embeds: got none")
        log.info("quantizing %s to int8 with NNCF on %d texts (once; cached in %s)", self.model_path, len(sample),
                 self.int8_dir)
        batches = runtime.Batches(self.tokenizer, self.info, sample, 1)
        items = [feeds for _, feeds in batches]

        def build(folder: Path) -> None:
            import openvino as ov

            model = self.core.read_model(str(self.base / "model.xml"))
            quantized = nncf.quantize(model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER,
                                      subset_size=len(items))
            ov.save_model(quantized, folder / "model.xml", compress_to_fp16=False)
            runtime.copy_beside(self.base, folder, ("model.xml", "model.bin"))

        runtime.publish(build, self.int8_dir)

    @property
    def dim(self) -> int:
        return self.info.dim

    @property
    def max_seq_length(self) -> int:
        return self.info.max_seq_length

    def encode(self, texts: Sequence[str], batch_size: int, progress: bool = False, documents: bool = True) -> np.ndarray:
        """Unit-length vectors for ``texts``, in order."""
        return self.encode_tokens(texts, batch_size, progress, documents, tokens=False)[0]

    def encode_tokens(self, texts: Sequence[str], batch_size: int, progress: bool = False, documents: bool = True,
                      tokens: bool = True) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Unit-length vectors for ``texts`` and (``tokens``) each text's token embeddings, in order."""
        if self._compiled is None:
            with self._lock:
                if self._compiled is None:
                    if not documents:
                        log.warning("int8 OpenVINO embedder not in the cache: calibrated on the questions at hand; "
                                    "its vectors may differ slightly from the index's (build the index here to "
                                    "cache the model it was built with)")
                    self._quantize(texts)
                    self._compiled = self._compile(self.int8_dir / "model.xml")
        request = self._compiled.create_infer_request()  # one per call: calls may come from several threads
        pooled, token_rows = self._compiled.output(0), self._compiled.output(1)

        def infer(feeds: dict[str, np.ndarray], want: bool) -> tuple[np.ndarray, np.ndarray | None]:
            result = request.infer(feeds)
            return result[pooled], (result[token_rows] if want else None)

        return runtime.run_batches(runtime.Batches(self.tokenizer, self.info, texts, batch_size), infer, self.dim,
                                   progress, tokens)

    def describe(self) -> str:
        return f"openvino {self.precision} (inference precision {self.hint})"


__all__ = ["OpenVINOOptions", "OpenVINOPath"]
