"""The one exception type users see: a clear, one-line message, no traceback."""
from __future__ import annotations


class MedRAGError(Exception):
    """A user-facing error (bad input, missing file, model mismatch); the CLI prints it on one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
