"""Stage *schedule*, its writes: polled sources given back to the database together.

Every poll ends by giving its source back (``Nodes.release_all``: the lease ends,
the next due time is set) and, most of the time, by saving the source's new state:
a poll answered 304 changes nothing else. One transaction per source was most of
what a cycle of unchanged feeds cost, so the polls that end while a write is under
way wait for it and go together into the next one (a group commit, ``batched.py``):
alone, a poll is written at once; a thousand ending together share a few transactions.

A poll's ``give_back`` returns once its write is committed, with whether this node
still held the source's lease. A poll cancelled while it waits is written all the
same: its outcome is known, and its source is due again on time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.batched import Batched
from monitor.store import SourceState, Store

log = logging.getLogger("newsmon.schedule")

DbRunner = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Polled:
    """A source whose poll ended: when it is due next, and its state if the poll left
    it unsaved (``PollReport.unsaved``)."""

    name: str
    due_at: datetime
    state: SourceState | None = None


class Handback:
    def __init__(self, node_id: str, store: Store, db: DbRunner) -> None:
        self._node_id = node_id
        self._store = store
        self._db = db
        self._batched: Batched[Polled, bool] = Batched(self._write)

    async def give_back(self, polled: Polled) -> bool:
        """Give ``polled`` back (with its state); whether this node still held it."""
        return await self._batched(polled)

    async def finish(self) -> None:
        """Wait for the writes under way (before the node leaves)."""
        await self._batched.finish()

    async def _write(self, batch: list[Polled]) -> list[bool]:
        held = await self._db(self._store.nodes.release_all, self._node_id,
                              {polled.name: polled.due_at for polled in batch},
                              [polled.state for polled in batch if polled.state is not None])
        return [polled.name in held for polled in batch]
