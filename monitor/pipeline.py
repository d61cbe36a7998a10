"""The life of one poll of one source, stage by stage:

    fetch -> parse -> normalise -> (new only) -> match -> stories -> plan -> store + outbox

``poll_source`` is the one function that composes the stages; everything it
calls is a stage module. A failing source costs that source an error line and
a backoff, never an exception out of here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from monitor import health
from monitor.config import HealthSettings, SourceSettings
from monitor.durations import describe
from monitor.errors import FetchError, ParseError, SourceError
from monitor.fetch import Fetcher, Validators
from monitor.fulltext import PageReader
from monitor.logs import about
from monitor.match.matcher import Matcher
from monitor.normalise import normalise_entry
from monitor.parse import parse_feed
from monitor.parse.discover import discover_feed_url
from monitor.plan import PlannedAlert, Planner
from monitor.records import Article, FetchResult, ParsedFeed
from monitor.store import NewArticle, SourceState, Store
from monitor.stories.shared import SharedStories
from monitor.workers import JobTimeout, WorkerLost, WorkerPool

log = logging.getLogger("newsmon.poll")

MAX_BACKOFF = timedelta(hours=6)
DbRunner = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class PollContext:
    """What a poll needs; the daemon builds a new one when rules or settings reload."""

    store: Store
    db: DbRunner
    fetcher: Fetcher
    matcher: Matcher
    planner: Planner
    clock: Callable[[], datetime]
    max_items: int
    health: HealthSettings
    health_channels: tuple[str, ...]
    stories: SharedStories
    workers: WorkerPool  # parsing runs here, off the event loop, under parse_deadline
    parse_deadline: timedelta
    pages: PageReader  # full text of new articles for sources that ask for it


@dataclass(frozen=True, slots=True)
class PollReport:
    source: str
    items: int = 0
    new: int = 0
    alerts: int = 0
    not_modified: bool = False
    skipped_backoff: bool = False
    error: str | None = None
    hits: tuple[str, ...] = ()  # the rule of each hit on a new article (for metrics)


async def poll_source(
    ctx: PollContext,
    source: SourceSettings,
    interval: timedelta,
    max_age: timedelta | None,
    *,
    ignore_backoff: bool = False,
) -> PollReport:
    state: SourceState = await ctx.db(ctx.store.source_state, source.name, source.url)
    now = ctx.clock()
    if not ignore_backoff and state.next_poll_at and state.consecutive_failures and (
        now < state.next_poll_at
    ):
        return PollReport(source.name, skipped_backoff=True)
    before = state
    try:
        fetched, feed, state = await _fetch_feed(ctx, source, state)
    except SourceError as exc:
        return await _failed(ctx, state, exc, interval, now)
    if feed is None:
        new_state, health = _assess(ctx, source, before, _succeeded(
            state, now, fetched.etag, fetched.last_modified, 0), 0, now)
        await ctx.db(ctx.store.save_batch, new_state, [], now, health)
        log.debug("source %s: not modified", source.name, extra=about(source=source.name))
        return PollReport(source.name, not_modified=True)
    if feed.skipped:
        log.warning("source %s (%s): %d items beyond the cap of %d were skipped",
                    source.name, source.url, feed.skipped, ctx.max_items,
                    extra=about(source=source.name))
    articles = _unique([normalise_entry(source.name, e, now) for e in feed.entries])
    known = await ctx.db(ctx.store.known_identities, [a.identity for a in articles])
    fresh = sorted((a for a in articles if a.identity not in known), key=lambda a: a.when)
    aliases: list[tuple[str, str]] = []
    if source.full_text and fresh:
        fresh, aliases = await _read_pages(ctx, source, fresh,
                                           now - max_age if max_age else None)
    matched = [(article, tuple(ctx.matcher.match(article))) for article in fresh]
    new_state, health = _assess(ctx, source, before, _succeeded(
        state, now, fetched.etag, fetched.last_modified, len(fresh)), len(fresh), now)
    # Story ids are assigned and stored as one step across all nodes (stories/shared.py).
    async with ctx.stories.assigning(any_new=bool(matched)) as turn:
        batch: list[NewArticle] = []
        for article, hits in matched:
            story_id = turn.index.assign(article)
            alerts = ctx.planner.plan(article, story_id, hits, now, max_age)
            batch.append(NewArticle(article, story_id, hits, alerts))
        outcome = await turn.db(ctx.store.save_batch, new_state, batch, now, health, aliases)
    log.info("source %s: %d items, %d new, %d alerts", source.name, len(articles),
             outcome.articles_stored, outcome.alerts_created, extra=about(source=source.name))
    return PollReport(source.name, len(articles), outcome.articles_stored, outcome.alerts_created,
                      hits=tuple(hit.rule_id for item in batch for hit in item.hits))


async def _fetch_feed(
    ctx: PollContext, source: SourceSettings, state: SourceState
) -> tuple[FetchResult, ParsedFeed | None, SourceState]:
    """Fetch and parse the source (``None`` when not modified).

    A web page where a feed was expected is searched once for the feed it names
    (``<link rel="alternate">``); that feed is used from then on and the user is told.
    """
    url = state.fetch_url
    fetched = await ctx.fetcher.fetch(source.name, url,
                                      Validators(state.etag, state.last_modified),
                                      allow_private=source.allow_private)
    if fetched.not_modified:
        return fetched, None, state
    try:
        feed = await ctx.workers.run(ctx.parse_deadline.total_seconds(), parse_feed, source.name,
                                     url, fetched.body, fetched.content_type, ctx.max_items)
    except JobTimeout:  # a runaway parse (see HAZARDS: feedparser on many attributes)
        raise ParseError(source.name, url, f"parsing ran past the deadline of"
                         f" {describe(ctx.parse_deadline)}; the parser was stopped") from None
    except WorkerLost as exc:
        raise ParseError(source.name, url, f"not parsed: {exc}") from None
    except ParseError:
        discovered = None if state.feed_url else discover_feed_url(fetched.body, fetched.url)
        if discovered is None:
            raise
        log.warning("source %s (%s): the page is not a feed but names one; newsmon uses %s"
                    " from now on (put that URL in the configuration)", source.name, url,
                    discovered, extra=about(source=source.name))
        return await _fetch_feed(ctx, source, replace(state, feed_url=discovered, etag=None,
                                                      last_modified=None))
    return fetched, feed, state


async def _read_pages(
    ctx: PollContext, source: SourceSettings, fresh: list[Article], oldest: datetime | None
) -> tuple[list[Article], list[tuple[str, str]]]:
    """Full text and canonical links for the new articles young enough to alert.

    The identity follows the canonical link, so an article that link shows to be
    stored already (the same article reached by another link) is no longer new.
    Returns the articles and the (feed identity, identity) pairs of the renamed ones,
    which the store keeps so the feed's item is known next time without its page.
    """
    young = [a for a in fresh if oldest is None or a.when >= oldest]
    read = await ctx.pages.read(source.name, young, allow_private=source.allow_private)
    renamed = {before.identity: after for before, after in zip(young, read, strict=True)}
    aliases = [(feed_identity, a.identity) for feed_identity, a in renamed.items()
               if a.identity != feed_identity]
    known = await ctx.db(ctx.store.known_identities, [i for _, i in aliases]) if aliases else set()
    articles = (renamed.get(a.identity, a) for a in fresh)
    return _unique([a for a in articles if a.identity not in known]), aliases


def _unique(articles: list[Article]) -> list[Article]:
    """One article per identity (feeds repeat guids); the first one wins."""
    seen: dict[str, Article] = {}
    for article in articles:
        seen.setdefault(article.identity, article)
    return list(seen.values())


def _succeeded(
    state: SourceState, now: datetime, etag: str | None, last_modified: str | None, new: int
) -> SourceState:
    return replace(
        state,
        etag=etag,
        last_modified=last_modified,
        last_attempt_at=now,
        last_success_at=now,
        last_error=None,
        consecutive_failures=0,
        next_poll_at=None,
        articles_seen=state.articles_seen + new,
    )


def _assess(
    ctx: PollContext, source: SourceSettings, before: SourceState, after: SourceState,
    new_items: int, now: datetime,
) -> tuple[SourceState, tuple[PlannedAlert, ...]]:
    """The source's health after a successful poll, and the alerts it raises."""
    state, event = health.after_success(before, after, new_items, now, source.expect_every,
                                        ctx.health)
    if event is None:
        return state, ()
    log.warning("source %s (%s): %s", source.name, source.url, event.message,
                extra=about(source=source.name))
    return state, health.health_alerts(event, source.name, source.url, ctx.health_channels, now)


async def _failed(
    ctx: PollContext, state: SourceState, error: SourceError, interval: timedelta, now: datetime
) -> PollReport:
    failures = state.consecutive_failures + 1
    backoff = min(interval * (2 ** (failures - 1)), MAX_BACKOFF)
    if isinstance(error, FetchError) and error.retry_after:
        asked = timedelta(seconds=error.retry_after)
        backoff = max(backoff, min(asked, MAX_BACKOFF))
    failed = replace(state, last_attempt_at=now, last_error=str(error.reason),
                     consecutive_failures=failures, next_poll_at=now + backoff)
    failed, event = health.after_failure(state, failed, now, ctx.health)
    alerts: tuple[PlannedAlert, ...] = ()
    if event is not None:
        log.error("source %s (%s): %s", error.source, error.url, event.message,
                  extra=about(source=error.source))
        alerts = health.health_alerts(event, error.source, error.url, ctx.health_channels, now)
    await ctx.db(ctx.store.record_failure, failed, now, alerts)
    log.error("source %s (%s): %s; failure %d, next try in %s", error.source, error.url,
              error.reason, failures, describe(backoff), extra=about(source=error.source))
    return PollReport(state.name, alerts=len(alerts), error=str(error))
