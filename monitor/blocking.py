"""Blocking calls that may never return, run off the event loop in threads nobody joins.

``asyncio.to_thread`` uses the loop's thread pool, and both ``asyncio.run`` and the
interpreter wait for every pool thread at exit. A library call stuck on a server
that trickles one byte at a time (socket timeouts restart with every byte) would
then hold a SIGTERM forever. ``in_daemon_thread`` runs such a call in a daemon
thread instead: the caller awaits it under its own deadline, gives up on it when
the deadline passes, and the process can always exit. The abandoned thread ends
with its socket, or with the process.

Use it only for calls whose result may be dropped safely (a send that is retried
from the outbox), never for anything that writes state.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def in_daemon_thread(function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` in a new daemon thread; cancelling the wait abandons the thread."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # the caller stopped waiting
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result = function(*args)
        except BaseException as exc:
            outcome: tuple[T | None, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        # RuntimeError: the loop closed while we were blocked, and nobody is waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *outcome)

    name = f"newsmon-blocking-{getattr(function, '__qualname__', 'call')}"
    threading.Thread(target=work, name=name, daemon=True).start()
    return await future
