"""Finding stored articles again: the rows ``identity.recognise`` sorts a fetched batch
against, and the rules that have matched an article (for its edits).

Polls that ask at the same moment are answered together (``Store.recall_many``, one
transaction; the daemon gathers them with ``batched.py``): one alias query and one
four-way ``OR`` of index look-ups for up to ``CHUNK`` fetched articles of any number
of polls, each row then handed to the polls whose keys found it. Each list of keys
is one parameter (a JSON array on SQLite, an array on PostgreSQL): an expanding
``IN`` renders a placeholder per value, which was half of a recall's cost.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Select, and_, or_, select

from monitor.identity import StoredArticle, link_key
from monitor.records import Article
from monitor.store.lists import among, as_parameter
from monitor.store.schema import article_aliases, articles, hits

CHUNK = 500  # fetched articles per query (as each poll's were before polls were batched)

Recall = tuple[str, Sequence[Article]]  # a source, and the articles it fetched
_LISTS = ("identities", "links", "texts", "sources", "headlines")


def _statements(postgresql: bool) -> tuple[Select[Any], Select[Any]]:
    """The alias query and the look-ups (built once per back-end: compiled once)."""
    aliases = select(article_aliases.c.alias, article_aliases.c.identity).where(
        among(article_aliases.c.alias, "identities", postgresql))
    look_ups = select(
        articles.c.id, articles.c.source, articles.c.identity, articles.c.link_key,
        articles.c.fingerprint, articles.c.story_id, articles.c.duplicate_of,
    ).where(or_(
        among(articles.c.identity, "identities", postgresql),
        among(articles.c.link_key, "links", postgresql),
        among(articles.c.fingerprint, "texts", postgresql),
        # A headline without text finds its own source's articles only: the pairs are
        # checked in ``_Keys.asking`` (a row-value IN would scan the table on SQLite).
        and_(among(articles.c.source, "sources", postgresql),
             among(articles.c.fingerprint, "headlines", postgresql)),
    ))
    return aliases, look_ups


_STATEMENTS = {False: _statements(False), True: _statements(True)}


def recall_many(conn: Connection, asked: Sequence[Recall]) -> list[list[StoredArticle]]:
    """For each (source, fetched) pair, in order, the stored articles that may be some of
    ``source``'s ``fetched`` articles: the same identity, the same canonical link, or
    the same content fingerprint (of any source when there is text beside the title;
    else of ``source`` only: a bare headline like "Live updates" would find every
    outlet's). An identity kept as an alias finds its article, which then lists it in
    ``aliases``.

    One query of each kind per ``CHUNK`` articles of all the polls. Each poll's
    articles are looked up ``CHUNK`` at a time as they always were: what a poll is
    given does not depend on which polls asked with it."""
    postgresql = conn.dialect.name == "postgresql"
    aliases, look_ups = _STATEMENTS[postgresql]
    found: list[dict[int, StoredArticle]] = [{} for _ in asked]
    for pieces in _chunks(asked):
        identities = [i for piece in pieces for i in piece.identities]
        aliased: list[tuple[str, str]] = [
            (alias, identity) for alias, identity in
            conn.execute(aliases, {"identities": as_parameter(identities, postgresql)})]
        for piece in pieces:
            piece.find_aliases(aliased)
        keys = _Keys(pieces)
        parameters = {name: as_parameter(values, postgresql)
                      for name, values in zip(_LISTS, keys.lists(), strict=True)}
        for id_, source, identity, link, fingerprint, story_id, duplicate_of in conn.execute(
                look_ups, parameters).all():
            for piece in keys.asking(identity, link, fingerprint, source):
                found[piece.asked][int(id_)] = StoredArticle(
                    int(id_), source, identity, link, fingerprint, story_id,
                    None if duplicate_of is None else int(duplicate_of),
                    piece.aliases.get(identity, ()))
    return [[rows[key] for key in sorted(rows)] for rows in found]


@dataclass(slots=True)
class _Piece:
    """Up to ``CHUNK`` of one poll's fetched articles (``asked``: which poll), and the
    keys they are looked up by."""

    asked: int
    source: str
    identities: list[str]
    links: list[str]
    texts: list[str]
    headlines: list[str]
    # article's identity -> the aliases among ``identities`` that name it
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, asked: int, source: str, chunk: Sequence[Article]) -> _Piece:
        return cls(asked, source, [a.identity for a in chunk],
                   [key for a in chunk if (key := link_key(a.url))],
                   [a.fingerprint for a in chunk if a.fingerprint and (a.summary or a.content)],
                   [a.fingerprint for a in chunk if a.fingerprint and not (a.summary or a.content)])

    def find_aliases(self, aliased: Sequence[tuple[str, str]]) -> None:
        """Keep the (alias, identity) pairs whose alias this piece asked for."""
        mine = set(self.identities)
        for alias, identity in aliased:
            if alias in mine:
                self.aliases[identity] = (*self.aliases.get(identity, ()), alias)


def _chunks(asked: Sequence[Recall]) -> Iterator[list[_Piece]]:
    """The polls' articles cut into pieces of at most ``CHUNK`` each (one poll's first
    ``CHUNK``, its next ...), and the pieces packed, in order, into chunks of at most
    ``CHUNK`` articles: one query of each kind per chunk."""
    chunk: list[_Piece] = []
    size = 0
    for number, (source, fetched) in enumerate(asked):
        for start in range(0, len(fetched), CHUNK):
            piece = fetched[start : start + CHUNK]
            if chunk and size + len(piece) > CHUNK:
                yield chunk
                chunk, size = [], 0
            chunk.append(_Piece.of(number, source, piece))
            size += len(piece)
    if chunk:
        yield chunk


class _Keys:
    """The keys of a chunk's pieces: the query's lists, and which pieces a row found
    answers (as the query's ``OR`` would have for each piece alone)."""

    def __init__(self, pieces: Sequence[_Piece]) -> None:
        self.by_identity: dict[str, list[_Piece]] = {}
        self.by_link: dict[str, list[_Piece]] = {}
        self.by_text: dict[str, list[_Piece]] = {}
        self.by_headline: dict[tuple[str, str], list[_Piece]] = {}
        for piece in pieces:
            for identity in {*piece.identities, *piece.aliases}:
                self.by_identity.setdefault(identity, []).append(piece)
            for link in set(piece.links):
                self.by_link.setdefault(link, []).append(piece)
            for text in set(piece.texts):
                self.by_text.setdefault(text, []).append(piece)
            for headline in set(piece.headlines):
                self.by_headline.setdefault((piece.source, headline), []).append(piece)

    def lists(self) -> tuple[list[str], ...]:
        """Identities, links, texts, and the sources and fingerprints of headlines."""
        return (list(self.by_identity), list(self.by_link), list(self.by_text),
                list({source for source, _ in self.by_headline}),
                list({headline for _, headline in self.by_headline}))

    def asking(self, identity: str, link: str | None, fingerprint: str | None,
               source: str) -> list[_Piece]:
        """The pieces a stored row with these keys answers, each once, in chunk order."""
        pieces = [*self.by_identity.get(identity, ()),
                  *(self.by_link.get(link, ()) if link else ()),
                  *(self.by_text.get(fingerprint, ()) if fingerprint else ()),
                  *(self.by_headline.get((source, fingerprint), ()) if fingerprint else ())]
        if len(pieces) == 1:
            return pieces
        return list({id(piece): piece for piece in pieces}.values())


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
