"""The life of one poll of one source, stage by stage:

    fetch -> parse -> normalise -> identity (new, updated, copies)
          -> full text (new articles of full_text sources) -> match
          -> identity again (the pages' canonical links) -> stories -> plan -> store + outbox

``poll_source`` is the one function that composes the stages; everything it
calls is a stage module. A failing source costs that source an error line and
a backoff, never an exception out of here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from monitor import health
from monitor.batched import Batched
from monitor.config import HealthSettings, SourceSettings
from monitor.durations import describe
from monitor.entry_texts import needs_text, normalise_batch, normalise_fully
from monitor.errors import FetchError, ParseError, SourceError
from monitor.fetch import Fetcher, Validators
from monitor.fulltext import PageReader
from monitor.identity import Recognised, StoredArticle, recognise
from monitor.logs import about
from monitor.match.matcher import Matcher
from monitor.parse import parse_feed
from monitor.parse.discover import discover_feed_url
from monitor.plan import PlannedAlert, Planner
from monitor.records import Article, FetchResult, Hit, ParsedFeed
from monitor.store import NewArticle, SourceState, Store
from monitor.store.recall import Recall
from monitor.stories.shared import SharedStories, StoryTurn
from monitor.workers import JobTimeout, WorkerLost, WorkerPool

log = logging.getLogger("newsmon.poll")

MAX_BACKOFF = timedelta(hours=6)
DbRunner = Callable[..., Awaitable[Any]]
Recaller = Callable[[Recall], Awaitable[list[StoredArticle]]]
Hits = tuple[Hit, ...]


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
    # The stored articles a source's fetched ones may be, asked for with the other polls
    # asking meanwhile, in one transaction (``batched.py``, ``Store.recall_many``).
    recall: Batched[Recall, list[StoredArticle]]
    # Held from recognising a poll's new articles to storing them, so two sources that
    # carry one article at the same moment are seen one after the other (one process).
    storing: asyncio.Lock = field(default_factory=asyncio.Lock)


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
    updated: int = 0  # stored articles whose feed item was edited
    # A poll that changed nothing but its source's state (a 304, a feed with nothing
    # new, a failure that raised no alert) leaves that state to the caller to save,
    # with other polls' states in one transaction; every other outcome is committed.
    unsaved: SourceState | None = None


async def poll_source(
    ctx: PollContext,
    source: SourceSettings,
    interval: timedelta,
    max_age: timedelta | None,
    state: SourceState,
    *,
    ignore_backoff: bool = False,
) -> PollReport:
    """Poll ``source``, whose stored ``state`` the caller read (with other sources')."""
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
        log.debug("source %s: not modified", source.name, extra=about(source=source.name))
        if not health:
            return PollReport(source.name, not_modified=True, unsaved=new_state)
        await ctx.db(ctx.store.save_batch, new_state, [], now, health)
        return PollReport(source.name, not_modified=True)
    if feed.skipped:
        log.warning("source %s (%s): %d items beyond the cap of %d were skipped",
                    source.name, source.url, feed.skipped, ctx.max_items,
                    extra=about(source=source.name))
    # Entries the last poll saw are normalised without their text (entry_texts.py).
    normalised = normalise_batch(source.name, feed.entries, now, source.identity,
                                 state.entry_texts)
    articles = normalised.articles
    items = await _recognise(ctx.recall, source, articles)
    if needs_text(normalised, items):
        articles = normalise_fully(source.name, feed.entries, now, source.identity)
        items = await _recognise(ctx.recall, source, articles)
    state = replace(state, entry_texts=normalised.entry_texts)
    batch = await _updates(ctx, source, [i for i in items if i.status == "updated"], now,
                           max_age)
    batch += [_copy(i) for i in items if i.status == "duplicate"]
    new_articles = [i.article for i in items if i.status == "new"]
    if source.full_text and new_articles:
        new_articles = await _read_pages(ctx, source, new_articles,
                                         now - max_age if max_age else None)
    fresh = [(article, tuple(ctx.matcher.match(article))) for article in new_articles]
    # Story ids are assigned and stored as one step across all nodes (stories/shared.py),
    # and within this process (``ctx.storing``); the new articles are recognised again
    # in that step.
    async with (ctx.storing if fresh else contextlib.nullcontext(),
                ctx.stories.assigning(any_new=bool(fresh)) as turn):
        added, aliases = await _new(ctx, turn, source, fresh, now, max_age)
        batch += added
        new = sum(1 for item in batch if item.replaces is None)
        new_state, health = _assess(ctx, source, before, _succeeded(
            state, now, fetched.etag, fetched.last_modified, new), new, now)
        if not (batch or health or aliases):
            log.info("source %s: %d items, 0 new, 0 alerts", source.name, len(articles),
                     extra=about(source=source.name))
            return PollReport(source.name, len(articles), unsaved=new_state)
        outcome = await turn.db(ctx.store.save_batch, new_state, batch, now, health, aliases)
    edited = f", {outcome.articles_updated} updated" if outcome.articles_updated else ""
    log.info("source %s: %d items, %d new, %d alerts%s", source.name, len(articles),
             outcome.articles_stored, outcome.alerts_created, edited,
             extra=about(source=source.name))
    return PollReport(source.name, len(articles), outcome.articles_stored,
                      outcome.alerts_created, updated=outcome.articles_updated,
                      hits=tuple(hit.rule_id for item in batch if item.replaces is None
                                 for hit in item.hits))


async def _recognise(recall: Recaller, source: SourceSettings,
                     articles: list[Article]) -> list[Recognised]:
    """What the store has of the source's articles: new, as they are, edited, or copied."""
    stored = await recall((source.name, articles))
    return recognise(articles, stored, source.identity)


def _recall_in_turn(ctx: PollContext, turn: StoryTurn) -> Recaller:
    """Within a story turn, the recall of one poll: with the other polls' on one node;
    on the turn's own thread where other nodes wait for the turn to end."""
    if not turn.locked:
        return ctx.recall

    async def alone(asked: Recall) -> list[StoredArticle]:
        return list(await turn.db(ctx.store.recall, *asked))

    return alone


async def _new(
    ctx: PollContext, turn: StoryTurn, source: SourceSettings,
    fresh: list[tuple[Article, Hits]], now: datetime, max_age: timedelta | None,
) -> tuple[list[NewArticle], list[tuple[str, str]]]:
    """New articles join stories (in time order) and plan the alerts of their hits.

    Called in the story ``turn``, under ``ctx.storing``: a source polled at the same
    moment (here, or on another node) may have stored some of them since they were
    recognised; those are its copies now. A page read
    for an article may have named a canonical link the source's stored article has:
    it is that article, reached by another link, and that link's identity is returned
    as its alias (so the item is known next time without reading its page).
    """
    if not fresh:
        return [], []
    hits = {article.identity: found for article, found in fresh}
    articles = [article for article, _ in fresh]
    again = await _recognise(_recall_in_turn(ctx, turn), source, articles)
    aliases = [(item.alias, item.article.identity) for item in again if item.alias]
    batch = [_copy(item) for item in again if item.status == "duplicate"]
    for item in sorted((i for i in again if i.status == "new"), key=lambda i: i.article.when):
        story_id = turn.index.assign(item.article)
        found = hits[item.article.identity]
        batch.append(NewArticle(item.article, story_id, found,
                                ctx.planner.plan(item.article, story_id, found, now, max_age)))
    return batch, aliases


def _copy(item: Recognised) -> NewArticle:
    """Another source's copy of a stored article: kept in that article's story, never
    alerted (that article was)."""
    assert item.stored is not None
    return NewArticle(item.article, item.stored.story_id, (), (),
                      duplicate_of=item.stored.original)


async def _updates(ctx: PollContext, source: SourceSettings, items: list[Recognised],
                   now: datetime, max_age: timedelta | None) -> list[NewArticle]:
    """Edited articles are matched again and alert only for the rules that did not
    match them before: a rule never alerts twice on one article. (An edited copy of
    another source's article is stored as it is now, and still never alerted.)

    A ``full_text`` source's page is not read again for an edit: the stored page text
    and canonical link stay (``keep_page``), the feed's title and summary are taken.
    """
    if not items:
        return []
    matched = await ctx.db(ctx.store.rules_matched, [i.stored.id for i in items if i.stored])
    batch = []
    for item in items:
        assert item.stored is not None
        if item.stored.duplicate_of is not None:
            batch.append(NewArticle(item.article, item.stored.story_id, (), (),
                                    replaces=item.stored.id, keep_page=source.full_text))
            continue
        hits = tuple(ctx.matcher.match(item.article))
        fresh = [h for h in hits if h.rule_id not in matched[item.stored.id]]
        alerts = ctx.planner.plan(item.article, item.stored.story_id, fresh, now, max_age)
        batch.append(NewArticle(item.article, item.stored.story_id, hits, alerts,
                                replaces=item.stored.id, keep_page=source.full_text))
    return batch


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
                                     url, fetched.body, fetched.content_type, ctx.max_items,
                                     fetched.url)
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
) -> list[Article]:
    """Full text and canonical links for the new articles young enough to alert (an
    older one never alerts: its page is not worth a fetch). Whether a canonical link
    shows an article to be stored already is for ``_new`` to find."""
    young = [a for a in fresh if oldest is None or a.when >= oldest]
    read = await ctx.pages.read(source.name, young, allow_private=source.allow_private)
    pages = {before.identity: after for before, after in zip(young, read, strict=True)}
    return [pages.get(a.identity, a) for a in fresh]


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


async def poll_failed_unexpectedly(ctx: PollContext, source: SourceSettings,
                                   state: SourceState, interval: timedelta,
                                   exc: Exception) -> PollReport:
    """A bug, not the source, cost this poll: recorded as the source's failure all the
    same, so ``status`` shows it and the source backs off instead of failing anew at
    every interval."""
    error = SourceError(source.name, source.url, f"internal error: {exc!r}")
    return await _failed(ctx, state, error, interval, ctx.clock())


def _doubled(interval: timedelta, times: int) -> timedelta:
    """``interval`` doubled ``times`` times, capped at ``MAX_BACKOFF``; doubling stops at
    the cap (a source failing for weeks: 10 min * 2**40 overflows a timedelta)."""
    backoff = interval
    for _ in range(times):
        if backoff >= MAX_BACKOFF:
            break
        backoff *= 2
    return min(backoff, MAX_BACKOFF)


async def _failed(
    ctx: PollContext, state: SourceState, error: SourceError, interval: timedelta, now: datetime
) -> PollReport:
    failures = state.consecutive_failures + 1
    backoff = _doubled(interval, failures - 1)
    if isinstance(error, FetchError) and error.retry_after:
        # Capped before it becomes a timedelta: "Retry-After: 999…9" would overflow one.
        asked = timedelta(seconds=min(error.retry_after, MAX_BACKOFF.total_seconds()))
        backoff = max(backoff, asked)
    failed = replace(state, last_attempt_at=now, last_error=str(error.reason),
                     consecutive_failures=failures, next_poll_at=now + backoff)
    failed, event = health.after_failure(state, failed, now, ctx.health)
    if event is not None:
        log.error("source %s (%s): %s", error.source, error.url, event.message,
                  extra=about(source=error.source))
    log.error("source %s (%s): %s; failure %d, next try in %s", error.source, error.url,
              error.reason, failures, describe(backoff), extra=about(source=error.source))
    if event is None:
        return PollReport(state.name, error=str(error), unsaved=failed)
    alerts = health.health_alerts(event, error.source, error.url, ctx.health_channels, now)
    await ctx.db(ctx.store.record_failure, failed, now, alerts)
    return PollReport(state.name, alerts=len(alerts), error=str(error))
