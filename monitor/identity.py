"""Stage *identity*: which fetched items the store has already, and as what.

Every article carries two keys computed from what its feed said (``normalise``):

- its **identity**, unique in the store, chosen by the source's ``identity``
  setting: ``guid`` (the default: the feed's guid, else the canonical link, else
  the content fingerprint), ``link`` (the canonical link, else the fingerprint)
  or ``content`` (the fingerprint). The source's name is part of it.
- its **content fingerprint**: a hash of its normalised title and text (words
  only, case-folded, accents stripped), so the same text is the same fingerprint
  whatever its markup, punctuation or spacing.

``recognise`` sorts a fetched batch against the stored articles the store found
for it (``Store.recall``: same identity, same canonical link, or same fingerprint):

- **unchanged**: the source's article, as stored;
- **updated**: the source's article with a changed title or text: it is matched
  again, and alerts only for rules that did not match it before;
- **duplicate**: another source's article (the same canonical link, or the same
  title and text): stored as a copy of it, in its story, never alerted;
- **new**: everything else.

Within a source, an article is its stored article when the identity is the same
(or one the store keeps as its alias: another feed link whose page named the
article's canonical link, ``full_text``), or else when the mode's fallback key
is: in ``guid`` mode the same link *and* the same text (a feed that makes up a
new guid on every fetch must not raise an alert storm, while entries of a live
blog that share one link but not their text stay apart; without a link, the same
text; without a guid, the same link, as its identity says), in ``link`` mode the
same link, in ``content`` mode the same text. Across sources, a text-only match needs a body:
two outlets' identical headlines over nothing are not one article.

Pure: no I/O. The canonical URL itself is ``normalise.canonical_url``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from monitor.records import Article

IdentityMode = Literal["guid", "link", "content"]
Status = Literal["new", "unchanged", "updated", "duplicate"]

_WORD = re.compile(r"\w+")


def content_fingerprint(title: str, summary: str, content: str) -> str:
    """A hash of the words of an item's title and text, folded (case, accents, NFKC)."""
    text = "\n".join((title, summary, content))
    if text.isascii():  # most news: lower() is all the folding it needs
        folded = text.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", text.casefold())
        folded = _without_combining_marks(decomposed)
    return _digest(" ".join(_WORD.findall(folded)))


def _without_combining_marks(text: str) -> str:
    """``text`` without the combining marks (accents NFKD split off): each distinct
    mark removed in one pass over the string, not a Python test per character."""
    for mark in {c for c in set(text) if unicodedata.combining(c)}:
        text = text.replace(mark, "")
    return text


def link_key(url: str | None) -> str | None:
    """A canonical URL as a short key the store can index (URLs may be very long)."""
    return _digest(url) if url else None


def article_identity(
    mode: IdentityMode, source: str, guid: str | None, url: str | None, fingerprint: str
) -> str:
    """An article's identity: unique in the store, the same every time the feed lists it.

    The ``guid`` and link keys are those newsmon has always used, so a database
    from before identity modes keeps recognising its articles.
    """
    if mode == "guid" and guid:
        key = f"guid\0{source}\0{guid}"
    elif mode != "content" and url:
        key = f"url\0{source}\0{url}"
    else:
        key = f"content\0{source}\0{fingerprint}"
    return _digest(key)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """What the store knows of an article, to recognise it."""

    id: int
    source: str
    identity: str
    link_key: str | None
    fingerprint: str | None
    story_id: str
    duplicate_of: int | None = None
    aliases: tuple[str, ...] = ()  # other identities of the article (``full_text``)

    @property
    def original(self) -> int:
        """The article this one is (itself, unless it is another source's copy)."""
        return self.duplicate_of if self.duplicate_of is not None else self.id


@dataclass(frozen=True, slots=True)
class Recognised:
    """A fetched article and what it is; ``stored`` is the row it is (unchanged,
    updated: the article then carries that row's identity) or copies (duplicate).
    ``alias``: the identity the item came with, when it is its source's stored article
    under another one and that identity follows its link (see ``alias_of``)."""

    article: Article
    status: Status
    stored: StoredArticle | None = None
    alias: str | None = None


def recognise(
    articles: Sequence[Article], stored: Iterable[StoredArticle], mode: IdentityMode
) -> list[Recognised]:
    """Sort a source's fetched batch (one source, in feed order) into new, unchanged,
    updated and duplicate articles. Repeats within the batch are dropped (the first
    one wins); ``guid`` mode gives an item whose guid an earlier item of the batch
    holds with another link its link's identity instead (feeds that reuse guids)."""
    known = _Known(stored)
    seen_keys: set[object] = set()
    seen_links: dict[str, str | None] = {}
    claimed: set[int] = set()
    result: list[Recognised] = []
    for article in articles:
        key = link_key(article.url)
        if mode == "guid" and article.guid and seen_links.get(article.identity, key) != key:
            article = replace(article, identity=article_identity(
                "link" if key else "content", article.source, None, article.url,
                article.fingerprint))
        keys = {article.identity, _fallback_key(mode, article, key)} - {None}
        if keys & seen_keys:
            continue
        seen_keys |= keys
        seen_links.setdefault(article.identity, key)
        found = known.own(article, key, mode)
        if found is not None:
            if found.id in claimed:
                continue
            claimed.add(found.id)
            alias = None
            if article.identity != found.identity:
                if _by_link(mode, article):
                    alias = article.identity
                article = replace(article, identity=found.identity)
            changed = bool(article.fingerprint) and found.fingerprint != article.fingerprint
            result.append(Recognised(article, "updated" if changed else "unchanged", found,
                                     alias))
            continue
        copied = known.elsewhere(article, key)
        result.append(Recognised(article, "duplicate", copied) if copied else
                      Recognised(article, "new"))
    return result


def _by_link(mode: IdentityMode, article: Article) -> bool:
    """Whether the article's identity follows its link: then the same canonical link
    is the same article (a guid says more than a link; a text is not a link)."""
    return mode == "link" or (mode == "guid" and not article.guid)


def _fallback_key(mode: IdentityMode, article: Article, link: str | None) -> object:
    """The key that makes two of a source's items one article when their identities
    differ (see the module docstring); None when there is nothing to go by."""
    fingerprint = article.fingerprint
    if link and _by_link(mode, article):
        return ("link", link)
    if not fingerprint:
        return None
    if mode == "guid" and link:
        return ("link+text", link, fingerprint)
    return ("text", fingerprint)


class _Known:
    """The stored candidates, looked up by identity, link and fingerprint."""

    def __init__(self, stored: Iterable[StoredArticle]) -> None:
        self.by_identity: dict[str, StoredArticle] = {}
        self.by_link: dict[str, list[StoredArticle]] = {}
        self.by_text: dict[str, list[StoredArticle]] = {}
        for row in sorted(stored, key=lambda r: r.id):  # the oldest first
            self.by_identity[row.identity] = row
            for alias in row.aliases:
                self.by_identity.setdefault(alias, row)
            if row.link_key:
                self.by_link.setdefault(row.link_key, []).append(row)
            if row.fingerprint:
                self.by_text.setdefault(row.fingerprint, []).append(row)

    def own(self, article: Article, link: str | None,
            mode: IdentityMode) -> StoredArticle | None:
        """The source's stored article this one is, if any."""
        row = self.by_identity.get(article.identity)
        if row is not None and row.source == article.source:
            return row
        fingerprint = article.fingerprint
        candidates: Iterable[StoredArticle]
        if link and _by_link(mode, article):
            candidates = self.by_link.get(link, ())
        elif mode == "guid" and link:
            candidates = (r for r in self.by_link.get(link, ()) if r.fingerprint == fingerprint)
        else:
            candidates = self.by_text.get(fingerprint, ()) if fingerprint else ()
        return next((r for r in candidates if r.source == article.source), None)

    def elsewhere(self, article: Article, link: str | None) -> StoredArticle | None:
        """Another source's article with the same canonical link, or the same title
        and (non-empty) text."""
        candidates: list[StoredArticle] = list(self.by_link.get(link, ())) if link else []
        if article.fingerprint and (article.summary or article.content):
            candidates += self.by_text.get(article.fingerprint, ())
        others = [r for r in candidates if r.source != article.source]
        return min(others, key=lambda r: r.original) if others else None
