"""Micro-batching: concurrent searches share one ``retrieve_batch`` call (one embedding call, one FAISS search).

Requests queue on the event loop; a batcher task takes whatever has arrived (waiting ``window`` seconds
after the first, when set), groups it by (index generation, k, filter, retriever) and runs each group as
one ``retrieve_batch`` in the thread pool. While a batch runs, new requests pile up and form the next one,
so batches grow with the load and a lone request waits for nothing (with the default window of 0).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class _Item:
    rag: Any
    query: str
    k: int | None
    where: str | None
    retriever: str | None
    future: asyncio.Future = field(repr=False)

    @property
    def group(self) -> tuple[int, int | None, str | None, str | None]:
        return id(self.rag), self.k, self.where, self.retriever


class SearchBatcher:
    """Collects searches into ``retrieve_batch`` calls; ``on_batch(size)`` observes each call's size."""

    def __init__(self, executor: Executor, *, window: float = 0.0, max_batch: int = 64, concurrency: int = 1,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.executor = executor
        self.window = window
        self.max_batch = max_batch
        self.on_batch = on_batch
        self.calls = 0  # retrieve_batch calls made (tests and metrics)
        self._queue: asyncio.Queue[_Item] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._concurrency = concurrency
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._slots = asyncio.Semaphore(self._concurrency)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="medrag-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, *self._running, return_exceptions=True)
            self._task = None

    async def search(self, rag: Any, query: str, k: int | None = None, where: str | None = None,
                     retriever: str | None = None) -> list[Any]:
        """The hits of one query, searched together with whatever other queries are waiting."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(rag, query, k, where, retriever, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None and self._slots is not None
        while True:
            items = [await self._queue.get()]
            if self.window > 0:
                await asyncio.sleep(self.window)
            await self._slots.acquire()  # while every slot is busy, more requests pile up for this batch
            while len(items) < self.max_batch and not self._queue.empty():
                items.append(self._queue.get_nowait())
            groups: dict[tuple, list[_Item]] = {}
            for item in items:
                groups.setdefault(item.group, []).append(item)
            task = asyncio.get_running_loop().create_task(self._search_groups(list(groups.values())))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _search_groups(self, groups: list[list[_Item]]) -> None:
        assert self._slots is not None
        loop = asyncio.get_running_loop()
        try:
            for group in groups:
                first = group[0]
                self.calls += 1
                if self.on_batch is not None:
                    self.on_batch(len(group))
                search = partial(first.rag.retrieve_batch, [item.query for item in group], first.k, where=first.where,
                                 retriever=first.retriever)
                try:
                    results = await loop.run_in_executor(self.executor, search)
                except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                    for item in group:
                        if not item.future.done():
                            item.future.set_exception(exc)
                    continue
                for item, hits in zip(group, results):
                    if not item.future.done():
                        item.future.set_result(hits)
        finally:
            self._slots.release()
