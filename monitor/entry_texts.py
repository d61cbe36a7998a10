"""Normalising only what is new: the fingerprints of the entries a source's last poll saw.

A feed lists the same entries poll after poll, and a changed feed usually has one
new entry among twenty. Turning every entry's HTML into text to fingerprint it
(``normalise``) was most of a tick's normalising. An entry's content fingerprint
depends on its raw title, summary and content alone, so a source's state keeps,
for each entry of its last fetched feed, a digest of those three raw texts and
the fingerprint they gave (``SourceState.entry_texts``; in the store, so it
survives restarts and serves whichever node polls the source next).

An entry whose raw texts the state knows is normalised without its text
(``normalise.normalise_keys``): identity, fingerprint, guid and link are exactly
those full normalising gives, which is all ``identity.recognise`` needs to find
it unchanged. An unchanged article is neither stored, matched nor clustered, so
its text is never needed. Should any entry so normalised turn out to be anything
but unchanged (edited elsewhere, a copy of another source's article, a new
article: its text is needed), ``needs_text`` says so and the caller normalises
the whole batch in full and recognises it again: the outcome is always the one
full normalising gives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.identity import IdentityMode, Recognised
from monitor.normalise import normalise_entry, normalise_keys
from monitor.records import Article, FeedEntry

# Part of what is stored: a change to what a fingerprint is made of (normalise,
# identity) must change it, so that fingerprints memoised before are not believed.
VERSION = "fp1"


def text_key(entry: FeedEntry) -> str:
    """A digest of the raw texts an entry's fingerprint is made of."""
    digest = hashlib.blake2b(digest_size=16)
    for text in (entry.title, entry.summary, entry.content):
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def known_fingerprints(stored: str | None) -> dict[str, str]:
    """The fingerprint of each raw-text digest in a stored ``entry_texts`` value."""
    if not stored:
        return {}
    version, _, pairs = stored.partition(" ")
    if version != VERSION:
        return {}
    return dict(pair.split(":", 1) for pair in pairs.split())


def stored_value(fingerprints: dict[str, str]) -> str | None:
    """``entry_texts`` as stored: the version, then ``digest:fingerprint`` pairs."""
    if not fingerprints:
        return None
    return " ".join([VERSION, *(f"{key}:{fp}" for key, fp in fingerprints.items())])


@dataclass(frozen=True, slots=True)
class NormalisedBatch:
    """A feed's entries as articles, in feed order; ``keys_only``: the fingerprints of
    those normalised without their text; ``entry_texts``: the value to store."""

    articles: list[Article]
    keys_only: frozenset[str]
    entry_texts: str | None


def normalise_batch(
    source: str, entries: Sequence[FeedEntry], fetched: datetime, identity: IdentityMode,
    stored: str | None,
) -> NormalisedBatch:
    """Normalise the entries, those whose raw texts ``stored`` knows without their text."""
    known = known_fingerprints(stored)
    articles: list[Article] = []
    keys_only: set[str] = set()
    seen: dict[str, str] = {}
    for entry in entries:
        key = text_key(entry)
        fingerprint = known.get(key)
        if fingerprint is None:
            article = normalise_entry(source, entry, fetched, identity)
        else:
            article = normalise_keys(source, entry, fetched, identity, fingerprint)
            keys_only.add(fingerprint)
        seen[key] = article.fingerprint
        articles.append(article)
    return NormalisedBatch(articles, frozenset(keys_only), stored_value(seen))


def normalise_fully(
    source: str, entries: Sequence[FeedEntry], fetched: datetime, identity: IdentityMode,
) -> list[Article]:
    return [normalise_entry(source, entry, fetched, identity) for entry in entries]


def needs_text(batch: NormalisedBatch, items: Sequence[Recognised]) -> bool:
    """Whether an entry normalised without its text was recognised as anything but
    unchanged (or may have been: a fingerprint is all that tells the entries apart)."""
    return bool(batch.keys_only) and any(
        item.status != "unchanged" and item.article.fingerprint in batch.keys_only
        for item in items)
