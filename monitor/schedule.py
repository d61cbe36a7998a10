"""Stage *schedule*: the scheduler's jobs, kept in step with the settings.

One job per enabled source (its interval plus jitter), one delivery job, one digest
job per channel with a ``digest`` schedule. ``Jobs.sync`` sets them up at start and
brings them in line after a reload: a new source is polled at once, a removed one
no more, a changed one is rescheduled (and polled at once if its URL changed). A
job's run already under way is never cancelled here: it finishes as it started.

Runs nothing itself; the daemon owns the job functions.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Settings, SourceSettings
from monitor.durations import describe
from monitor.logs import about

log = logging.getLogger("newsmon.schedule")

MAX_JITTER = timedelta(seconds=60)
DELIVERY_JOB = "deliver"


class Jobs:
    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        poll: Callable[[SourceSettings], Awaitable[None]],
        deliver: Callable[[], Awaitable[None]],
        digest: Callable[[str], Awaitable[None]],
    ) -> None:
        self._scheduler = scheduler
        self._poll = poll
        self._deliver = deliver
        self._digest = digest
        self._sources: dict[str, tuple[SourceSettings, timedelta]] = {}  # job id -> as scheduled
        self._delivery_interval: timedelta | None = None
        self._digests: dict[str, str] = {}  # channel -> its digest's cron
        self._synced = False

    def sync(self, settings: Settings, channels: Collection[str], now: datetime) -> None:
        """Make the jobs match ``settings`` (``channels``: those that exist)."""
        self._sync_sources(settings, now)
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
        self._synced = True

    def wake_delivery(self, now: datetime) -> None:
        """Run the delivery job now rather than at its next interval."""
        self._scheduler.modify_job(DELIVERY_JOB, next_run_time=now)

    def _sync_sources(self, settings: Settings, now: datetime) -> None:
        wanted = {f"source:{s.name}": s for s in settings.sources if s.enabled}
        for job_id in [j for j in self._sources if j not in wanted]:
            self._scheduler.remove_job(job_id)
            name = self._sources.pop(job_id)[0].name
            log.info("source %s: no longer polled", name, extra=about(source=name))
        for job_id, source in wanted.items():
            interval = settings.source_interval(source)
            before = self._sources.get(job_id)
            if before == (source, interval):
                continue
            self._sources[job_id] = (source, interval)
            trigger = IntervalTrigger(seconds=interval.total_seconds(),
                                      jitter=min(interval / 10, MAX_JITTER).total_seconds())
            grace = int(interval.total_seconds())
            if before is None:
                self._scheduler.add_job(self._poll, trigger, args=[source], id=job_id,
                                        next_run_time=now, max_instances=1, coalesce=True,
                                        misfire_grace_time=grace)
                if self._synced:
                    log.info("source %s: added, polled every %s", source.name,
                             describe(interval), extra=about(source=source.name))
                continue
            self._scheduler.modify_job(job_id, args=[source], misfire_grace_time=grace)
            if before[1] != interval:
                self._scheduler.reschedule_job(job_id, trigger=trigger)
            if before[0].url != source.url:
                self._scheduler.modify_job(job_id, next_run_time=now)
            log.info("source %s: changed, polled every %s", source.name, describe(interval),
                     extra=about(source=source.name))
