"""Hot reload: serve the index generation that ``DIR/manifest.json`` names, switching without a gap.

An ingest into the served directory commits a new generation with one atomic rename of the manifest
(``medrag.stores.layout``). The watcher polls the manifest's ``generation`` field; on a change it loads
the new generation in a background thread (sharing the loaded models when the build settings match),
warms it, and then replaces one reference. A request reads that reference once, at its start, and uses
the object it got for everything it does, so it never sees two generations, and requests in flight
finish on the old one (its open files stay readable after the ingest removes them).
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generation:
    """One loaded index generation and its size."""

    rag: Any
    number: int | None
    documents: int
    chunks: int


def manifest_generation(directory: Path) -> int | None:
    """The generation ``DIR/manifest.json`` names, or None while it cannot be read."""
    try:
        return int(json.loads((directory / "manifest.json").read_text())["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def describe(rag: Any, number: int | None) -> Generation:
    """A Generation for a loaded pipeline (counts from ``rag.info()``)."""
    info = rag.info()
    return Generation(rag=rag, number=number, documents=int(info.get("documents", 0)),
                      chunks=int(info.get("chunks", 0)))


def warm(rag: Any, generators: tuple[str, ...]) -> None:
    """Load every model a request may use and run the whole answer path once."""
    for spec in generators:
        rag.generator(spec)
    rag.ask("warm-up question", k=1, generator=generators[0] if generators else None)


class GenerationWatcher:
    """Holds the served generation (``current``) and swaps in new ones as the manifest changes.

    ``load(previous)`` opens the index (``previous``: the pipeline served now, or None) and returns the
    new pipeline, ready to answer; it runs in a thread. ``on_swap`` sees each generation put in service.
    """

    def __init__(self, directory: str | Path, load: Callable[[Any | None], Any], *, interval: float = 2.0,
                 on_swap: Callable[[Generation], None] | None = None) -> None:
        self.directory = Path(directory)
        self.load = load
        self.interval = interval
        self.on_swap = on_swap
        self.current: Generation | None = None
        self.error: str | None = None
        self._failed: int | None = None
        self._task: asyncio.Task | None = None

    async def start(self, initial: Any | None = None) -> None:
        """Serve ``initial`` (a loaded pipeline) or load the index in the background; then watch."""
        if initial is not None:
            self._swap(await asyncio.to_thread(describe, initial, manifest_generation(self.directory)))
        self._task = asyncio.get_running_loop().create_task(self._run(), name="medrag-reload")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _swap(self, generation: Generation) -> None:
        self.current = generation  # one reference assignment: atomic for every reader
        self.error = None
        log.info("serving generation %s of %s: %d documents, %d chunks", generation.number, self.directory,
                 generation.documents, generation.chunks)
        if self.on_swap is not None:
            self.on_swap(generation)

    async def check(self) -> bool:
        """Load the manifest's generation when it is not the one served; True when it swapped."""
        number = manifest_generation(self.directory)
        served = self.current.number if self.current else None
        if (number is None and self.current is not None) or (self.current is not None and number == served):
            return False
        if number is not None and number == self._failed:
            return False  # this generation failed to load: wait for the next one
        previous = self.current.rag if self.current else None
        try:
            rag = await asyncio.to_thread(self.load, previous)
            generation = await asyncio.to_thread(describe, rag, number)
        except Exception as exc:  # noqa: BLE001 - keep serving the old generation; retry on the next one
            self._failed = number
            self.error = f"cannot load {self.directory}: {exc}"
            log.warning("%s", self.error)
            return False
        self._swap(generation)
        return True

    async def _run(self) -> None:
        if self.current is None:
            await self.check()
        while self.interval > 0:
            await asyncio.sleep(self.interval)
            await self.check()
