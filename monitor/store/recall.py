"""Finding stored articles again: the rows ``identity.recognise`` sorts a fetched batch
against, and the rules that have matched an article (for its edits)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, and_, bindparam, or_, select

from monitor.identity import StoredArticle, link_key
from monitor.records import Article
from monitor.store.schema import article_aliases, articles, hits

CHUNK = 500  # identities per query: well inside every back-end's parameter limit

# Built once: expanding parameters keep the compiled statement cached.
_RECALL = select(
    articles.c.id, articles.c.source, articles.c.identity, articles.c.link_key,
    articles.c.fingerprint, articles.c.story_id, articles.c.duplicate_of,
).where(or_(
    articles.c.identity.in_(bindparam("identities", expanding=True)),
    articles.c.link_key.in_(bindparam("links", expanding=True)),
    articles.c.fingerprint.in_(bindparam("texts", expanding=True)),
    and_(articles.c.source == bindparam("source"),
         articles.c.fingerprint.in_(bindparam("headlines", expanding=True))),
))


def recall_articles(conn: Connection, source: str,
                    fetched: Sequence[Article]) -> list[StoredArticle]:
    """The stored articles that may be some of ``source``'s ``fetched`` articles: the
    same identity, the same canonical link, or the same content fingerprint (of any
    source when there is text beside the title; else of ``source`` only: a bare
    headline like "Live updates" would find every outlet's). An identity kept as an
    alias finds its article, which then lists it in ``aliases``."""
    found: dict[int, StoredArticle] = {}
    for start in range(0, len(fetched), CHUNK):
        chunk = fetched[start : start + CHUNK]
        identities = [a.identity for a in chunk]
        aliased: dict[str, str] = dict(conn.execute(
            select(article_aliases.c.alias, article_aliases.c.identity)
            .where(article_aliases.c.alias.in_(identities))).all())
        rows = conn.execute(_RECALL, {
            "identities": identities + list(aliased.values()),
            "links": [key for a in chunk if (key := link_key(a.url))],
            "texts": [a.fingerprint for a in chunk if a.fingerprint and (a.summary or a.content)],
            "headlines": [a.fingerprint for a in chunk
                          if a.fingerprint and not (a.summary or a.content)],
            "source": source,
        }).all()
        for row in rows:
            found[int(row.id)] = StoredArticle(
                int(row.id), row.source, row.identity, row.link_key, row.fingerprint,
                row.story_id, None if row.duplicate_of is None else int(row.duplicate_of),
                tuple(a for a, i in aliased.items() if i == row.identity))
    return [found[key] for key in sorted(found)]


def rules_matched(conn: Connection, article_ids: Sequence[int]) -> dict[int, set[str]]:
    """The rules that have matched each of these stored articles."""
    matched: dict[int, set[str]] = {i: set() for i in article_ids}
    for start in range(0, len(article_ids), CHUNK):
        chunk = list(article_ids[start : start + CHUNK])
        for article_id, rule_id in conn.execute(
            select(hits.c.article_id, hits.c.rule_id).where(hits.c.article_id.in_(chunk))
        ):
            matched[int(article_id)].add(rule_id)
    return matched
