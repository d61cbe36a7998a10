"""Stage *schedule*: which source is polled when, and by which node.

The database holds every source's next due time and its lease
(``store/nodes.py``), so one node or several behave as one daemon. A node's
``PollScheduler`` claims as many due sources as it has free poll slots, every
``cluster.claim_every`` and whenever polls end while more are waiting; reads the
claimed sources' states with one query; polls each while holding its lease; and
gives it back (``handback.py``: with the polls that end at the same time, in one
transaction) due again one interval after the poll started, plus a jitter of up
to a tenth of the interval (at most 60 s) so that sources added together drift
apart. A failing source comes back when its backoff ends. The node heartbeats
every ``cluster.heartbeat``, which renews its leases; if it dies, they expire
after ``cluster.lease`` and the other nodes take over.
``sync`` follows a reload: a new source is polled at once, a removed one no more,
one whose URL changed at once, one whose interval got shorter within its new
interval (a longer one applies from its next poll); polls under way finish as they
started.

Does not fetch or store articles: ``poll`` (the pipeline) does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from monitor.config import ClusterSettings, SourceSettings
from monitor.durations import describe
from monitor.handback import Handback, Polled
from monitor.logs import about
from monitor.pipeline import PollReport
from monitor.store import SourceState, Store
from monitor.store.nodes import NodeInfo

log = logging.getLogger("newsmon.schedule")

MAX_JITTER = timedelta(seconds=60)

DbRunner = Callable[..., Awaitable[Any]]
Poll = Callable[[SourceSettings, bool, SourceState], Awaitable[PollReport]]


def this_node(now: datetime) -> NodeInfo:
    """This process as a node: host, pid and a random part (a pid is reused)."""
    host = socket.gethostname()
    pid = os.getpid()
    return NodeInfo(f"{host}:{pid}:{uuid.uuid4().hex[:6]}", host, pid, now)


class PollScheduler:
    def __init__(
        self,
        node: NodeInfo,
        store: Store,
        db: DbRunner,
        settings: ClusterSettings,
        sources: Sequence[SourceSettings],
        interval: Callable[[SourceSettings], timedelta],
        poll: Poll,
        slots: int,
        clock: Callable[[], datetime],
        on_polled: Callable[[PollReport], None] = lambda report: None,
    ) -> None:
        self.node = node
        self._store = store
        self._db = db
        self._settings = settings
        self._sources = {s.name: s for s in sources}
        self._interval = interval
        self._poll = poll
        self._slots = slots
        self._clock = clock
        self._on_polled = on_polled
        self._handback = Handback(node.id, store, db)
        self._running: set[asyncio.Task[PollReport | None]] = set()
        self._wake = asyncio.Event()
        self._backlog = False  # the last claim took all it asked for: more may be due
        self.last_look: datetime | None = None  # the last claim with a slot free

    async def join(self) -> None:
        """Register this node and the configured sources."""
        if self._store.single_node:
            await self._db(self._store.nodes.restart_single_node)
        await self._db(self._store.nodes.register, self.node, self._clock())
        await self._db(self._store.nodes.add_sources,
                       [(s.name, s.url) for s in self._sources.values()])

    async def leave(self) -> None:
        """Stop polling; the sources this node held are due for the others at once."""
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await self._handback.finish()
        await self._db(self._store.nodes.leave, self.node.id)

    async def sync(self, sources: Sequence[SourceSettings],
                   interval: Callable[[SourceSettings], timedelta]) -> None:
        """Poll ``sources`` every ``interval`` from now on (after a reload)."""
        before, wanted = self._sources, {s.name: s for s in sources}
        interval_before, self._interval = self._interval, interval
        for name in sorted(before.keys() - wanted.keys()):
            log.info("source %s: no longer polled", name, extra=about(source=name))
        for name, source in wanted.items():
            if before.get(name) != source:
                log.info("source %s: %s, polled every %s", name,
                         "changed" if name in before else "added",
                         describe(self._interval(source)), extra=about(source=name))
        self._sources = wanted
        await self._db(self._store.nodes.add_sources,
                       [(s.name, s.url) for n, s in wanted.items() if n not in before])
        moved = [n for n, s in wanted.items() if n in before and before[n].url != s.url]
        if moved:
            await self._db(self._store.nodes.make_due, moved)
        now = self._clock()
        sooner = {n: now + interval(s) for n, s in wanted.items()
                  if n in before and n not in moved
                  and interval(s) < interval_before(before[n])}
        if sooner:
            await self._db(self._store.nodes.due_by, sooner)
        self._wake.set()

    def cancel_polls(self) -> set[asyncio.Task[PollReport | None]]:
        """Cancel the polls under way (at stop); return them, to wait for."""
        running = set(self._running)
        for task in running:
            task.cancel()
        return running

    async def run(self) -> None:
        """Claim and poll due sources until cancelled; heartbeat meanwhile."""
        heartbeat = asyncio.create_task(self._heartbeat_forever())
        try:
            while True:
                self._wake.clear()
                await self._claim_and_poll()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that comes as the event is set, and the node never stops.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.claim_every.total_seconds()):
                        await self._wake.wait()
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def poll_all(self) -> list[PollReport]:
        """Poll every source no other node is polling now, once (``run --once``)."""
        heartbeat = asyncio.create_task(self._heartbeat_forever())
        try:
            claim = functools.partial(self._store.nodes.claim_due, ignore_due=True)
            claimed = await self._db(claim, self.node.id, list(self._sources), self._clock(),
                                     self._settings.lease, len(self._sources))
            for name in sorted(set(self._sources) - set(claimed)):
                log.info("source %s: another node is polling it", name)
            states = await self._states(claimed)
            polls = await asyncio.gather(*(self._poll_leased(source, states[name], True)
                                           for name, source in self._sources.items()
                                           if name in states))
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        return [report for report in polls if report is not None]

    async def heartbeat(self) -> None:
        await self._db(self._store.nodes.heartbeat, self.node, self._clock(),
                       self._settings.lease)

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.heartbeat.total_seconds())
            try:
                await self.heartbeat()
            except Exception:  # the database is away: try again; leases may lapse
                log.exception("node %s: heartbeat failed", self.node.id)

    async def _claim_and_poll(self) -> None:
        free = self._slots - len(self._running)
        if free < 1:
            return
        try:
            claimed = await self._db(self._store.nodes.claim_due, self.node.id,
                                     list(self._sources), self._clock(), self._settings.lease,
                                     free)
            states = await self._states(claimed)
        except Exception:  # what was claimed comes back when its leases expire
            log.exception("node %s: claiming due sources failed; trying again", self.node.id)
            return
        self.last_look = self._clock()
        self._backlog = len(claimed) == free
        for name in claimed:
            source = self._sources.get(name)
            if source is None or name not in states:  # removed by a reload meanwhile
                await self._db(self._store.nodes.release, name, self.node.id, self._clock())
                continue
            task = asyncio.create_task(self._poll_leased(source, states[name], False))
            self._running.add(task)
            task.add_done_callback(self._polled)

    def _polled(self, task: asyncio.Task[PollReport | None]) -> None:
        self._running.discard(task)
        if self._backlog and self._slots - len(self._running) >= max(1, self._slots // 4):
            self._wake.set()

    async def _states(self, claimed: list[str]) -> dict[str, SourceState]:
        """The stored states of the claimed sources still configured, by name."""
        return dict(await self._db(self._store.source_states_for,
                                   [(name, self._sources[name].url) for name in claimed
                                    if name in self._sources]))

    async def _poll_leased(self, source: SourceSettings, state: SourceState,
                           ignore_backoff: bool) -> PollReport | None:
        started = self._clock()
        report = await self._poll(source, ignore_backoff, state)
        interval = self._interval(source)
        jitter = min(interval / 10, MAX_JITTER) * random.random()
        try:
            kept = await self._handback.give_back(
                Polled(source.name, started + interval + jitter, report.unsaved))
        except Exception:
            log.exception("source %s: could not give its lease back; it expires", source.name)
            return report
        if not kept:
            log.warning("source %s: this node's lease had expired before the poll ended"
                        " (is cluster.lease too short?)", source.name)
        self._on_polled(report)
        return report
