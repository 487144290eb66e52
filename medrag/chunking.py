"""Token-aware chunking in the embedder's own tokenizer: no chunk is ever cut at embedding time."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from langchain_text_splitters import RecursiveCharacterTextSplitter

from medrag.documents import Chunk, Document

if TYPE_CHECKING:
    from medrag.embedding import Embedder
    from medrag.settings import Settings

log = logging.getLogger(__name__)

MAX_TITLE_TOKENS = 64
MIN_BODY_TOKENS = 32


class Chunker:
    """Splits documents into chunks whose ``embed_text`` (title + text) fits ``max_tokens``.

    ``max_tokens`` counts special tokens too, so it is at most the embedder's ``max_seq_length``;
    ``overlap`` tokens are repeated between neighbouring chunks of one document.
    """

    @classmethod
    def for_embedder(cls, embedder: Embedder, settings: Settings) -> Chunker:
        """A chunker in ``embedder``'s tokens, sized by ``settings.chunking`` (at most the model's length)."""
        size = min(settings.chunking.tokens, embedder.max_seq_length)
        return cls(embedder.tokenizer, size, settings.chunking.overlap, settings.embedding.document_prompt)

    def __init__(self, tokenizer, max_tokens: int, overlap: int = 16, prompt: str = "") -> None:  # noqa: ANN001
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap = overlap
        # [CLS] ... [SEP] and the document prompt, if any, take part of every chunk's budget
        self._fixed = self._count(prompt) + tokenizer.num_special_tokens_to_add(pair=False)
        self._splitters: dict[int, RecursiveCharacterTextSplitter] = {}

    def _count(self, text: str) -> int:
        """Tokens of ``text`` without special tokens (they are in ``_fixed``)."""
        if not text:
            return 0
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def _splitter(self, size: int) -> RecursiveCharacterTextSplitter:
        if size not in self._splitters:
            self._splitters[size] = RecursiveCharacterTextSplitter(
                chunk_size=size, chunk_overlap=min(self.overlap, size // 4), length_function=self._count,
                separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""], keep_separator="end")
        return self._splitters[size]

    def _cut(self, text: str, tokens: int) -> str:
        """The longest prefix of ``text`` that takes at most ``tokens`` tokens."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = enc["offset_mapping"]
        return text if len(offsets) <= tokens else text[: offsets[tokens - 1][1]] if tokens > 0 else ""

    def split(self, doc: Document) -> list[Chunk]:
        """The document's chunks, in order; empty when it has no text at all."""
        title, text = doc.title.strip(), doc.text.strip()
        if not text:
            title, text = "", title
        if not text:
            return []
        title_tokens = self._count(title) + (1 if title else 0)
        if title_tokens > MAX_TITLE_TOKENS:
            title = self._cut(title, MAX_TITLE_TOKENS - 1)
            title_tokens = MAX_TITLE_TOKENS
        budget = max(self.max_tokens - self._fixed - title_tokens, MIN_BODY_TOKENS)
        pieces = [text] if self._count(text) <= budget else self._splitter(budget).split_text(text)
        chunks = []
        for piece in pieces:
            piece = piece.strip()
            if not piece:
                continue
            if self._count(piece) > budget:  # the splitter's merge can overshoot by a separator
                piece = self._cut(piece, budget)
            chunks.append(Chunk(doc_id=doc.id, index=len(chunks), text=piece, title=title,
                                metadata=doc.metadata))
        return chunks

