"""Keeping a lease while the work it covers runs (sending an alert, a digest).

A node leases what it is doing in the database, so no other node does it too, and
so that the work is taken over if the node dies. Work can outlast its lease (a slow
channel, a long backlog, a digest in many parts); ``renewing`` renews the lease
every third of its length for as long as the work runs, so it expires only when the
node stops renewing it. A renewal that fails (the database away) is logged and tried
again at the next turn; if renewals fail for a whole lease, the work may be taken
over and done twice: at least once, never lost.

Renews, and nothing else: the caller's ``renew`` decides what is renewed, and how.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

log = logging.getLogger("newsmon.leases")


@contextlib.asynccontextmanager
async def renewing(renew: Callable[[], Awaitable[object]], lease: timedelta,
                   what: str) -> AsyncIterator[None]:
    """Call ``renew`` every third of ``lease`` while the body runs (``what``: for the log).

    Returns only once a renewal under way has ended: cancelled mid-call, its database
    statement would go on in its thread, and could take the lease again after the
    caller released it.
    """
    renewal = asyncio.Lock()  # held while a renewal runs

    async def keep() -> None:
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            async with renewal:
                try:
                    await renew()
                except Exception:
                    log.exception("renewing the lease of %s failed; trying again", what)

    keeper = asyncio.create_task(keep())
    try:
        yield
    finally:
        try:
            async with renewal:  # cancel it between renewals, never during one
                keeper.cancel()
        finally:  # this task cancelled while it waits: the keeper must stop all the same
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
