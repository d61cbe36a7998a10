"""Reading stored articles back in id order, a batch at a time: for the story index's
rebuild and catch-up, backtests and reviews."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, RowMapping, and_, or_, select

from monitor.records import Article
from monitor.store.schema import articles


def rows_since(transaction: Callable[[], AbstractContextManager[Connection]],
               condition: ColumnElement[bool], batch: int) -> Iterator[Sequence[RowMapping]]:
    """Keyset pagination: one short transaction per batch, none held open while the
    caller works on a batch, and never more than one batch in memory."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    after = 0
    while True:
        with transaction() as conn:
            rows = conn.execute(
                select(articles)
                .where(articles.c.id > after, condition)
                .order_by(articles.c.id)
                .limit(batch)
            ).mappings().all()
        if not rows:
            return
        after = int(rows[-1]["id"])
        yield rows
        if len(rows) < batch:
            return


def published_since(since: datetime) -> ColumnElement[bool]:
    """An article's time is its publication time, or its fetch time when it has none.
    Another source's copy of an article is that article: it is not counted twice."""
    return and_(
        or_(articles.c.published_at >= since,
            and_(articles.c.published_at.is_(None), articles.c.fetched_at >= since)),
        articles.c.duplicate_of.is_(None),
    )


def stored_article(row: RowMapping) -> Article:
    return Article(
        source=row["source"],
        identity=row["identity"],
        guid=row["guid"],
        url=row["url"],
        title=row["title"],
        summary=row["summary"],
        content=row["content"],
        author=row["author"],
        published=row["published_at"],
        fetched=row["fetched_at"],
        language=row["language"],
        fingerprint=row["fingerprint"] or "",
    )
