"""A cycle in which nothing is new, on every back-end: the story index is not loaded
until a poll has something new (and then sees everything stored), every source's
success and next due time are recorded all the same, and the fingerprints of the
feeds' entries (``entry_texts``) are not written again."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.config import Settings
from monitor.store import Store
from tests.conftest import SEEDS, FeedServer
from tests.test_daemon import Clock, console, cycle
from tests.test_entry_texts import WIRE_ITEMS, rows
from tests.test_shared_stories import settings

WIRE = (SEEDS / "feeds" / "wire.xml").read_bytes()
RETOLD = (b"<ttl>15</ttl>\n<item><title>Biden clears Ukraine to fire ATACMS long-range"
          b" missiles into Russia</title><guid isPermaLink=\"false\">wire-retold</guid>"
          b"<pubDate>Sun, 17 Nov 2024 22:40:00 GMT</pubDate><description>Outgoing President"
          b" Joe Biden has for the first time cleared Ukraine to fire US-made ATACMS"
          b" missiles at targets inside Russia.</description></item>")


def test_the_story_index_is_loaded_when_a_poll_first_has_something_new(
    tmp_path: Path, feed_server: FeedServer, store_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    wire = {"name": "seed-wire", "url": feed_server.serve("/wire.xml", WIRE, etag='"wire-1"')}
    configured = settings(tmp_path, store_url, [wire])
    cycle(configured, {"console": console()[0]})
    caplog.set_level(logging.INFO)

    (quiet,) = cycle(configured, {"console": console()[0]})
    assert [(p.new, p.not_modified) for p in quiet.polls] == [(0, True)]
    assert "recent articles reloaded" not in caplog.text

    feed_server.serve("/wire.xml", WIRE.replace(b"<ttl>15</ttl>", RETOLD), etag='"wire-2"')
    (news,) = cycle(configured, {"console": console()[0]})
    assert [p.new for p in news.polls] == [1]
    assert "recent articles reloaded" in caplog.text
    engine = sa.create_engine(Store(store_url).url)
    with engine.connect() as conn:
        story = dict(conn.execute(sa.text(
            "SELECT guid, story_id FROM articles"
            " WHERE guid IN ('wire-biden-atacms', 'wire-retold')")).all())
    engine.dispose()
    assert story["wire-retold"] == story["wire-biden-atacms"]  # clustered with what was stored


def polled_once(tmp_path: Path, feed_server: FeedServer,
                store_url: str) -> tuple[Settings, Clock]:
    """Two sources polled once: one answers 304 when asked again, one (no validators)
    the same feed again."""
    observer = feed_server.serve("/outlet.atom", (SEEDS / "feeds" / "outlet.atom").read_bytes(),
                                 content_type="application/atom+xml")
    configured = settings(tmp_path, store_url, [
        {"name": "seed-wire", "url": feed_server.serve("/wire.xml", WIRE, etag='"wire-1"')},
        {"name": "baltic-observer", "url": observer}])
    clock = Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    cycle(configured, {"console": console()[0]}, clock)
    return configured, clock


def test_a_cycle_in_which_nothing_is_new_still_records_every_source_s_success(
    tmp_path: Path, feed_server: FeedServer, store_url: str,
) -> None:
    configured, clock = polled_once(tmp_path, feed_server, store_url)
    clock.now += timedelta(minutes=15)
    (quiet,) = cycle(configured, {"console": console()[0]}, clock)
    assert sorted((p.source, p.new, p.not_modified) for p in quiet.polls) == [
        ("baltic-observer", 0, False), ("seed-wire", 0, True)]
    store = Store(store_url).open()
    try:
        states = {s.name: s for s in store.source_states()}
        schedule = store.nodes.schedule()
    finally:
        store.close()
    assert {s.last_success_at for s in states.values()} == {clock.now}
    assert states["seed-wire"].etag == '"wire-1"'
    interval = configured.source_interval(configured.sources[0])
    for name in states:  # given back, due again one interval (and a jitter) later
        due = schedule[name].due_at
        assert due is not None
        assert clock.now + interval <= due <= clock.now + interval * 1.1


@contextmanager
def statements_run() -> Iterator[list[str]]:
    """The SQL statements every engine runs meanwhile."""
    run: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        run.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        yield run
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


def rewrites_entry_texts(statement: str) -> bool:
    """Whether a statement sets a stored source's ``entry_texts`` (an INSERT names the
    column for a new row; its ``ON CONFLICT ... SET``, like an UPDATE's, is what it
    rewrites)."""
    return "entry_texts" in statement.partition(" SET ")[2]


def test_a_poll_that_finds_its_feed_unchanged_does_not_write_its_entry_texts_again(
    tmp_path: Path, feed_server: FeedServer, store_url: str,
) -> None:
    configured, clock = polled_once(tmp_path, feed_server, store_url)
    texts = "SELECT name, entry_texts, last_success_at FROM sources ORDER BY name"
    first = rows(store_url, texts)
    assert all(entry_texts for _, entry_texts, _ in first)

    clock.now += timedelta(minutes=15)
    with statements_run() as run:
        (quiet,) = cycle(configured, {"console": console()[0]}, clock)
    assert sorted((p.source, p.new, p.not_modified) for p in quiet.polls) == [
        ("baltic-observer", 0, False), ("seed-wire", 0, True)]
    assert [statement for statement in run if rewrites_entry_texts(statement)] == []
    after = rows(store_url, texts)
    assert [(name, entry_texts) for name, entry_texts, _ in after] == [
        (name, entry_texts) for name, entry_texts, _ in first]
    successes = {str(success) for _, _, success in after}  # both polls' are recorded
    assert len(successes) == 1
    assert successes != {str(success) for _, _, success in first}

    feed_server.serve("/wire.xml", WIRE.replace(b"<ttl>15</ttl>", RETOLD), etag='"wire-2"')
    clock.now += timedelta(minutes=15)
    with statements_run() as run:
        cycle(configured, {"console": console()[0]}, clock)
    assert any(rewrites_entry_texts(statement) for statement in run)
    changed = {name: entry_texts for name, entry_texts, _ in rows(store_url, texts)}
    assert changed["baltic-observer"] == first[0][1]
    assert changed["seed-wire"] != first[1][1]
    assert len(str(changed["seed-wire"]).split()) == 1 + WIRE_ITEMS + 1  # version, pairs
