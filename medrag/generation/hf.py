"""HFGenerator: a Hugging Face causal language model answering from a packed, cited prompt."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from medrag.documents import Chunk
from medrag.errors import MedRAGError
from medrag.generation import Generation, clean_citations
from medrag.generation.prompt import PackedPrompt, pack_prompt

log = logging.getLogger(__name__)

MAX_FALLBACK_WINDOW = 2048  # context window when the config names none


class HFGenerator:
    """Greedy decoding with a causal LM (hub name or local directory), loaded on first use."""

    def __init__(self, name_or_path: str, *, max_new_tokens: int = 128, threads: int = 0) -> None:
        self.name_or_path = name_or_path
        self.name = f"hf:{name_or_path}"
        self.max_new_tokens = max_new_tokens
        self.threads = threads or os.cpu_count() or 1

    @cached_property
    def _loaded(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(self.threads)
        path = Path(self.name_or_path).expanduser()
        source = str(path) if path.is_dir() else self.name_or_path
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        try:
            if source.startswith(("/", ".", "~")) and not path.is_dir():
                raise FileNotFoundError(f"no directory {source}")
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
            model = AutoModelForCausalLM.from_pretrained(source, local_files_only=offline)
        except Exception as exc:  # noqa: BLE001 - any load failure is the user's model choice
            reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            raise MedRAGError(f"cannot load generator {self.name_or_path!r} offline: {reason}; "
                              "give a local model directory") from exc
        model.eval()
        log.info("generator %s loaded (context window %d tokens)", self.name, self._window(model, tokenizer))
        return model, tokenizer

    @property
    def model(self) -> Any:
        return self._loaded[0]

    @property
    def tokenizer(self) -> Any:
        return self._loaded[1]

    @staticmethod
    def _window(model: Any, tokenizer: Any) -> int:
        config = model.config
        window = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
        return int(window or min(tokenizer.model_max_length, MAX_FALLBACK_WINDOW))

    @property
    def context_window(self) -> int:
        """Most tokens (prompt plus answer) the model can attend to."""
        return self._window(self.model, self.tokenizer)

    @cached_property
    def _special_prefix(self) -> list[int]:
        """Tokens the tokenizer puts before any text (a BOS), which the model expects."""
        with_special = self.tokenizer("a")["input_ids"]
        plain = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        return list(with_special[: len(with_special) - len(plain)]) if with_special[-len(plain):] == plain else []

    def _input_ids(self, packed: PackedPrompt) -> list[int]:
        """The ids the model reads: the chat template around the prompt, or the prompt after any BOS."""
        tokenizer = self.tokenizer
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template([{"role": "user", "content": packed.text}], tokenize=False,
                                                 add_generation_prompt=True)
            return list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
        return self._special_prefix + packed.input_ids

    def prompt(self, question: str, passages: Sequence[Chunk]) -> tuple[list[int], list[int], int]:
        """(input ids, passage numbers in the prompt, new-token budget), all within the context window."""
        window = self.context_window
        new_tokens = min(self.max_new_tokens, window // 4)
        if new_tokens < self.max_new_tokens:
            log.warning("max_new_tokens %d cut to %d for the %d-token window", self.max_new_tokens, new_tokens,
                        window)
        budget = window - new_tokens
        extra = len(self._input_ids(PackedPrompt("", [], [])))  # template or BOS around the prompt
        for _ in range(4):  # a chat template re-tokenizes the text: repack if that came out longer
            packed = pack_prompt(self.tokenizer, question, passages, window, new_tokens + extra)
            ids = self._input_ids(packed)
            if len(ids) <= budget:
                return ids, packed.in_prompt, new_tokens
            extra += len(ids) - budget
        log.warning("prompt still %d tokens over budget after repacking; its start is cut", len(ids) - budget)
        return ids[len(ids) - budget:], packed.in_prompt, new_tokens

    def generate(self, question: str, passages: Sequence[Chunk]) -> Generation:
        """Greedy answer to ``question`` citing ``passages`` by their 1-based rank."""
        if not passages:
            return Generation("", [], 0, [], self.name)
        import torch

        ids, in_prompt, new_tokens = self.prompt(question, passages)
        tokenizer = self.tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        started = time.perf_counter()
        with torch.inference_mode():
            inputs = torch.tensor([ids], dtype=torch.long)
            output = self.model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                                         max_new_tokens=new_tokens, do_sample=False, pad_token_id=pad)
        new = output[0, len(ids):].tolist()
        log.info("generated %d tokens from a %d-token prompt in %.2f s", len(new), len(ids),
                 time.perf_counter() - started)
        text = tokenizer.decode(new, skip_special_tokens=True).strip()
        text, cited, invalid = clean_citations(text, set(in_prompt))
        return Generation(text, cited, invalid, in_prompt, self.name)
