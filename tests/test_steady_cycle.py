"""A cycle in which nothing is new, on every back-end: the story index is not loaded
until a poll has something new (and then sees everything stored), and every source's
success and next due time are recorded all the same."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.store import Store
from tests.conftest import SEEDS, FeedServer
from tests.test_daemon import Clock, console, cycle
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


def test_a_cycle_in_which_nothing_is_new_still_records_every_source_s_success(
    tmp_path: Path, feed_server: FeedServer, store_url: str,
) -> None:
    observer = feed_server.serve("/outlet.atom", (SEEDS / "feeds" / "outlet.atom").read_bytes(),
                                 content_type="application/atom+xml")  # no validators: a 200
    configured = settings(tmp_path, store_url, [
        {"name": "seed-wire", "url": feed_server.serve("/wire.xml", WIRE, etag='"wire-1"')},
        {"name": "baltic-observer", "url": observer}])
    clock = Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    cycle(configured, {"console": console()[0]}, clock)
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
