"""Backends by name or by dotted path: each kind of component keeps one ``Registry``.

A registry line is ``name -> "package.module:Attr"`` (imported on first use, so naming a backend costs
nothing until it is built). A spec that is not a registered name but has the form ``package.module:Attr``
is imported as it is: a user's own store, generator or reader plugs in without editing medrag. A backend
may carry its own options as a pydantic model in an ``Options`` attribute; ``Backend.options`` validates
a plain dict against it, so a typo in a backend option is an error that names it.
"""
from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from medrag.errors import MedRAGError

log = logging.getLogger(__name__)

#: ``package.module:Attr`` (``Attr`` may be dotted: ``module:Class.factory``)
DOTTED = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")


def import_object(path: str) -> Any:
    """The object named ``package.module:Attr``; a clear error when it cannot be imported."""
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise MedRAGError(f"cannot import {path!r}: {exc}") from exc
    return obj


def validation_message(exc: ValidationError, prefix: str = "") -> str:
    """A pydantic error as one line that names each bad field and value."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        value = err.get("input")
        shown = "" if isinstance(value, (dict, BaseModel)) else f"={value!r}"
        parts.append(f"{where}{shown}: {err['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Backend:
    """One registered (or dotted-path) backend: its name and the object that builds it."""

    kind: str
    name: str
    target: str  # "package.module:Attr"

    def load(self) -> Any:
        """The class or factory (imported now)."""
        return import_object(self.target)

    def options_type(self) -> type[BaseModel] | None:
        """The backend's own options model, if it declares one (``Options``)."""
        options = getattr(self.load(), "Options", None)
        return options if isinstance(options, type) and issubclass(options, BaseModel) else None

    def options(self, raw: Mapping[str, Any] | BaseModel | None = None) -> BaseModel | None:
        """``raw`` validated against the backend's options model (its defaults when ``raw`` is empty)."""
        model = self.options_type()
        if isinstance(raw, BaseModel):
            return raw
        if model is None:
            if raw:
                raise MedRAGError(f"{self.kind} {self.name!r} takes no options, got {', '.join(sorted(raw))}")
            return None
        try:
            return model.model_validate(dict(raw or {}))
        except ValidationError as exc:
            raise MedRAGError(f"bad {self.kind} option for {self.name!r}: {validation_message(exc)}") from None


class Registry:
    """Named backends of one kind (``store``, ``lexical``, ``generator``, ``reader``, ``embedder``)."""

    def __init__(self, kind: str, entries: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, str] = dict(entries or {})

    def register(self, name: str, target: str) -> None:
        """Add (or replace) ``name -> "package.module:Attr"``."""
        if not DOTTED.match(target):
            raise MedRAGError(f"a {self.kind} backend is registered as 'package.module:Attr', not {target!r}")
        self._entries[name] = target

    def __contains__(self, spec: object) -> bool:
        return spec in self._entries

    def __getitem__(self, name: str) -> Backend:
        return self.get(name)


    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, spec: str) -> Backend:
        """The backend registered as ``spec``, or the one ``spec`` names as ``package.module:Attr``."""
        if spec in self._entries:
            return Backend(self.kind, spec, self._entries[spec])
        if DOTTED.match(spec or ""):
            return Backend(self.kind, spec, spec)
        raise MedRAGError(f"unknown {self.kind} {spec!r}: choose from {', '.join(self._entries)}, "
                          f"or name your own as package.module:Class")





#: where each kind's registry lives (imported on first use)
HOMES = {"store": "medrag.stores:STORES", "lexical": "medrag.lexical:LEXICAL",
         "generator": "medrag.generation:GENERATORS", "reader": "medrag.readers:REGISTRY",
         "embedder": "medrag.embedding:EMBEDDERS"}


def registry(kind: str) -> Registry:
    """The registry of one kind of backend (``store``, ``lexical``, ``generator``, ``reader``, ``embedder``)."""
    return import_object(HOMES[kind])
__all__ = ["DOTTED", "HOMES", "Backend", "Registry", "import_object", "registry", "validation_message"]
