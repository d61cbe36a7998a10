"""The service: sources polled on a schedule, alerts delivered as they are planned.

``Daemon`` receives everything it uses (settings, rules, store, HTTP client,
channels, clock) and does no I/O in its constructor, so tests run the whole
service in-process. ``run_once`` is one full cycle (``newsmon run --once``);
``run`` is the long-running form: the ``PollScheduler`` (``polling.py``) claims due
sources from the database (shared with any other nodes) and polls them; an APScheduler
``AsyncIOScheduler`` runs the delivery job (woken early whenever a poll commits new
alerts) and the digest jobs (``schedule.Jobs``), both on the sending side
(``sending.py``). ``reconfigure`` swaps in a reloaded set.
With ``http.enabled``, ``run`` also serves ``/healthz`` and ``/metrics``
(``monitor.observe.service``) for as long as it runs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.batched import Batched
from monitor.channels.base import Channel
from monitor.config import Settings, SourceSettings
from monitor.deliver import Deliverer, DeliveryReport
from monitor.fetch import PAGE_TYPES, Fetcher
from monitor.fulltext import PageReader
from monitor.identity import StoredArticle
from monitor.logs import about
from monitor.match.matcher import Matcher
from monitor.observe.healthz import Health, HealthFacts
from monitor.observe.metrics import Metrics
from monitor.observe.service import Observer
from monitor.pipeline import PollContext, PollReport, poll_failed_unexpectedly, poll_source
from monitor.plan import Planner
from monitor.polling import PollScheduler, this_node
from monitor.rules.model import RuleSet
from monitor.schedule import Jobs
from monitor.sending import Sending
from monitor.store import SourceState, Store
from monitor.store.recall import Recall
from monitor.stories import StoryIndex, StorySettings
from monitor.stories.shared import SharedStories
from monitor.workers import WorkerPool

log = logging.getLogger("newsmon.daemon")

T = TypeVar("T")
STOP_GRACE = timedelta(seconds=5)  # for sends under way at stop (systemd waits 15 s)
RESTART_ONLY = ("storage", "fetch", "stories", "http", "parse", "full_text",
                "cluster")  # read at start
DB_THREADS = 4  # on PostgreSQL


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CycleReport:
    polls: tuple[PollReport, ...]
    delivery: DeliveryReport
    digested: int = 0  # alerts sent inside digests

    @property
    def failed_sources(self) -> list[PollReport]:
        return [p for p in self.polls if p.error]


class Daemon:
    def __init__(
        self,
        settings: Settings,
        rules: RuleSet,
        store: Store,
        client: httpx.AsyncClient,
        channels: Mapping[str, Channel],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.store = store
        self.clock = clock
        # SQLite has one writer: one thread. PostgreSQL serves several nodes' connections
        # at once, and this node's too: its polls need not queue for one connection.
        self._executor = ThreadPoolExecutor(max_workers=1 if store.single_node else DB_THREADS,
                                            thread_name_prefix="newsmon-db")
        self._fetcher = Fetcher(client, settings.fetch)
        self._workers = WorkerPool(settings.parse.workers)
        self._pages = PageReader(
            Fetcher(client, settings.full_text.fetch_settings(settings.fetch), PAGE_TYPES),
            self._workers, settings.parse.deadline.total_seconds(), settings.full_text.max_pages)
        # Stories survive restarts: the window's stored articles go back into the index,
        # the first time a poll has new articles (a cycle with nothing new never pays).
        self._stories = SharedStories(
            StoryIndex(StorySettings(window=settings.stories.window,
                                     threshold=settings.stories.threshold)), store, self.db,
            lambda: self.clock() - self.settings.stories.window)
        self.metrics = Metrics()
        self.metrics.declare([s.name for s in self.enabled_sources],
                             [r.id for r in rules.rules], channels)
        self.node = this_node(clock())
        self._poller = PollScheduler(
            self.node, store, self.db, settings.cluster, self.enabled_sources,
            self.settings.source_interval, self.poll, settings.fetch.concurrency, clock,
            self._polled)
        self._storing = asyncio.Lock()  # one for every poll context (they change at reload)
        self._recall: Batched[Recall, list[StoredArticle]] = Batched(
            functools.partial(self.db, store.recall_many))
        self._alerts_filed: asyncio.Event | None = None  # set by polls during run_once
        self._context = self._poll_context(rules)
        self._sending = Sending(self._build_deliverer(rules, channels), channels, store, self.db,
                                self.node.id, settings.cluster.lease, clock)
        self._limit = asyncio.Semaphore(settings.fetch.concurrency)
        self._scheduler: AsyncIOScheduler | None = None
        self._observer = Observer(store, self.db, self.metrics, self._health_facts)
        self._running_since: datetime | None = None
        self._last_poll: datetime | None = None
        self._joined = False

    def _poll_context(self, rules: RuleSet) -> PollContext:
        planner = Planner(rules.by_id(), self.settings.channels, self.settings.defaults.channels)
        return PollContext(
            store=self.store,
            db=self.db,
            fetcher=self._fetcher,
            matcher=Matcher(rules),
            planner=planner,
            clock=self.clock,
            max_items=self.settings.fetch.max_items,
            health=self.settings.health,
            health_channels=tuple(self.settings.health_channels),
            stories=self._stories,
            workers=self._workers,
            parse_deadline=self.settings.parse.deadline,
            pages=self._pages,
            storing=self._storing,
            recall=self._recall,
        )

    def _build_deliverer(self, rules: RuleSet, channels: Mapping[str, Channel]) -> Deliverer:
        throttles = {r.id: r.throttle for r in rules.rules if r.throttle is not None}
        return Deliverer(self.store.outbox, self.store.channel_health, self.db, channels,
                         self.settings.channels, throttles, self.settings.delivery, self.clock,
                         self.metrics)

    @property
    def channels(self) -> Mapping[str, Channel]:
        return self._sending.channels

    async def db(self, function: Callable[..., T], *args: Any) -> T:
        """Run a store call on the database thread (the event loop never blocks on SQL)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    @property
    def enabled_sources(self) -> list[SourceSettings]:
        return [s for s in self.settings.sources if s.enabled]

    async def start(self) -> None:
        await self.db(self.store.open)
        if self.store.single_node:
            cut = await self.db(self.store.outbox.release_abandoned)
            if cut:
                log.warning("%d alerts were being sent when newsmon last stopped; they are"
                            " sent again", cut)
        await self._poller.join()
        self._joined = True

    async def close(self) -> None:
        if self._joined:
            self._joined = False
            try:
                await self._poller.leave()
            except Exception:  # the database is away: the leases expire instead
                log.exception("node %s: could not leave cleanly", self.node.id)
        await self._recall.finish()  # of polls cancelled as they waited for it
        await self._sending.close()
        await self._workers.close()
        await self.db(self.store.close)
        self._stories.close()
        self._executor.shutdown(wait=True)

    # --- one cycle -----------------------------------------------------------------------

    async def poll(self, source: SourceSettings, ignore_backoff: bool,
                   state: SourceState) -> PollReport:
        """Poll one source the ``PollScheduler`` holds, from its stored ``state``; the
        scheduler saves the report's ``unsaved`` state as it gives the source back."""
        async with self._limit:
            started = asyncio.get_running_loop().time()
            report = await self._poll(source, ignore_backoff, state)
            self._last_poll = self.clock()
            self.metrics.observe_poll(report, asyncio.get_running_loop().time() - started,
                                      self._last_poll)
            if report.alerts and self._alerts_filed is not None:
                self._alerts_filed.set()
            return report

    async def _poll(self, source: SourceSettings, ignore_backoff: bool,
                    state: SourceState) -> PollReport:
        context, interval = self._context, self.settings.source_interval(source)
        try:
            return await poll_source(context, source, interval,
                                     self.settings.source_max_age(source), state,
                                     ignore_backoff=ignore_backoff)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must cost one poll, never the daemon
            log.exception("source %s (%s): poll failed unexpectedly", source.name, source.url,
                          extra=about(source=source.name))
            try:
                # The stored state, not the one read before the poll: the bug may have
                # struck after the poll committed its articles and validators.
                stored = await self.db(self.store.source_state, source.name, source.url)
                return await poll_failed_unexpectedly(context, source, stored, interval, exc)
            except Exception:  # the store is away too: the next poll tries again
                return PollReport(source.name, error=f"internal error: {exc!r}")

    async def run_once(self) -> CycleReport:
        """Poll every enabled source once (but those another node is polling now), then
        deliver everything due.

        Delivery starts as soon as a poll files an alert and goes on alongside the
        polls still running: a channel's round trips wait on the network while the
        polls use the processor, instead of all the sending waiting for the last poll.
        """
        self._alerts_filed = filed = asyncio.Event()
        polling = asyncio.ensure_future(self._poller.poll_all())
        rounds: list[DeliveryReport] = []
        try:
            while not polling.done():
                woken = asyncio.ensure_future(filed.wait())
                waiters: set[asyncio.Future[Any]] = {polling, woken}
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                if filed.is_set():
                    filed.clear()
                    rounds.append(await self._sending.deliver_due())
            polls = polling.result()
        finally:
            polling.cancel()
            self._alerts_filed = None
        rounds.append(await self._sending.deliver_due())
        delivery = DeliveryReport(sum(r.sent for r in rounds), sum(r.retrying for r in rounds),
                                  sum(r.failed for r in rounds), sum(r.held for r in rounds))
        digested = await self.send_due_digests()
        return CycleReport(tuple(polls), delivery, digested)

    # --- the long-running service --------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: Callable[[], None] | None = None) -> None:
        """Run until ``stop`` is set; call ``ready`` once the first schedule is set.

        At stop, running polls are cancelled at once: a poll commits its articles, its
        validators and its alerts in one transaction, so one cut short has changed
        nothing and runs again after the restart. Deliveries get ``STOP_GRACE`` to
        finish, so a message being sent is marked sent; one still running then is
        cancelled and keeps its outbox lease: it is sent again after the restart.
        """
        scheduler = AsyncIOScheduler(timezone=UTC, event_loop=asyncio.get_running_loop())
        self._scheduler = scheduler
        jobs = Jobs(scheduler, self._sending.delivery_job, self._sending.digest_job)
        jobs.sync(self.settings, self.channels, self.clock())
        self._sending.jobs = jobs
        scheduler.start()
        polling = asyncio.create_task(self._poller.run())
        self._running_since = self.clock()
        log.info("newsmon running as node %s: %s", self.node.id, self.summary())
        try:
            await self._observer.start(self.settings.http)
            if ready is not None:
                ready()
            await stop.wait()
        finally:
            await self._observer.stop()
            scheduler.pause()  # no new job starts from here on
            polling.cancel()  # no new poll either; those under way are cancelled
            await asyncio.gather(polling, return_exceptions=True)
            polls = self._poller.cancel_polls()
            sending = {t for t in self._sending.in_flight if not t.done()}
            if sending:
                log.info("waiting up to %ds for the alerts being sent",
                         STOP_GRACE.total_seconds())
                await asyncio.wait(sending, timeout=STOP_GRACE.total_seconds())
            scheduler.shutdown(wait=False)  # cancels the jobs still running
            self._scheduler = None
            self._sending.jobs = None
            cancelled = {t for t in polls | self._sending.in_flight if not t.done()}
            if cancelled:
                # Let cancelled jobs unwind before the store closes.
                await asyncio.wait(cancelled, timeout=1)

    def summary(self) -> str:
        return (f"{len(self.enabled_sources)} sources, {len(self.rules.rules)} rules,"
                f" channels: {', '.join(self.channels) or 'none'}")

    async def alive(self) -> bool:
        """The event loop turns and the store answers (what the systemd watchdog checks)."""
        try:
            await self.db(self.store.ping)
        except Exception as exc:
            log.error("the state database does not answer: %s", type(exc).__name__)
            return False
        return True

    async def reconfigure(self, settings: Settings, rules: RuleSet,
                          channels: Mapping[str, Channel]) -> None:
        """Run with a new, validated set from now on; polls already running finish as they were.

        ``RESTART_ONLY`` sections (storage, fetch, stories, http, parse, full_text,
        cluster) are read at
        start only: a change there is logged and waits for a restart.
        """
        fixed = {name: getattr(self.settings, name) for name in RESTART_ONLY}
        for name, value in fixed.items():
            if getattr(settings, name) != value:
                log.warning("[%s] changed: it takes effect when newsmon restarts", name)
        self.settings = settings.model_copy(update=fixed)
        self.rules = rules
        self.metrics.declare([s.name for s in self.enabled_sources], [r.id for r in rules.rules],
                             channels)
        self._context = self._poll_context(rules)
        self._sending.replace(self._build_deliverer(rules, channels), channels)
        if self._joined:
            await self._poller.sync(self.enabled_sources, self.settings.source_interval)
        if self._sending.jobs is not None:
            self._sending.jobs.sync(self.settings, self.channels, self.clock())
        log.info("reloaded: %s", self.summary())

    # --- health and metrics ---------------------------------------------------------------

    @property
    def endpoint_port(self) -> int | None:
        """The port ``/healthz`` and ``/metrics`` are served on while ``run`` runs."""
        return self._observer.port

    async def health(self) -> Health:
        return await self._observer.health()

    def _health_facts(self) -> HealthFacts:
        """What only the daemon knows about its health (the observer asks the store)."""
        intervals = [self.settings.source_interval(s) for s in self.enabled_sources]
        scheduler = self._scheduler
        # With several nodes, the others may have polled every due source: looking for
        # due sources with a slot free counts as activity too.
        moments = [m for m in (self._last_poll, self._poller.last_look) if m is not None]
        return HealthFacts(
            scheduler_running=scheduler is not None and scheduler.running,
            store_error=None,
            running_since=self._running_since,
            last_poll=max(moments, default=None),
            stale_after=(2 * max(intervals) + self.settings.fetch.total_timeout
                         if intervals else None),
            now=self.clock(),
        )

    def _polled(self, report: PollReport) -> None:
        if report.alerts:
            self._sending.wake()

    async def send_due_digests(self) -> int:
        """Send each digest whose scheduled time has passed since its last one (``--once``)."""
        return await self._sending.send_due_digests(self.settings.channels)
