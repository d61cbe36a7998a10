"""Stage *store* (and the outbox's rows): the one place that speaks SQL.

Synchronous SQLAlchemy Core; the daemon calls it from one worker thread so the
event loop never blocks on the database. Every method is one transaction.
``save_batch`` writes a source's new articles, their hits and the alerts they
create together, so an alert exists exactly when its article does.

The outbox is a queue in a table: a row is claimed with a conditional UPDATE
that succeeds for one claimant only, and marked sent only after the send
succeeded, so a crash mid-send means a resend, never a loss.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
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
from monitor.records import Alert, Article, Delivery, Hit
from monitor.store.migrate import migrate
from monitor.store.schema import articles, hits, outbox, sources


@dataclass(frozen=True, slots=True)
class SourceState:
    name: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    next_poll_at: datetime | None = None
    articles_seen: int = 0


@dataclass(frozen=True, slots=True)
class NewArticle:
    """An article to store with the story it joined, its hits and the alerts they plan."""

    article: Article
    story_id: str
    hits: tuple[Hit, ...]
    alerts: tuple[tuple[Alert, str], ...]  # (alert, dedupe key)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    articles_stored: int
    alerts_created: int


@dataclass(frozen=True, slots=True)
class OutboxCount:
    channel: str
    status: str
    count: int


class Store:
    """State database. ``Store(url)`` does no I/O; ``open()`` connects and migrates."""

    def __init__(self, url: str) -> None:
        self.url = driver_url(url)
        self._engine: Engine | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def open(self) -> Store:
        try:
            engine = create_engine(self.url, future=True)
        except (ArgumentError, ImportError) as exc:
            raise StoreError(f"storage.url: cannot use {_redact(self.url)}: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
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

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        if self._engine is None:
            raise StoreError("the store is not open")
        with self._engine.begin() as conn:
            yield conn

    def ping(self) -> None:
        with self._transaction() as conn:
            conn.execute(select(1))

    # --- sources -------------------------------------------------------------------------

    def source_state(self, name: str, url: str) -> SourceState:
        with self._transaction() as conn:
            row = conn.execute(select(sources).where(sources.c.name == name)).mappings().first()
        if row is None:
            return SourceState(name=name, url=url)
        state = SourceState(**dict(row))
        if state.url != url:  # the feed moved: its validators belong to the old URL
            return SourceState(name=name, url=url, last_success_at=state.last_success_at,
                               articles_seen=state.articles_seen)
        return state

    def source_states(self) -> list[SourceState]:
        with self._transaction() as conn:
            rows = conn.execute(select(sources).order_by(sources.c.name)).mappings().all()
        return [SourceState(**dict(r)) for r in rows]

    def _upsert_source(self, conn: Connection, state: SourceState) -> None:
        values = {
            "name": state.name,
            "url": state.url,
            "etag": state.etag,
            "last_modified": state.last_modified,
            "last_attempt_at": state.last_attempt_at,
            "last_success_at": state.last_success_at,
            "last_error": state.last_error,
            "consecutive_failures": state.consecutive_failures,
            "next_poll_at": state.next_poll_at,
            "articles_seen": state.articles_seen,
        }
        statement = self._insert(sources).values(**values)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[sources.c.name],
                set_={k: v for k, v in values.items() if k != "name"},
            )
        )

    def record_failure(self, state: SourceState) -> None:
        with self._transaction() as conn:
            self._upsert_source(conn, state)

    # --- articles ------------------------------------------------------------------------

    def known_identities(self, identities: Sequence[str]) -> set[str]:
        known: set[str] = set()
        with self._transaction() as conn:
            for start in range(0, len(identities), 500):
                chunk = list(identities[start : start + 500])
                known.update(
                    conn.execute(
                        select(articles.c.identity).where(articles.c.identity.in_(chunk))
                    ).scalars()
                )
        return known

    def save_batch(
        self, state: SourceState, batch: Sequence[NewArticle], now: datetime
    ) -> BatchOutcome:
        """Store new articles with their hits and alerts, and the source's new state."""
        stored = created = 0
        with self._transaction() as conn:
            for item in batch:
                article_id = self._insert_article(conn, item, now)
                if article_id is None:  # stored meanwhile (another fetch): its alerts exist
                    continue
                stored += 1
                for hit in item.hits:
                    conn.execute(
                        self._insert(hits)
                        .values(
                            article_id=article_id,
                            rule_id=hit.rule_id,
                            spans=json.dumps([s.to_json() for s in hit.spans]),
                            created_at=now,
                        )
                        .on_conflict_do_nothing()
                    )
                for alert, dedupe_key in item.alerts:
                    result = conn.execute(
                        self._insert(outbox)
                        .values(
                            channel=alert.channel,
                            rule_id=alert.rule_id,
                            dedupe_key=dedupe_key,
                            article_id=article_id,
                            payload=json.dumps(alert.to_json()),
                            status="pending",
                            attempts=0,
                            next_attempt_at=now,
                            created_at=now,
                        )
                        .on_conflict_do_nothing()
                        .returning(outbox.c.id)  # rowcount is -1 here on some drivers
                    )
                    created += len(result.all())
            self._upsert_source(conn, state)
        return BatchOutcome(stored, created)

    def _insert_article(self, conn: Connection, item: NewArticle, now: datetime) -> int | None:
        a = item.article
        statement = (
            self._insert(articles)
            .values(
                identity=a.identity,
                source=a.source,
                guid=a.guid,
                url=a.url,
                title=a.title,
                summary=a.summary,
                content=a.content,
                author=a.author,
                published_at=a.published,
                fetched_at=a.fetched,
                language=a.language,
                story_id=item.story_id,
            )
            .on_conflict_do_nothing()
            .returning(articles.c.id)
        )
        row = conn.execute(statement).first()
        return int(row[0]) if row else None

    def count_articles(self) -> int:
        with self._transaction() as conn:
            return int(conn.execute(select(func.count()).select_from(articles)).scalar_one())

    # --- outbox --------------------------------------------------------------------------

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Delivery]:
        """Claim up to ``limit`` due rows, oldest first; each claim wins for one claimant."""
        due = or_(
            and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now),
            and_(outbox.c.status == "sending", outbox.c.claimed_until < now),
        )
        claimed: list[Delivery] = []
        with self._transaction() as conn:
            candidates = conn.execute(
                select(outbox.c.id, outbox.c.payload, outbox.c.attempts, outbox.c.created_at)
                .where(due)
                .order_by(outbox.c.id)
                .limit(limit)
            ).all()
            for row in candidates:
                won = conn.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id, due)
                    .values(status="sending", claimed_until=now + lease,
                            attempts=outbox.c.attempts + 1)
                ).rowcount
                if won == 1:
                    claimed.append(Delivery(int(row.id), Alert.from_json(json.loads(row.payload)),
                                            int(row.attempts) + 1, row.created_at))
        return claimed

    def mark_sent(self, outbox_id: int, now: datetime) -> None:
        with self._transaction() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == outbox_id)
                .values(status="sent", sent_at=now, claimed_until=None, last_error=None)
            )

    def mark_retry(self, outbox_id: int, error: str, next_attempt: datetime) -> None:
        with self._transaction() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == outbox_id)
                .values(status="pending", next_attempt_at=next_attempt, claimed_until=None,
                        last_error=error)
            )

    def mark_failed(self, outbox_id: int, error: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == outbox_id)
                .values(status="failed", claimed_until=None, last_error=error)
            )

    def outbox_counts(self) -> list[OutboxCount]:
        with self._transaction() as conn:
            rows = conn.execute(
                select(outbox.c.channel, outbox.c.status, func.count())
                .group_by(outbox.c.channel, outbox.c.status)
                .order_by(outbox.c.channel, outbox.c.status)
            ).all()
        return [OutboxCount(r[0], r[1], int(r[2])) for r in rows]

    def _insert(self, table: Table) -> sqlite.Insert:
        """An INSERT with ON CONFLICT support (same API on SQLite and PostgreSQL)."""
        assert self._engine is not None
        if self._engine.dialect.name == "postgresql":
            return cast(sqlite.Insert, postgresql.insert(table))
        return sqlite.insert(table)


def driver_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 (SQLAlchemy's bare default is psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # WAL lets readers (status, other tools) work while the daemon writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _redact(url: str) -> str:
    """A database URL without its password."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
