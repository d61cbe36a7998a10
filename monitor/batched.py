"""Calls that arrive together served together: the group commit of ``handback.py``
(polled sources given back) and of the daemon's recalls (``Store.recall_many``: the
stored articles polls ask for).

A caller asks for one item; alone, its item goes at once, in a batch of one. The
items asked for while a batch is under way wait for it to end and then go together
into the next one: one database transaction for many polls instead of one each,
without any caller waiting on a timer. A batch always starts after its items were
asked for, so it sees everything committed before any of them asked.

An item whose caller is cancelled while it waits still goes with its batch (a
poll's outcome is known: it is written all the same). If the batch fails, each of
its callers gets the exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batched(Generic[T, R]):
    """``await batched(item)``: ``run``'s answer for ``item``, ``run`` being called with
    the items of a batch, in the order they were asked for, and answering in that order."""

    def __init__(self, run: Callable[[list[T]], Awaitable[Sequence[R]]]) -> None:
        self._run = run
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._running: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._serve())
        return await done

    async def finish(self) -> None:
        """Wait for the batches under way."""
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)

    async def _serve(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    answers = await self._run([item for item, _ in batch])
                except Exception as exc:  # each caller says so, naming its own item
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for (_, done), answer in zip(batch, answers, strict=True):
                    if not done.done():
                        done.set_result(answer)
                batch = []
        finally:  # cancelled (the loop is closing): nobody is left waiting forever
            for _, done in [*batch, *self._waiting]:
                done.cancel()
