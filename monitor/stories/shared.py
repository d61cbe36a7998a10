"""Stage *stories* on a shared database: the store is the source of truth for story ids.

Each node keeps its own ``StoryIndex`` in memory. Before it assigns stories to a
poll's new articles, a node takes the store's story lock (``store/story_lock.py``),
adds to its index every article the other nodes stored since it last looked
(``Store.stories_after``: with the story ids they were given), assigns, and keeps
the lock until its own articles are committed. So assignments happen one batch
at a time across the cluster, and every assignment sees every article stored
before it: two outlets' versions of one story reaching two nodes at the same
moment are clustered as one node would have clustered them, one batch after the
other, and get one story id (hence one alert per rule and channel).

What is not promised: the same story ids as a single node would give. The order
of batches is the order in which nodes got the lock, and an index's document
frequencies depend on the order it learned the articles in, so a borderline
similarity can fall on either side of the threshold.

The index is filled from the store on first need, not at start: a node (or a
``run --once``) whose polls bring nothing new never replays the window's
articles. The first turn with new articles loads it, outside the lock: the load
notes, under the lock, the last article id stored, replays the window's articles
up to that id, then takes its turn like any other, catching up from that id.

Article ids only grow while the lock is held (every article is inserted under
it), so "stored after id N" misses nothing. On SQLite (one node) there is no lock
and nothing to read: once loaded, the index holds every article.

Fetching, parsing and matching stay outside the lock and run in parallel. Inside
it, the node's database calls run on the lock's own thread, never queued behind the
node's other database work: the lock is held for as short a time as it can be.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.stories.index import StoryIndex

if TYPE_CHECKING:
    from monitor.store import Store

log = logging.getLogger("newsmon.stories")

DbRunner = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class StoryTurn:
    """A node's turn to assign stories: the up-to-date index, and where to run the
    database calls that store what it assigned (``locked``: on the lock's own thread,
    while other nodes wait: not to be queued behind other polls' database work)."""

    index: StoryIndex
    db: DbRunner
    locked: bool = False


class SharedStories:
    """A node's story index, kept in step with the articles every node stores."""

    def __init__(self, index: StoryIndex, store: Store, db: DbRunner,
                 window_start: Callable[[], datetime]) -> None:
        self.index = index
        self._store = store
        self._db = db
        self._window_start = window_start  # the oldest article time the index needs
        self._in_process = asyncio.Lock()
        self._loading = asyncio.Lock()
        self._loaded = False
        self._lock_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsmon-lock")
        self._seen_upto = 0  # the highest article id the index has been given

    async def load(self) -> int:
        """Fill the index with the window's stored articles, once; how many it holds."""
        async with self._loading:
            if self._loaded:
                return len(self.index)
            async with self._locked():
                upto = await self._db(self._store.last_article_id)
            batches = self._store.stories_since(self._window_start(), upto=upto)
            replayed = 0
            # One batch at a time from the database thread; never the whole window at
            # once. Batches come in storage order, which is (nearly) the order they were
            # seen.
            while (batch := await self._db(next, batches, None)) is not None:
                replayed = self.index.rebuild(batch)
            self._seen_upto = upto
            self._loaded = True
        if replayed:
            log.info("stories: %d recent articles reloaded", replayed)
        return replayed

    @asynccontextmanager
    async def assigning(self, *, any_new: bool = True) -> AsyncIterator[StoryTurn]:
        """The index, up to date, for as long as the caller assigns and stores (with
        nothing new to assign, nothing to load or wait for)."""
        if not any_new:
            yield StoryTurn(self.index, self._db)
            return
        await self.load()
        if not self._store.story_lock.needed:
            yield StoryTurn(self.index, self._db)
            return
        async with self._locked():
            await self._catch_up()
            yield StoryTurn(self.index, self._locked_db, locked=True)
            # Nobody else stored an article meanwhile: ours need not be read back.
            self._seen_upto = await self._locked_db(self._store.last_article_id)

    def close(self) -> None:
        self._lock_thread.shutdown(wait=True)

    async def _locked_db(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run a store call on the lock's thread (it is idle while the lock is held)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._lock_thread, functools.partial(function, *args))

    async def _catch_up(self) -> None:
        batches = self._store.stories_after(self._seen_upto)
        while (batch := await self._locked_db(next, batches, None)) is not None:
            self.index.rebuild((article, story) for _, article, story in batch)
            self._seen_upto = max(self._seen_upto, batch[-1][0])

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        if not self._store.story_lock.needed:
            yield
            return
        async with self._in_process:
            loop = asyncio.get_running_loop()
            lock = self._store.story_lock
            acquiring = loop.run_in_executor(self._lock_thread, lock.acquire)
            try:
                await asyncio.shield(acquiring)
            except asyncio.CancelledError:
                # The lock is taken in a thread that cannot be stopped: let it go once held.
                acquiring.add_done_callback(lambda done: None if done.exception() else
                                            loop.run_in_executor(self._lock_thread, lock.release))
                raise
            try:
                yield
            finally:
                await loop.run_in_executor(self._lock_thread, lock.release)
