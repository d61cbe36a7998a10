"""Stage *store* (and the outbox's rows): the one place that speaks SQL.

Synchronous SQLAlchemy Core; the daemon calls it from one worker thread so the
event loop never blocks on the database. Every method is one transaction
(``articles_since``: one per batch). ``save_batch`` writes a source's new
articles, their hits and the alerts they create together, so an alert exists
exactly when its article does.

The outbox's queries live beside it in ``outbox.py`` (``store.outbox``), its counts in
``outbox_counts.py`` (``store.outbox_counts``), and the channels' health in
``channel_health.py`` (``store.channel_health``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    case,
    create_engine,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, OperationalError

from monitor.errors import StoreError
from monitor.identity import StoredArticle, link_key
from monitor.plan import PlannedAlert
from monitor.records import Article, Hit
from monitor.store.channel_health import ChannelHealth
from monitor.store.filing import file_alerts
from monitor.store.history import published_since, rows_since, stored_article
from monitor.store.migrate import migrate
from monitor.store.nodes import Nodes, names_among
from monitor.store.outbox import Outbox
from monitor.store.outbox_counts import OutboxCounts
from monitor.store.recall import Recall, recall_many, rules_matched
from monitor.store.schema import article_aliases, articles, hits, sources
from monitor.store.silences import Silences, active_silences
from monitor.store.sqlite_connection import set_up_connection
from monitor.store.states import SourceState, configured_state, state_rows, states_upsert
from monitor.store.story_lock import StoryLock

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NewArticle:
    """An article to store with the story it joined, its hits and the alerts they plan.

    ``replaces``: the stored article this is a new version of (its row is updated);
    ``duplicate_of``: the stored article (of another source) this is a copy of;
    ``keep_page``: a new version from a ``full_text`` source's feed, which must not
    replace the page's text and canonical link with the feed's.
    """

    article: Article
    story_id: str
    hits: tuple[Hit, ...]
    alerts: tuple[PlannedAlert, ...]
    replaces: int | None = None
    duplicate_of: int | None = None
    keep_page: bool = False


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    articles_stored: int
    alerts_created: int
    articles_updated: int = 0


class Store:
    """State database. ``Store(url)`` does no I/O; ``open()`` connects and migrates."""

    def __init__(self, url: str) -> None:
        self.url = driver_url(url)
        self._engine: Engine | None = None
        self._statements: dict[object, object] = {}  # ``statement``
        self.outbox = Outbox(self)
        self.outbox_counts = OutboxCounts(self)
        self.channel_health = ChannelHealth(self)
        self.silences = Silences(self)
        self.nodes = Nodes(self)
        self.story_lock = StoryLock(self)

    # --- lifecycle -----------------------------------------------------------------------

    def open(self) -> Store:
        try:
            engine = create_engine(self.url, future=True)
        except (ArgumentError, ImportError) as exc:
            raise StoreError(f"storage.url: cannot use {_redact(self.url)}: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", set_up_connection)
        try:
            with engine.begin() as conn:
                migrate(conn)
        except OperationalError as exc:
            engine.dispose()
            raise StoreError(f"cannot open the state database {_redact(self.url)}: "
                             f"{exc.orig}") from None
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        return self

    @property
    def single_node(self) -> bool:
        """SQLite is one node's state; PostgreSQL may be shared by several."""
        return self.url.startswith("sqlite")

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StoreError("the store is not open")
        return self._engine

    def close(self) -> None:
        self.story_lock.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        if self._engine is None:
            raise StoreError("the store is not open")
        with self._engine.begin() as conn:
            yield conn

    def ping(self) -> None:
        with self.transaction() as conn:
            conn.execute(select(1))

    # --- sources -------------------------------------------------------------------------

    def source_state(self, name: str, url: str) -> SourceState:
        with self.transaction() as conn:
            row = conn.execute(select(sources).where(sources.c.name == name)).mappings().first()
        return configured_state(name, url, row)

    def source_states_for(self, configured: Sequence[tuple[str, str]]) -> dict[str, SourceState]:
        """``source_state`` of many (name, url) pairs, by name, with one query: the states
        of all the sources a node has just claimed."""
        if not configured:
            return {}
        with self.transaction() as conn:
            rows = {row["name"]: row for row in conn.execute(
                select(sources).where(names_among(self.single_node, [n for n, _ in configured]))
            ).mappings()}
        return {name: configured_state(name, url, rows.get(name)) for name, url in configured}

    def source_states(self) -> list[SourceState]:
        with self.transaction() as conn:
            rows = conn.execute(select(sources).order_by(sources.c.name)).mappings().all()
        return [SourceState.from_row(r) for r in rows]

    def write_states(self, conn: Connection, states: Sequence[SourceState]) -> None:
        """Save sources' states (one statement for many, in name order: see ``Nodes``
        on the order rows are locked in; two when only some have new ``entry_texts``:
        the others' are left as stored)."""
        for texts_changed, rows in state_rows(states):
            conn.execute(self.statement(("upsert states", texts_changed), functools.partial(
                states_upsert, self.insert(sources), texts_changed)), rows)

    def record_failure(self, state: SourceState, now: datetime,
                       alerts: Sequence[PlannedAlert] = ()) -> int:
        """Save a failed poll's state, with the operational alerts it raises."""
        with self.transaction() as conn:
            self.write_states(conn, [state])
            if not alerts:
                return 0
            return file_alerts(conn, self.insert, None, alerts, now,
                               active_silences(conn, now))

    # --- articles ------------------------------------------------------------------------

    def recall(self, source: str, fetched: Sequence[Article]) -> list[StoredArticle]:
        """The stored articles that may be some of ``source``'s ``fetched`` articles
        (``recall.recall_many``)."""
        return self.recall_many([(source, fetched)])[0]

    def recall_many(self, asked: Sequence[Recall]) -> list[list[StoredArticle]]:
        """``recall`` for each (source, fetched) pair, in one transaction (the polls that
        ask together: ``recall.recall_many``)."""
        with self.transaction() as conn:
            return recall_many(conn, asked)

    def rules_matched(self, article_ids: Sequence[int]) -> dict[int, set[str]]:
        """The rules that have matched each of these stored articles."""
        with self.transaction() as conn:
            return rules_matched(conn, article_ids)

    def save_batch(
        self, state: SourceState, batch: Sequence[NewArticle], now: datetime,
        health_alerts: Sequence[PlannedAlert] = (), aliases: Sequence[tuple[str, str]] = (),
    ) -> BatchOutcome:
        """Store new articles (and new versions of stored ones) with their hits and
        alerts, and the source's new state. ``aliases``: (identity, article's identity)
        of feed items found to be a stored article by their page's canonical link.

        One multi-row INSERT for the new articles and one for all hits (a cold start
        stores tens of thousands of articles: a statement per row was most of it)."""
        stored = created = updated = 0
        with self.transaction() as conn:
            for alias, identity in aliases:
                conn.execute(self.insert(article_aliases).values(alias=alias, identity=identity)
                             .on_conflict_do_nothing())
            planning = bool(health_alerts) or any(item.alerts for item in batch)
            silences = active_silences(conn, now) if planning else []
            if health_alerts:
                created += file_alerts(conn, self.insert, None, health_alerts, now, silences)
            ids = self._insert_articles(conn, batch)
            hit_rows: list[dict[str, object]] = []
            kept: list[tuple[int, NewArticle]] = []
            for item in batch:
                if item.replaces is not None:
                    article_id: int | None = item.replaces
                    updated += self._update_article(conn, item)
                else:
                    article_id = ids.get(item.article.identity)
                    stored += article_id is not None
                if article_id is None:  # stored meanwhile (another fetch): its alerts exist
                    continue
                hit_rows += [{"article_id": article_id, "rule_id": hit.rule_id,
                              "spans": json.dumps([s.to_json() for s in hit.spans]),
                              "created_at": now} for hit in item.hits]
                kept.append((article_id, item))
            if hit_rows:
                conn.execute(self.statement("insert hits",
                                         lambda: self.insert(hits).on_conflict_do_nothing()),
                             hit_rows)
            for article_id, item in kept:
                created += file_alerts(conn, self.insert, article_id, item.alerts, now,
                                       silences)
            self.write_states(conn, [state])
        return BatchOutcome(stored, created, updated)

    def _insert_articles(self, conn: Connection, batch: Sequence[NewArticle]) -> dict[str, int]:
        """Insert the new articles (those that replace none) not stored yet, in one
        statement; the new rows' ids by identity."""
        rows = [
            {"identity": item.article.identity, "source": item.article.source,
             "fetched_at": item.article.fetched, "story_id": item.story_id,
             "duplicate_of": item.duplicate_of, **_article_values(item.article)}
            for item in batch if item.replaces is None
        ]
        if not rows:
            return {}
        statement = self.statement("insert articles", lambda: (
            self.insert(articles).on_conflict_do_nothing()
            .returning(articles.c.id, articles.c.identity)))
        return {str(identity): int(id_) for id_, identity in conn.execute(statement, rows)}

    def _update_article(self, conn: Connection, item: NewArticle) -> int:
        """A stored article's new version: what the feed says now (its identity, story,
        first fetch time stay). With ``keep_page`` the stored text stays when it is
        longer (the page's, not the feed's), and so do the URL and its key (the page's
        canonical link, which other sources' copies are found by)."""
        values = _article_values(item.article)
        if item.keep_page:
            del values["url"], values["link_key"]
            values["content"] = case(
                (func.length(articles.c.content) > len(item.article.content), articles.c.content),
                else_=item.article.content)
        return int(conn.execute(update(articles).where(articles.c.id == item.replaces)
                                .values(**values)).rowcount)

    def count_articles(self) -> int:
        with self.transaction() as conn:
            return int(conn.execute(select(func.count()).select_from(articles)).scalar_one())

    def articles_since(self, since: datetime, batch: int = 500) -> Iterator[list[Article]]:
        """Stored articles published at or after ``since`` (fetched, for those without a
        publication time), in id order, ``batch`` at a time."""
        for rows in rows_since(self.transaction, published_since(since), batch):
            yield [stored_article(row) for row in rows]

    def stories_since(self, since: datetime, batch: int = 2000,
                      upto: int | None = None) -> Iterator[list[tuple[Article, str]]]:
        """Articles published *or fetched* since ``since``, with their story ids (to
        rebuild the story index: an archive fetched lately is still being clustered).
        Copies of another source's article are left out: the index never saw them.
        ``upto``: only articles with an id up to that one (what ``stories_after`` gives
        later is not given twice)."""
        recent = or_(published_since(since), and_(articles.c.fetched_at >= since,
                                                   articles.c.duplicate_of.is_(None)))
        if upto is not None:
            recent = and_(recent, articles.c.id <= upto)
        for rows in rows_since(self.transaction, recent, batch):
            yield [(stored_article(row), str(row["story_id"])) for row in rows]

    def stories_after(self, after_id: int,
                      batch: int = 2000) -> Iterator[list[tuple[int, Article, str]]]:
        """Articles stored after the one with id ``after_id``, with their ids and story ids
        (what other nodes stored since this one last looked). Copies of another source's
        article are left out: no index learns them."""
        new = and_(articles.c.id > after_id, articles.c.duplicate_of.is_(None))
        for rows in rows_since(self.transaction, new, batch):
            yield [(int(row["id"]), stored_article(row), str(row["story_id"])) for row in rows]

    def last_article_id(self) -> int:
        with self.transaction() as conn:
            return int(conn.execute(select(func.coalesce(func.max(articles.c.id), 0)))
                       .scalar_one())

    def count_articles_since(self, since: datetime) -> int:
        """How many articles ``articles_since(since)`` yields (for progress bars)."""
        with self.transaction() as conn:
            return int(conn.execute(
                select(func.count()).select_from(articles).where(published_since(since))
            ).scalar_one())

    def statement(self, name: object, build: Callable[[], T]) -> T:
        """A statement of every poll, built once: building one (an upsert's ``excluded``
        columns above all) cost more than the database's work for a poll."""
        built = self._statements.get(name)
        if built is None:
            built = self._statements[name] = build()
        return cast(T, built)

    def insert(self, table: Table) -> sqlite.Insert:
        """An INSERT with ON CONFLICT support (same API on SQLite and PostgreSQL)."""
        assert self._engine is not None
        if self._engine.dialect.name == "postgresql":
            return cast(sqlite.Insert, postgresql.insert(table))
        return sqlite.insert(table)


def _article_values(a: Article) -> dict[str, object]:
    """The columns of an article that a new version of it may change."""
    return {"guid": a.guid, "url": a.url, "title": a.title, "summary": a.summary,
            "content": a.content, "author": a.author, "published_at": a.published,
            "language": a.language, "link_key": link_key(a.url),
            "fingerprint": a.fingerprint or None}


def driver_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 (SQLAlchemy's bare default is psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _redact(url: str) -> str:
    """A database URL without its password."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
