"""The ONNX Runtime path: the sentence-transformers model exported to ONNX (``torch.onnx.export``), cached on
disk, run by ONNX Runtime's CPU provider in fp32, or in int8 by dynamic quantization (weights int8, activations
quantized per batch: no calibration data, so every machine makes the same int8 model)."""
from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medrag.embedding import runtime
from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

OUTPUTS = ["sentence_embedding", "token_embeddings"]


class ONNXPath:
    """One model in an ONNX Runtime session; ``encode`` gives unit-length float32 vectors."""

    Options = None
    precisions = ("fp32", "int8")

    def __init__(self, model_path: str, precision: str, *, threads: int, device: str = "", options: Any = None) -> None:
        import onnxruntime as ort

        if precision not in self.precisions:
            raise MedRAGError(f"the onnx embedder runs {', '.join(self.precisions)}, not {precision!r}")
        self.model_path, self.precision, self.threads = model_path, precision, threads
        base = runtime.cache_dir("onnx", "fp32", model_path, ort.__version__)
        if not (base / runtime.META).is_file():
            runtime.publish(self._export, base)
        folder = base
        if precision == "int8":
            folder = runtime.cache_dir("onnx", "int8", model_path, ort.__version__)
            if not (folder / runtime.META).is_file():
                runtime.publish(lambda out: self._quantize(base, out), folder)
        self.info = runtime.ModelInfo.load(folder)
        self.tokenizer = runtime.load_tokenizer(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])

    def _export(self, folder: Path) -> None:
        import torch

        log.info("exporting embedding model %s to ONNX (once; cached in %s)", self.model_path, folder.parent)
        model = runtime.load_sentence_transformer(self.model_path, self.threads)
        module, example, info = runtime.export_inputs(model)
        axes = {name: {0: "batch", 1: "tokens"} for name in info.inputs}
        axes |= {"sentence_embedding": {0: "batch"}, "token_embeddings": {0: "batch", 1: "tokens"}}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape checks that hold for every real input
            torch.onnx.export(module, (), str(folder / "model.onnx"), kwargs=example, input_names=list(info.inputs),
                              output_names=OUTPUTS, dynamic_axes=axes, opset_version=17, dynamo=False)
        runtime.save_tokenizer(model, folder)
        info.save(folder)

    def _quantize(self, base: Path, folder: Path) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        log.info("quantizing %s to int8 with ONNX Runtime (dynamic; once)", self.model_path)
        quantize_dynamic(str(base / "model.onnx"), str(folder / "model.onnx"), weight_type=QuantType.QInt8,
                         per_channel=True)
        runtime.copy_beside(base, folder, ("model.onnx",))

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
        def infer(feeds: dict[str, np.ndarray], want: bool) -> tuple[np.ndarray, np.ndarray | None]:
            out = self.session.run(OUTPUTS if want else OUTPUTS[:1], feeds)
            return out[0], (out[1] if want else None)

        return runtime.run_batches(runtime.Batches(self.tokenizer, self.info, texts, batch_size), infer, self.dim,
                                   progress, tokens)

    def describe(self) -> str:
        return f"onnx {self.precision} (ONNX Runtime CPU)"


__all__ = ["ONNXPath"]
