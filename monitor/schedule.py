"""Stage *schedule*: the scheduler's jobs, kept in step with the settings.

One delivery job, one digest job per channel with a ``digest`` schedule.
``Jobs.sync`` sets them up at start and brings them in line after a reload. A job's
run already under way is never cancelled here: it finishes as it started. (Sources
are not jobs: their due times are in the database, shared by every node:
``polling.py``.)

Runs nothing itself; the daemon owns the job functions.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Settings

log = logging.getLogger("newsmon.schedule")

DELIVERY_JOB = "deliver"


class Jobs:
    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        deliver: Callable[[], Awaitable[None]],
        digest: Callable[[str], Awaitable[None]],
    ) -> None:
        self._scheduler = scheduler
        self._deliver = deliver
        self._digest = digest
        self._delivery_interval: timedelta | None = None
        self._digests: dict[str, str] = {}  # channel -> its digest's cron

    def sync(self, settings: Settings, channels: Collection[str], now: datetime) -> None:
        """Make the jobs match ``settings`` (``channels``: those that exist)."""
        delivery = IntervalTrigger(seconds=settings.delivery.interval.total_seconds())
        if self._delivery_interval is None:
            self._scheduler.add_job(self._deliver, delivery, id=DELIVERY_JOB, next_run_time=now,
                                    max_instances=1, coalesce=True)
        elif self._delivery_interval != settings.delivery.interval:
            self._scheduler.reschedule_job(DELIVERY_JOB, trigger=delivery)
        self._delivery_interval = settings.delivery.interval
        digests = {name: channel.digest for name, channel in settings.channels.items()
                   if channel.digest is not None and name in channels}
        for name in [n for n, cron in self._digests.items() if digests.get(n) != cron]:
            self._scheduler.remove_job(f"digest:{name}")
            del self._digests[name]
        for name, cron in digests.items():
            if name not in self._digests:
                self._scheduler.add_job(
                    self._digest, CronTrigger.from_crontab(cron, timezone=UTC), args=[name],
                    id=f"digest:{name}", max_instances=1, coalesce=True, misfire_grace_time=3600)
                self._digests[name] = cron

    def wake_delivery(self, now: datetime) -> None:
        """Run the delivery job now rather than at its next interval."""
        self._scheduler.modify_job(DELIVERY_JOB, next_run_time=now)
