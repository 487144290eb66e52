"""HFGenerator: a Hugging Face causal language model answering from a packed, cited prompt."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from medrag.documents import Chunk
from medrag.errors import MedRAGError
from medrag.generation import Generation, GeneratorEnv
from medrag.generation.citations import clean_citations
from medrag.generation.prompt import PackedPrompt, pack_prompt

log = logging.getLogger(__name__)

MAX_FALLBACK_WINDOW = 2048  # context window when the config names none


class HFGenerator:
    """Greedy decoding with a causal LM (hub name or local directory), loaded on first use."""

    @classmethod
    def from_settings(cls, model: str, options: None, env: GeneratorEnv) -> HFGenerator:
        return cls(model, max_new_tokens=env.max_new_tokens, threads=env.threads)

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
        ids, in_prompt = self._fit(question, passages, new_tokens)
        return ids, in_prompt, new_tokens

    def _fit(self, question: str, passages: Sequence[Chunk], reserve: int) -> tuple[list[int], list[int]]:
        """(input ids, passage numbers in them) of the packed prompt, leaving ``reserve`` tokens of the window."""
        budget = self.context_window - reserve
        extra = len(self._input_ids(PackedPrompt("", [], [])))  # template or BOS around the prompt
        for _ in range(4):  # a chat template re-tokenizes the text: repack if that came out longer
            packed = pack_prompt(self.tokenizer, question, passages, self.context_window, reserve + extra)
            ids = self._input_ids(packed)
            if len(ids) <= budget:
                return ids, packed.in_prompt
            extra += len(ids) - budget
        log.warning("prompt still %d tokens over budget after repacking; its start is cut", len(ids) - budget)
        return ids[len(ids) - budget:], packed.in_prompt

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def option_logprobs(self, prompt: str, options: Sequence[str], passages: Sequence[Chunk] | None = None, *,
                        per_token: bool = False) -> list[float]:
        """Log-likelihood of each option's text (after a space) as the continuation of the prompt.

        With ``passages`` the prompt is ``pack_prompt``'s (instructions, numbered passages, ``prompt`` as
        the question, ``Answer:``), passages cut first so that the longest option fits the window;
        without, ``prompt`` is used as it is (its start cut if too long). ``per_token`` divides each
        sum by the option's token count. The prompt is run once and the options batched on its cache.
        """
        if not options:
            return []
        eos = self.tokenizer.eos_token_id
        continuations = [self._encode(" " + " ".join(o.split())) or [eos] for o in options]
        reserve = max(map(len, continuations))
        if reserve >= self.context_window // 2:
            raise MedRAGError(f"an option of {reserve} tokens does not fit the {self.context_window}-token window")
        if passages is None:
            ids = self._input_ids(PackedPrompt(prompt, self._encode(prompt), []))
            ids = ids[max(len(ids) - (self.context_window - reserve), 0):]
        else:
            ids = self._fit(prompt, passages, reserve)[0]
        scores = self._continuation_logprobs(ids, continuations)
        return [s / len(c) if per_token else s for s, c in zip(scores, continuations)]

    def _continuation_logprobs(self, prefix: list[int], continuations: list[list[int]],
                               reuse_prefix: bool = True) -> list[float]:
        """Summed log-probabilities of each continuation after ``prefix``, the prefix's cache shared if possible."""
        import torch

        model, width, n = self.model, max(map(len, continuations)), len(continuations)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        rows = [c + [pad] * (width - len(c)) for c in continuations]
        mask = torch.tensor([[1] * (len(prefix) + len(c)) + [0] * (width - len(c)) for c in continuations])
        with torch.inference_mode():
            if reuse_prefix:
                out = model(input_ids=torch.tensor([prefix]), use_cache=True, **self._keep(1))
                first = out.logits[0, -1].float().log_softmax(-1)
                cache = getattr(out, "past_key_values", None)
                if width == 1:
                    return [float(first[c[0]]) for c in continuations]
                reuse_prefix = hasattr(cache, "batch_repeat_interleave")
            if reuse_prefix:  # the prefix's keys and values repeated for each option
                cache.batch_repeat_interleave(n)
                logits = model(input_ids=torch.tensor(rows), past_key_values=cache, attention_mask=mask).logits
                steps = torch.cat([first.expand(n, 1, -1), logits[:, :-1].float().log_softmax(-1)], dim=1)
            else:  # whole sequences, right-padded: only the last width + 1 positions are needed
                inputs = torch.tensor([prefix + r for r in rows])
                logits = model(input_ids=inputs, attention_mask=mask, **self._keep(width + 1)).logits
                steps = logits[:, -(width + 1):-1].float().log_softmax(-1)
        return [float(steps[i, torch.arange(len(c)), torch.tensor(c)].sum()) for i, c in enumerate(continuations)]

    @cached_property
    def _accepts_logits_to_keep(self) -> bool:
        import inspect

        return "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def _keep(self, n: int) -> dict[str, int]:
        """``logits_to_keep=n`` where the model takes it: the full-vocabulary logits of only the last n positions."""
        return {"logits_to_keep": n} if self._accepts_logits_to_keep else {}

    def generate(self, question: str, passages: Sequence[Chunk],
                 on_token: Callable[[str], None] | None = None) -> Generation:
        """Greedy answer to ``question`` citing ``passages`` by their 1-based rank (``on_token``: streamed text)."""
        if not passages:
            return Generation("", [], 0, [], self.name)
        import torch

        ids, in_prompt, new_tokens = self.prompt(question, passages)
        tokenizer = self.tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        started = time.perf_counter()
        with torch.inference_mode():
            inputs = torch.tensor([ids], dtype=torch.long, device=self.model.device)
            output = self.model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                                         max_new_tokens=new_tokens, do_sample=False, pad_token_id=pad,
                                         streamer=_streamer(tokenizer, on_token) if on_token else None)
        new = output[0, len(ids):].tolist()
        log.info("generated %d tokens from a %d-token prompt in %.2f s", len(new), len(ids),
                 time.perf_counter() - started)
        text = tokenizer.decode(new, skip_special_tokens=True).strip()
        text, cited, invalid = clean_citations(text, set(in_prompt))
        return Generation(text, cited, invalid, in_prompt, self.name)


def _streamer(tokenizer: Any, on_token: Callable[[str], None]) -> Any:
    """A transformers streamer handing each decoded piece of new text (never the prompt) to ``on_token``."""
    from transformers import TextStreamer

    class Callback(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                on_token(text)

    return Callback(tokenizer, skip_prompt=True, skip_special_tokens=True)
