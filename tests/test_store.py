"""The state database, on every back-end: identity, uniqueness, the outbox as a queue."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.errors import StoreError
from monitor.plan import PlannedAlert
from monitor.records import Alert, Article, Hit, Span
from monitor.severity import Severity
from monitor.store import NewArticle, SourceState, Store
from monitor.store.migrate import SCHEMA_VERSION
from monitor.store.schema import meta, metadata
from monitor.store.sqlite_connection import set_up_connection
from tests.conftest import postgres_schema

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ROUNDS_OF_OPENERS = 5


def article(identity: str = "a1", title: str = "Biden authorises ATACMS strikes") -> Article:
    return Article(
        source="wire", identity=identity, guid=identity, url=f"http://wire.example/{identity}",
        title=title, summary="", content="text", author="", published=NOW - timedelta(hours=1),
        fetched=NOW, language="en",
    )


def alert(channel: str = "console", rule: str = "r1", story: str = "s1") -> Alert:
    return Alert(
        rule_id=rule, rule_title="Rule", severity=Severity.HIGH, channel=channel, story_id=story,
        article_title="Headline", article_url="http://wire.example/a1", source="wire",
        published=NOW, snippet="…", matched_terms=("ATACMS",),
        spans=(Span("title", 0, 6, "ATACMS"),),
    )


def planned(identity: str, *alerts: tuple[Alert, str], follow_ups: str = "none") -> NewArticle:
    hit = Hit("r1", (Span("title", 0, 5, "Biden"),))
    filed = tuple(PlannedAlert(a, key, follow_ups, False, False)  # type: ignore[arg-type]
                  for a, key in alerts)
    return NewArticle(article(identity), story_id=identity, hits=(hit,), alerts=filed)


@pytest.fixture
def store(store_url: str) -> Store:
    opened = Store(store_url).open()
    yield opened
    opened.close()


def test_a_new_database_gets_the_current_schema_version(store: Store, store_url: str) -> None:
    engine = sa.create_engine(Store(store_url).url)
    with engine.connect() as conn:
        version = conn.execute(sa.select(meta.c.value)).scalar_one()
    engine.dispose()
    assert int(version) == SCHEMA_VERSION


def test_a_database_newer_than_this_newsmon_is_refused(store: Store, store_url: str) -> None:
    engine = sa.create_engine(Store(store_url).url)
    with engine.begin() as conn:
        conn.execute(meta.update().values(value=str(SCHEMA_VERSION + 1)))
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this newsmon knows"):
        Store(store_url).open()


def test_reopening_keeps_what_was_stored(store: Store, store_url: str) -> None:
    store.save_batch(SourceState("wire", "u"), [planned("a1", (alert(), "s1"))], NOW)
    store.close()
    again = Store(store_url).open()
    assert again.count_articles() == 1
    recalled = again.recall("wire", [article("a1"), article("zz")])
    assert [r.identity for r in recalled] == ["a1"]
    again.close()


def test_an_article_is_stored_once_and_its_alerts_are_not_planned_twice(store: Store) -> None:
    first = store.save_batch(SourceState("wire", "u"), [planned("a1", (alert(), "s1"))], NOW)
    second = store.save_batch(SourceState("wire", "u"), [planned("a1", (alert(), "s1"))], NOW)
    assert (first.articles_stored, first.alerts_created) == (1, 1)
    assert (second.articles_stored, second.alerts_created) == (0, 0)
    assert store.count_articles() == 1


def test_a_batch_mixing_stored_and_new_articles_files_each_new_ones_hits_and_alerts(
    store: Store, store_url: str,
) -> None:
    store.save_batch(SourceState("wire", "u"), [planned("a2", (alert(story="s2"), "s2"))], NOW)
    batch = [planned(i, (alert(story=f"s-{i}"), f"s-{i}")) for i in ("a1", "a2", "a3")]
    outcome = store.save_batch(SourceState("wire", "u"), batch, NOW)
    assert (outcome.articles_stored, outcome.alerts_created) == (2, 2)
    engine = sa.create_engine(Store(store_url).url)
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT identity, id FROM articles")).all())
        hit_ids = sorted(r[0] for r in conn.execute(sa.text("SELECT article_id FROM hits")))
        alerted = {r[0]: r[1] for r in conn.execute(
            sa.text("SELECT dedupe_key, article_id FROM outbox"))}
    engine.dispose()
    assert hit_ids == sorted(stored.values())
    assert alerted == {"s2": stored["a2"], "s-a1": stored["a1"], "s-a3": stored["a3"]}


def test_one_alert_per_rule_story_and_channel(store: Store) -> None:
    batch = [
        planned("a1", (alert("console"), "story-1"), (alert("slack"), "story-1")),
        planned("a2", (alert("console"), "story-1")),  # same story, same rule, same channel
    ]
    outcome = store.save_batch(SourceState("wire", "u"), batch, NOW)
    assert outcome.articles_stored == 2
    assert outcome.alerts_created == 2
    counts = {(c.channel, c.status): c.count for c in store.outbox_counts.counts()}
    assert counts == {("console", "pending"): 1, ("slack", "pending"): 1}


def test_a_second_article_of_an_alerted_story_becomes_a_follow_up(store: Store) -> None:
    batch = [planned("a1", (alert(), "story-1"), follow_ups="thread"),
             planned("a2", (alert(), "story-1"), follow_ups="thread"),
             planned("a3", (alert(), "story-1"), follow_ups="none")]
    outcome = store.save_batch(SourceState("wire", "u"), batch, NOW)
    assert outcome.alerts_created == 2
    (first,) = store.outbox.claim_due(NOW, 10, timedelta(minutes=5))  # not its follow-up yet
    assert first.alert.kind == "alert"
    store.outbox.mark_sent(first.outbox_id, NOW, "ts-1")
    (second,) = store.outbox.claim_due(NOW, 10, timedelta(minutes=5))
    assert (second.alert.kind, second.thread) == ("follow_up", "ts-1")


def test_source_state_round_trips_with_aware_utc_times(store: Store) -> None:
    state = SourceState("wire", "http://x/feed", etag='"v1"', last_modified="Tue, 17 Nov 2026",
                        last_success_at=NOW, next_poll_at=NOW + timedelta(minutes=5))
    store.save_batch(state, [], NOW)
    loaded = store.source_state("wire", "http://x/feed")
    assert loaded.etag == '"v1"'
    assert loaded.last_success_at == NOW
    assert loaded.next_poll_at is not None
    assert loaded.next_poll_at.tzinfo is not None


def test_a_moved_source_forgets_the_old_validators(store: Store) -> None:
    store.save_batch(SourceState("wire", "http://old/feed", etag='"v1"'), [], NOW)
    moved = store.source_state("wire", "http://new/feed")
    assert moved.etag is None
    assert moved.url == "http://new/feed"


def test_many_states_are_saved_and_read_back_at_once_as_one_by_one(store: Store) -> None:
    store.save_batch(SourceState("wire", "http://old/feed", etag='"v1"'), [], NOW)
    later = NOW + timedelta(minutes=15)
    with store.transaction() as conn:
        store.write_states(conn, [
            SourceState("wire", "http://old/feed", etag='"v2"', last_success_at=later),
            SourceState("outlet", "http://outlet/feed", last_modified="Thu, 26 Nov 2026",
                        consecutive_failures=2, next_poll_at=later),
        ])
    configured = [("wire", "http://new/feed"), ("outlet", "http://outlet/feed"),
                  ("fresh", "http://fresh/feed")]
    states = store.source_states_for(configured)
    assert states == {name: store.source_state(name, url) for name, url in configured}
    assert states["wire"].etag is None  # moved: the old URL's validators are forgotten
    assert states["wire"].last_success_at == later
    assert states["outlet"].consecutive_failures == 2
    assert states["outlet"].last_modified == "Thu, 26 Nov 2026"
    assert states["fresh"] == SourceState("fresh", "http://fresh/feed")


def test_a_claimed_alert_is_not_claimed_again_until_its_lease_expires(store: Store) -> None:
    store.save_batch(SourceState("wire", "u"), [planned("a1", (alert(), "s1"))], NOW)
    lease = timedelta(minutes=5)
    claimed = store.outbox.claim_due(NOW, 10, lease)
    assert [d.attempts for d in claimed] == [1]
    assert store.outbox.claim_due(NOW + timedelta(minutes=1), 10, lease) == []
    # The claimant died mid-send: after the lease the row is due again (at-least-once).
    again = store.outbox.claim_due(NOW + timedelta(minutes=6), 10, lease)
    assert [d.outbox_id for d in again] == [claimed[0].outbox_id]
    assert again[0].attempts == 2
    assert again[0].alert == claimed[0].alert


def test_a_sent_alert_is_never_claimed_again(store: Store) -> None:
    store.save_batch(SourceState("wire", "u"), [planned("a1", (alert(), "s1"))], NOW)
    (delivery,) = store.outbox.claim_due(NOW, 10, timedelta(minutes=5))
    store.outbox.mark_sent(delivery.outbox_id, NOW)
    assert store.outbox.claim_due(NOW + timedelta(days=1), 10, timedelta(minutes=5)) == []
    assert [(c.status, c.count) for c in store.outbox_counts.counts()] == [("sent", 1)]


def test_a_retried_alert_waits_for_its_next_attempt(store: Store) -> None:
    store.save_batch(SourceState("wire", "u"), [planned("a1", (alert(), "s1"))], NOW)
    (delivery,) = store.outbox.claim_due(NOW, 10, timedelta(minutes=5))
    store.outbox.mark_retry(delivery, "HTTP 500", NOW + timedelta(seconds=30))
    assert store.outbox.claim_due(NOW + timedelta(seconds=10), 10, timedelta(minutes=5)) == []
    assert len(store.outbox.claim_due(NOW + timedelta(seconds=31), 10, timedelta(minutes=5))) == 1


def test_alerts_are_claimed_oldest_first(store: Store) -> None:
    batch = [planned(f"a{i}", (alert(story=f"s{i}"), f"s{i}")) for i in range(5)]
    store.save_batch(SourceState("wire", "u"), batch, NOW)
    claimed = store.outbox.claim_due(NOW, 3, timedelta(minutes=5))
    assert [d.alert.story_id for d in claimed] == ["s0", "s1", "s2"]


def test_two_claimants_never_get_the_same_alert(store: Store, store_url: str) -> None:
    batch = [planned(f"a{i}", (alert(channel=f"c{i % 8}", story=f"s{i}"), f"s{i}"))
             for i in range(40)]
    store.save_batch(SourceState("wire", "u"), batch, NOW)
    other = Store(store_url).open()
    results: dict[str, list[int]] = {"a": [], "b": []}

    def drain(name: str, claimant: Store) -> None:
        while any(c.status != "sent" for c in claimant.outbox_counts.counts()):
            for delivery in claimant.outbox.claim_due(NOW, 3, timedelta(minutes=5)):
                results[name].append(delivery.outbox_id)
                claimant.outbox.mark_sent(delivery.outbox_id, NOW)

    threads = [threading.Thread(target=drain, args=("a", store)),
               threading.Thread(target=drain, args=("b", other))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    other.close()
    together = results["a"] + results["b"]
    assert sorted(together) == sorted(set(together))
    assert len(together) == 40


def test_a_channel_is_served_by_one_claimant_at_a_time_in_order(store: Store) -> None:
    batch = [planned(f"a{i}", (alert(story=f"s{i}"), f"s{i}")) for i in range(4)]
    store.save_batch(SourceState("wire", "u"), batch, NOW)
    first = store.outbox.claim_due(NOW, 2, timedelta(minutes=5))
    assert [d.alert.story_id for d in first] == ["s0", "s1"]
    # The head of the channel is in flight: nobody may send what comes after it.
    assert store.outbox.claim_due(NOW, 10, timedelta(minutes=5)) == []
    for delivery in first:
        store.outbox.mark_sent(delivery.outbox_id, NOW)
    assert [d.alert.story_id for d in store.outbox.claim_due(NOW, 10, timedelta(minutes=5))] == [
        "s2", "s3"]


def create_version_1(conn: sa.Connection, store_url: str) -> None:
    """The tables a version 1 newsmon made (fixtures/schema_v1.*.sql)."""
    backend = "postgresql" if store_url.startswith("postgresql") else "sqlite"
    ddl = (Path(__file__).parent / "fixtures" / f"schema_v1.{backend}.sql").read_text()
    for statement in ddl.split(";"):
        if "CREATE" in statement or "INSERT" in statement:
            conn.exec_driver_sql(statement)


def test_a_version_1_database_is_upgraded_and_keeps_its_alerts(store_url: str) -> None:
    engine = sa.create_engine(Store(store_url).url)
    with engine.begin() as conn:
        create_version_1(conn, store_url)
        conn.exec_driver_sql(
            "INSERT INTO outbox (channel, rule_id, dedupe_key, payload, status, attempts,"
            " next_attempt_at, created_at) VALUES ('console', 'r1', 's1', "
            f"'{json.dumps(alert().to_json())}', 'pending', 0, '2026-11-26 12:00:00',"
            " '2026-11-26 12:00:00')"
        )
    upgraded = Store(store_url).open()
    (delivery,) = upgraded.outbox.claim_due(NOW, 10, timedelta(minutes=5))
    assert delivery.alert == alert()
    upgraded.close()
    with engine.connect() as conn:
        version = conn.execute(sa.select(meta.c.value)).scalar_one()
        columns = {name: {c["name"] for c in sa.inspect(conn).get_columns(name)}
                   for name in metadata.tables}
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert int(version) == SCHEMA_VERSION
    assert tables == set(metadata.tables)
    assert columns == {name: {c.name for c in table.columns}
                       for name, table in metadata.tables.items()}


@contextmanager
def new_sqlite_file(path: Path) -> Iterator[str]:
    yield f"sqlite:///{path}"


def open_together(url: str, openers: int) -> list[BaseException]:
    """Open ``url`` from ``openers`` threads released at once, each with its own
    connections (to SQLite's locks, as separate processes); what each one raised."""
    start = threading.Barrier(openers)
    raised: list[BaseException] = []

    def open_and_close() -> None:
        start.wait()
        try:
            Store(url).open().close()
        except BaseException as exc:  # every failure is the finding
            raised.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return raised


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_nodes_opening_a_new_database_together_all_find_one_schema(
        backend: str, tmp_path: Path) -> None:
    # Before the fix a loser saw half-made tables: "table ... already exists" or
    # "UNIQUE constraint failed: newsmon_meta.key", in the first round (4 openers).
    for round_number in range(ROUNDS_OF_OPENERS):
        fresh: AbstractContextManager[str] = (
            new_sqlite_file(tmp_path / f"state{round_number}.db") if backend == "sqlite"
            else postgres_schema())
        with fresh as url:
            raised = open_together(url, 4)
            engine = sa.create_engine(Store(url).url)
            with engine.connect() as conn:
                versions = conn.execute(sa.select(meta.c.value)).scalars().all()
            engine.dispose()
        assert raised == [], f"round {round_number}: {raised!r}"
        assert versions == [str(SCHEMA_VERSION)]


def test_opening_a_current_sqlite_file_does_not_wait_for_its_writer(tmp_path: Path) -> None:
    # `newsmon status` beside the daemon: only creating or upgrading takes the write lock.
    url = f"sqlite:///{tmp_path / 'state.db'}"
    Store(url).open().close()
    writer = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        Store(url).open().close()
    finally:
        writer.execute("COMMIT")
        writer.close()


def test_a_new_sqlite_file_is_switched_to_wal_once_another_connections_write_ends(
        tmp_path: Path) -> None:
    # While another connection holds the write lock (another newsmon opening the new
    # file at the same moment), SQLite refuses the switch at once, busy timeout or not.
    path = tmp_path / "state.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE early (x)")
    writer.execute("BEGIN IMMEDIATE")
    opener = sqlite3.connect(path, check_same_thread=False)
    switches: list[str] = []
    tried_again = threading.Event()

    def count_switches(statement: str) -> None:
        if "journal_mode" in statement:
            switches.append(statement)
            if len(switches) == 2:
                tried_again.set()

    opener.set_trace_callback(count_switches)
    raised: list[BaseException] = []

    def set_up() -> None:
        try:
            set_up_connection(opener, None)
        except BaseException as exc:  # the failure is the finding
            raised.append(exc)
        finally:
            tried_again.set()

    thread = threading.Thread(target=set_up)
    thread.start()
    tried_again.wait()
    writer.execute("COMMIT")
    thread.join()
    writer.close()
    assert raised == []
    assert opener.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    opener.close()


def test_a_long_backlog_in_one_channel_does_not_starve_another(store: Store) -> None:
    backlog = [planned(f"a{i}", (alert(channel="down", story=f"s{i}"), f"s{i}"))
               for i in range(300)]
    store.save_batch(SourceState("wire", "u"), backlog, NOW)
    (head,) = store.outbox.claim_due(NOW, 1, timedelta(minutes=5))
    store.outbox.mark_retry(head, "HTTP 503", NOW + timedelta(hours=1))
    store.save_batch(SourceState("wire", "u"),
                     [planned("late", (alert(channel="up", story="late"), "late"))], NOW)
    claimed = store.outbox.claim_due(NOW, 5, timedelta(minutes=5))
    assert [d.alert.channel for d in claimed] == ["up"]


def test_the_story_index_reloads_recent_and_recently_fetched_articles(store: Store) -> None:
    recent = replace(article("recent"), published=NOW - timedelta(hours=1))
    archive = replace(article("archive"), published=NOW - timedelta(days=400))
    old = replace(article("old"), published=NOW - timedelta(days=400),
                  fetched=NOW - timedelta(days=30))
    batch = [NewArticle(a, f"story-{a.identity}", (), ()) for a in (recent, archive, old)]
    store.save_batch(SourceState("wire", "u"), batch, NOW)
    since = NOW - timedelta(hours=72)
    reloaded = [(a.identity, story) for rows in store.stories_since(since) for a, story in rows]
    assert reloaded == [("recent", "story-recent"), ("archive", "story-archive")]
    assert [a.identity for rows in store.articles_since(since) for a in rows] == ["recent"]


def test_a_feed_identity_kept_as_an_alias_finds_its_article(store: Store) -> None:
    store.save_batch(SourceState("wire", "u"), [planned("canonical-1")], NOW,
                     aliases=[("feed-link-1", "canonical-1"), ("feed-link-2", "canonical-1")])
    store.save_batch(SourceState("wire", "u"), [], NOW, aliases=[("feed-link-2", "canonical-1")])
    recalled = store.recall("wire", [article("feed-link-1"), article("feed-link-2"),
                                     article("other")])
    assert [(r.identity, sorted(r.aliases)) for r in recalled] == [
        ("canonical-1", ["feed-link-1", "feed-link-2"])]
    assert store.count_articles() == 1
