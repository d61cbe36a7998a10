"""The service's sending side: delivery rounds, digests on their schedules, channel turnover.

The ``Daemon`` polls; this part sends what the polls filed:

- delivery rounds, run by the scheduler's delivery job and woken early by a poll
  that filed alerts (``wake``); a wake during a round makes the round run again
  rather than queue a second job;
- each channel's digest at its cron time, sent by one node only (a job lease in
  the store: every node runs the schedule, the one holding the lease sends, and
  renews it until the digest is sent and marked so, however long that takes: a
  node taking it after that finds nothing left to send);
- channels a reload replaced, closed once no round or digest can be using them.

It counts the jobs in flight (``in_flight``) so the daemon's stop can give a send
under way its grace period.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from monitor.channel_settings import ChannelSettings
from monitor.channels.base import Channel
from monitor.deliver import Deliverer, DeliveryReport
from monitor.leases import renewing
from monitor.logs import about
from monitor.schedule import Jobs
from monitor.store import Store

log = logging.getLogger("newsmon.daemon")

DbRunner = Callable[..., Awaitable[Any]]


class Sending:
    def __init__(self, deliverer: Deliverer, channels: Mapping[str, Channel], store: Store,
                 db: DbRunner, node_id: str, lease: timedelta,
                 clock: Callable[[], datetime]) -> None:
        self.deliverer = deliverer
        self.channels = channels
        self._store = store
        self._db = db
        self._node_id = node_id
        self._lease = lease
        self._clock = clock
        self.jobs: Jobs | None = None  # set while the service runs (``run``), else None
        self.in_flight: set[asyncio.Task[Any]] = set()  # delivery and digest jobs
        self._delivering = False
        self._delivery_wanted = False
        self._digests_running = 0
        self._retired: list[Channel] = []  # replaced at a reload; closed once unused

    def replace(self, deliverer: Deliverer, channels: Mapping[str, Channel]) -> None:
        """Send with a reloaded set; channels it no longer uses close after their last send."""
        self._retired.extend(c for n, c in self.channels.items() if channels.get(n) is not c)
        self.channels = channels
        self.deliverer = deliverer

    async def close(self) -> None:
        for channel in [*self._retired, *self.channels.values()]:
            await channel.close()
        self._retired.clear()

    # --- delivery ------------------------------------------------------------------------

    async def deliver_due(self) -> DeliveryReport:
        return await self.deliverer.deliver_due()

    def wake(self) -> None:
        """A poll filed alerts: run a delivery round now rather than at the next interval."""
        self._delivery_wanted = True
        if not self._delivering and self.jobs is not None:
            self.jobs.wake_delivery(self._clock())

    async def delivery_job(self) -> None:
        self._track()
        self._delivering = True
        try:
            await self._close_retired()
            while True:
                self._delivery_wanted = False
                await self.deliverer.deliver_due()
                if not self._delivery_wanted:
                    break
        except Exception:
            log.exception("delivery round failed unexpectedly; the next round retries")
        finally:
            self._delivering = False

    # --- digests -------------------------------------------------------------------------

    async def digest_job(self, name: str) -> None:
        self._track()
        self._digests_running += 1
        try:
            await self.send_digest(name)
        except Exception:
            log.exception("digest for channel %s failed unexpectedly", name,
                          extra=about(channel=name))
        finally:
            self._digests_running -= 1

    async def send_due_digests(self, settings: Mapping[str, ChannelSettings]) -> int:
        """Send each digest whose scheduled time has passed since its last one (``--once``)."""
        sent = 0
        for name, channel in settings.items():
            if channel.digest is None or name not in self.channels:
                continue
            trigger = CronTrigger.from_crontab(channel.digest, timezone=UTC)
            if await self.deliverer.digest_due(name, trigger):
                sent += await self.send_digest(name)
        return sent

    async def send_digest(self, name: str) -> int:
        """Send a digest unless another node is sending it (every node runs the schedule;
        the one that takes the job's lease sends, the next finds nothing left to send)."""
        job = f"digest:{name}"
        if not await self._claim_job(job):
            log.info("digest for channel %s: another node is sending it", name,
                     extra=about(channel=name))
            return 0
        try:
            async with renewing(functools.partial(self._renew_job, job, name), self._lease,
                                f"the digest for channel {name}"):
                return await self.deliverer.send_digest(name)
        finally:
            await self._db(self._store.nodes.release_job, job, self._node_id)

    async def _claim_job(self, job: str) -> bool:
        """Take the job's lease, or renew it if this node holds it."""
        claimed: bool = await self._db(self._store.nodes.claim_job, job, self._node_id,
                                       self._clock(), self._lease)
        return claimed

    async def _renew_job(self, job: str, name: str) -> None:
        if not await self._claim_job(job):
            log.warning("digest for channel %s: its lease ran out while it was being sent"
                        " (the database did not answer for cluster.lease); another node"
                        " may send it too", name, extra=about(channel=name))

    # --- bookkeeping ---------------------------------------------------------------------

    def _track(self) -> None:
        """Count the current job in ``in_flight`` until it ends (for the daemon's stop)."""
        task = asyncio.current_task()
        if task is not None:
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def _close_retired(self) -> None:
        """Close channels a reload replaced, once no delivery or digest can be using them."""
        if self._digests_running or not self._retired:
            return
        retired, self._retired = self._retired, []
        for channel in retired:
            await channel.close()
