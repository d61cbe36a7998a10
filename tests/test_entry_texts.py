"""Normalising only what is new: the entries a source's last poll saw are recognised by
the fingerprints kept in its state (in the store, across restarts, on every back-end),
never by a shortcut that changes what full normalising would have found."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor import entry_texts
from monitor.entry_texts import known_fingerprints, normalise_batch, stored_value, text_key
from monitor.identity import IdentityMode
from monitor.normalise import normalise_entry, normalise_keys
from monitor.records import Article, FeedEntry
from monitor.store import Store
from tests.conftest import SEEDS, FeedServer
from tests.test_daemon import console, cycle
from tests.test_shared_stories import settings

WIRE = (SEEDS / "feeds" / "wire.xml").read_bytes()
WIRE_ITEMS = WIRE.count(b"<item>")
RETOLD = (b"<ttl>15</ttl>\n<item><title>Biden clears Ukraine to fire ATACMS long-range"
          b" missiles into Russia</title><guid isPermaLink=\"false\">wire-retold</guid>"
          b"<pubDate>Sun, 17 Nov 2024 22:40:00 GMT</pubDate><description>Outgoing President"
          b" Joe Biden has for the first time cleared Ukraine to fire US-made ATACMS"
          b" missiles at targets inside Russia.</description></item>")
FETCHED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def normalised_in_full(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The titles of the entries normalised with their text, poll after poll."""
    titles: list[str] = []

    def counting(source: str, entry: FeedEntry, *args: object) -> Article:
        titles.append(entry.title)
        return normalise_entry(source, entry, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(entry_texts, "normalise_entry", counting)
    return titles


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(Store(url).url)
    with engine.connect() as conn:
        found = [tuple(row) for row in conn.execute(sa.text(sql)).all()]
    engine.dispose()
    return found


def forget_article(url: str, guid: str) -> None:
    """What pruning an old article would leave: the source's state still knows its entry."""
    engine = sa.create_engine(Store(url).url)
    with engine.begin() as conn:
        ids = {"ids": [row[0] for row in conn.execute(
            sa.text("SELECT id FROM articles WHERE guid = :guid"), {"guid": guid})]}
        statement = sa.text("DELETE FROM hits WHERE article_id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True))
        conn.execute(statement, ids)
        conn.execute(sa.text("UPDATE outbox SET article_id = NULL WHERE article_id IN :ids")
                     .bindparams(sa.bindparam("ids", expanding=True)), ids)
        conn.execute(sa.text("DELETE FROM articles WHERE id IN :ids")
                     .bindparams(sa.bindparam("ids", expanding=True)), ids)
    engine.dispose()


def test_after_a_restart_only_the_new_entry_of_a_changed_feed_is_normalised_with_its_text(
    tmp_path: Path, feed_server: FeedServer, store_url: str, normalised_in_full: list[str],
) -> None:
    wire = {"name": "seed-wire", "url": feed_server.serve("/wire.xml", WIRE, etag='"wire-1"')}
    configured = settings(tmp_path, store_url, [wire])
    (first,) = cycle(configured, {"console": console()[0]})
    assert [p.new for p in first.polls] == [WIRE_ITEMS]
    assert len(normalised_in_full) == WIRE_ITEMS
    normalised_in_full.clear()

    feed_server.serve("/wire.xml", WIRE.replace(b"<ttl>15</ttl>", RETOLD), etag='"wire-2"')
    (tick,) = cycle(configured, {"console": console()[0]})  # a fresh daemon: a restart
    assert [(p.items, p.new) for p in tick.polls] == [(WIRE_ITEMS + 1, 1)]
    assert normalised_in_full == ["Biden clears Ukraine to fire ATACMS long-range missiles"
                                  " into Russia"]
    (retold,) = rows(store_url, "SELECT title, summary FROM articles"
                                " WHERE guid = 'wire-retold'")
    assert str(retold[0]).startswith("Biden clears")
    assert str(retold[1]).startswith("Outgoing President")


def test_an_entry_known_by_its_text_but_no_longer_stored_is_stored_again_with_its_text(
    tmp_path: Path, feed_server: FeedServer, store_url: str, normalised_in_full: list[str],
) -> None:
    wire = {"name": "seed-wire", "url": feed_server.serve("/wire.xml", WIRE, etag='"wire-1"')}
    configured = settings(tmp_path, store_url, [wire])
    cycle(configured, {"console": console()[0]})
    before = rows(store_url, "SELECT title, summary FROM articles"
                             " WHERE guid = 'wire-biden-atacms'")
    assert len(before) == 1
    assert before[0][0]
    forget_article(store_url, "wire-biden-atacms")
    normalised_in_full.clear()

    feed_server.serve("/wire.xml", WIRE.replace(b"<ttl>15</ttl>", RETOLD), etag='"wire-2"')
    (tick,) = cycle(configured, {"console": console()[0]})
    # The new entry was normalised in full; the deleted article's entry, normalised
    # without its text, came out new: then the whole feed was, again.
    assert [p.new for p in tick.polls] == [2]
    assert len(normalised_in_full) == 1 + (WIRE_ITEMS + 1)
    assert rows(store_url, "SELECT title, summary FROM articles"
                           " WHERE guid = 'wire-biden-atacms'") == before


def entry(title: str, text: str, guid: str | None = "g-1",
          link: str | None = "https://wire.example/a?utm_source=rss") -> FeedEntry:
    return FeedEntry(guid=guid, link=link, title=title, summary=text, content="",
                     author="Desk", published=FETCHED, language="en-GB")


@pytest.mark.parametrize("mode", ["guid", "link", "content"])
@pytest.mark.parametrize(("guid", "link"), [
    ("g-1", "https://wire.example/a?utm_source=rss"), (None, "https://wire.example/a"),
    (None, None)])
def test_an_entry_normalised_without_its_text_has_the_keys_of_its_full_normalising(
    mode: IdentityMode, guid: str | None, link: str | None,
) -> None:
    fed = entry("<b>Zélensky</b> on ATACMS", "<p>Long-range &amp; more</p>", guid, link)
    full = normalise_entry("wire", fed, FETCHED, mode)
    keys = normalise_keys("wire", fed, FETCHED, mode, full.fingerprint)
    assert (keys.identity, keys.fingerprint, keys.guid, keys.url, keys.published,
            keys.language) == (full.identity, full.fingerprint, full.guid, full.url,
                               full.published, full.language)
    assert (keys.title, keys.summary, keys.content) == ("", "", "")


def test_the_stored_fingerprints_are_those_of_the_last_feed_s_entries() -> None:
    old, kept = entry("Old", "gone"), entry("Kept", "still listed", guid="g-2")
    first = normalise_batch("wire", [old, kept], FETCHED, "guid", None)
    assert first.keys_only == frozenset()
    new = entry("New", "just in", guid="g-3")
    second = normalise_batch("wire", [new, kept], FETCHED, "guid", first.entry_texts)
    assert second.keys_only == {first.articles[1].fingerprint}
    assert second.articles[1].title == ""  # recognised by its keys alone
    assert known_fingerprints(second.entry_texts) == {
        text_key(new): second.articles[0].fingerprint,
        text_key(kept): first.articles[1].fingerprint}


def test_fingerprints_stored_by_another_way_of_fingerprinting_are_not_believed() -> None:
    kept = entry("Kept", "still listed")
    stored = stored_value({text_key(kept): "0" * 32})
    assert stored is not None
    assert known_fingerprints(stored)
    other_version = stored.replace(entry_texts.VERSION, "fp0", 1)
    assert known_fingerprints(other_version) == {}
    assert normalise_batch("wire", [kept], FETCHED, "guid", other_version).keys_only == frozenset()


def test_a_known_entry_whose_link_changed_gets_the_url_and_identity_of_its_new_link() -> None:
    """Canonical URLs are remembered by link (``normalise.canonical_url``): an entry known
    by its text is still given the URL of the link it has now."""
    before = [entry("Kursk", "Troops advance", None, "https://wire.example/kursk?utm_source=rss")]
    first = normalise_batch("wire", before, FETCHED, "guid", None)
    moved = [entry("Kursk", "Troops advance", None, "https://wire.example/kursk-2?ref=rss")]
    again = normalise_batch("wire", moved, FETCHED, "guid", first.entry_texts)
    assert again.keys_only == {first.articles[0].fingerprint}
    assert again.articles[0].url == "https://wire.example/kursk-2?ref=rss"
    assert again.articles[0].identity != first.articles[0].identity
    full = normalise_entry("wire", moved[0], FETCHED, "guid")
    assert (again.articles[0].url, again.articles[0].identity) == (full.url, full.identity)


FEED_WITHOUT_GUIDS = (
    "<?xml version='1.0'?><rss version='2.0'><channel><title>Desk</title>"
    "<item><title>Kursk incursion enters its fourth month</title><link>{link}</link>"
    "<description>Ukrainian troops hold ground in the Kursk region.</description></item>"
    "<item><title>ATACMS cleared for strikes inside Russia</title>"
    "<link>https://desk.example/atacms?utm_source=rss</link>"
    "<description>Washington lifts a long-standing restriction.</description></item>"
    "</channel></rss>")


def test_an_item_without_guid_whose_link_changes_is_a_new_article_at_its_new_url(
    tmp_path: Path, feed_server: FeedServer, store_url: str,
) -> None:
    """Without a guid an item is its link: a new link (not merely new tracking
    parameters) is a new article, even though its text is known from the last poll."""
    def serve(link: str, etag: str) -> str:
        return feed_server.serve("/desk.xml", FEED_WITHOUT_GUIDS.format(link=link).encode(),
                                 etag=etag)

    desk = {"name": "desk", "url": serve("https://desk.example/kursk?utm_source=rss", '"1"')}
    configured = settings(tmp_path, store_url, [desk])
    (first,) = cycle(configured, {"console": console()[0]})
    assert [p.new for p in first.polls] == [2]
    serve("https://desk.example/kursk?utm_source=mail", '"2"')
    (retagged,) = cycle(configured, {"console": console()[0]})
    assert [p.new for p in retagged.polls] == [0]
    serve("https://desk.example/kursk-month-four", '"3"')
    (moved,) = cycle(configured, {"console": console()[0]})
    assert [p.new for p in moved.polls] == [1]
    assert sorted(rows(store_url, "SELECT url FROM articles")) == [
        ("https://desk.example/atacms",), ("https://desk.example/kursk",),
        ("https://desk.example/kursk-month-four",)]
