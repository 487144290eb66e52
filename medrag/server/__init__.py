"""medrag as a service: FastAPI app (ask, search, OpenAI-compatible chat, page, metrics), keys, audit, MCP.

Importing this package loads nothing heavy; ``create_app`` and ``ServerConfig`` load FastAPI on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"create_app": "medrag.server.app", "ServerConfig": "medrag.server.app",
            "KeyStore": "medrag.server.keys", "AuditLog": "medrag.server.audit"}
__all__ = ["AuditLog", "KeyStore", "ServerConfig", "create_app"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'medrag.server' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
