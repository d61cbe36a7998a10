"""The store, on every back-end: recognising articles again, copies, new versions, and
one alert per (rule, story, channel) within the rule's dedupe window."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from monitor.identity import content_fingerprint, link_key
from monitor.plan import PlannedAlert
from monitor.records import Alert, Article, Hit, Span
from monitor.severity import Severity
from monitor.store import NewArticle, SourceState, Store
from monitor.store.schema import outbox
from tests.test_store import create_version_1

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=72)
WIRE = SourceState("wire", "u")


def article(identity: str, source: str = "wire", title: str = "Biden authorises ATACMS",
            text: str = "The decision reverses a policy.") -> Article:
    return Article(
        source=source, identity=identity, guid=identity, url=f"https://{source}.example/{identity}",
        title=title, summary=text, content="", author="", published=NOW, fetched=NOW,
        language="en", fingerprint=content_fingerprint(title, text, ""),
    )


def alert_for(item: Article, story: str, rule: str = "r1", channel: str = "console") -> Alert:
    return Alert(rule_id=rule, rule_title="Rule", severity=Severity.HIGH, channel=channel,
                 story_id=story, article_title=item.title, article_url=item.url,
                 source=item.source, published=item.published, snippet="",
                 matched_terms=("ATACMS",), article_identity=item.identity)


def alerting(item: Article, story: str, *, key: str | None = None,
             window: timedelta | None = WINDOW, rule: str = "r1") -> NewArticle:
    planned = PlannedAlert(alert_for(item, story, rule), key or story, "thread", False, False,
                           window=window)
    return NewArticle(item, story, (Hit(rule, (Span("title", 0, 5, "Biden"),)),), (planned,))


def kinds(store: Store) -> list[tuple[str, str]]:
    """(kind, dedupe key) of every outbox row, in order."""
    with store.transaction() as conn:
        return [(r.kind, r.dedupe_key) for r in
                conn.execute(sa.select(outbox.c.kind, outbox.c.dedupe_key).order_by(outbox.c.id))]


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url).open()
    yield opened
    opened.close()


# --- recognising stored articles --------------------------------------------------------


def test_stored_articles_are_found_by_identity_link_or_fingerprint(store: Store) -> None:
    first = article("a1")
    other = replace(article("b1", source="daily"), url=None, fingerprint="f" * 32)
    store.save_batch(WIRE, [NewArticle(first, "s1", (), ()), NewArticle(other, "s2", (), ())],
                     NOW)
    by_link = replace(article("zz"), url=first.url, fingerprint="")
    by_text = replace(article("yy", source="daily"), url=None)
    unknown = replace(article("xx"), fingerprint="0" * 32)
    found = store.recall("wire", [by_link, by_text, unknown])
    assert [(r.identity, r.story_id) for r in found] == [("a1", "s1")]
    assert found[0].link_key == link_key(first.url)
    assert found[0].fingerprint == first.fingerprint
    (again,) = store.recall("daily", [replace(other, identity="b1")])
    assert again.identity == "b1"


def test_a_bare_headline_is_looked_up_in_its_own_source_only(store: Store) -> None:
    live = replace(article("d1", source="daily", title="Live updates", text=""), url=None)
    store.save_batch(SourceState("daily", "u"), [NewArticle(live, "s1", (), ())], NOW)
    again = replace(live, identity="d2")
    assert store.recall("wire", [replace(again, source="wire")]) == []
    assert [r.identity for r in store.recall("daily", [again])] == ["d1"]


def test_a_copy_is_stored_in_its_originals_story_and_left_out_of_replays(store: Store) -> None:
    first = article("a1")
    store.save_batch(WIRE, [NewArticle(first, "s1", (), ())], NOW)
    (original,) = store.recall("wire", [first])
    copy = article("d1", source="daily")
    outcome = store.save_batch(SourceState("daily", "u"),
                               [NewArticle(copy, "s1", (), (), duplicate_of=original.id)], NOW)
    assert outcome.articles_stored == 1
    (row,) = [r for r in store.recall("daily", [copy]) if r.source == "daily"]
    assert (row.duplicate_of, row.original, row.story_id) == (original.id, original.id, "s1")
    since = NOW - timedelta(days=1)
    assert [a.identity for rows in store.stories_since(since) for a, _ in rows] == ["a1"]
    assert [a.identity for rows in store.articles_since(since) for a in rows] == ["a1"]
    assert store.count_articles_since(since) == 1


def test_a_new_version_replaces_the_stored_text_and_keeps_identity_and_story(
    store: Store,
) -> None:
    first = article("a1")
    store.save_batch(WIRE, [alerting(first, "s1")], NOW)
    (row,) = store.recall("wire", [first])
    edited = article("a1", title="Biden authorises ATACMS strikes inside Russia")
    later = NOW + timedelta(hours=1)
    hit = Hit("r2", (Span("title", 0, 5, "Biden"),))
    outcome = store.save_batch(WIRE, [NewArticle(edited, "s1", (hit,), (), replaces=row.id)],
                               later)
    assert (outcome.articles_stored, outcome.articles_updated) == (0, 1)
    (reloaded,) = [a for rows in store.articles_since(NOW - timedelta(days=1)) for a in rows]
    assert reloaded.title == edited.title
    assert reloaded.fingerprint == edited.fingerprint
    assert reloaded.fetched == NOW  # first fetched then
    assert store.rules_matched([row.id]) == {row.id: {"r1", "r2"}}
    assert store.count_articles() == 1


# --- one alert per (rule, story, channel) within the window -----------------------------


def test_within_the_window_a_storys_next_article_is_a_follow_up(store: Store) -> None:
    store.save_batch(WIRE, [alerting(article("a1"), "s1")], NOW)
    store.save_batch(WIRE, [alerting(article("a2"), "s1")], NOW + WINDOW - timedelta(minutes=1))
    assert kinds(store) == [("alert", "s1"), ("follow_up", "f:a2")]


def test_after_the_window_a_story_still_going_alerts_again_once(store: Store) -> None:
    store.save_batch(WIRE, [alerting(article("a1"), "s1")], NOW)
    later = NOW + WINDOW + timedelta(minutes=1)
    store.save_batch(WIRE, [alerting(article("a2"), "s1"), alerting(article("a3"), "s1")], later)
    rows = kinds(store)
    assert rows[1:] == [("alert", "s1"), ("follow_up", "f:a3")]
    assert rows[0][0] == "alert"
    assert rows[0][1].startswith("s1#")  # the first window's alert gave the key up
    first, second = store.outbox.claim_due(later, 10, timedelta(minutes=5))  # then the follow-up
    assert first.alert.key != second.alert.key  # not taken for a resend by any channel


def test_a_window_per_channel_and_rule(store: Store) -> None:
    item = article("a1")
    batch = [NewArticle(item, "s1", (), (
        PlannedAlert(alert_for(item, "s1", "r1", "console"), "s1", "none", False, False, WINDOW),
        PlannedAlert(alert_for(item, "s1", "r1", "slack"), "s1", "none", False, False, WINDOW),
        PlannedAlert(alert_for(item, "s1", "r2", "console"), "s1", "none", False, False, WINDOW),
    ))]
    assert store.save_batch(WIRE, batch, NOW).alerts_created == 3


def test_scope_article_alerts_each_article_of_a_story(store: Store) -> None:
    outcome = store.save_batch(WIRE, [alerting(article("a1"), "s1", key="a1"),
                                      alerting(article("a2"), "s1", key="a2")], NOW)
    assert outcome.alerts_created == 2
    assert kinds(store) == [("alert", "a1"), ("alert", "a2")]


def test_a_restarted_process_alerts_a_story_once_per_window(
    store: Store, store_url: str
) -> None:
    store.save_batch(WIRE, [alerting(article("a1"), "s1")], NOW)
    store.close()
    restarted = Store(store_url).open()
    restarted.save_batch(WIRE, [alerting(article("a2"), "s1")], NOW + timedelta(hours=1))
    assert [k for k, _ in kinds(restarted)] == ["alert", "follow_up"]
    restarted.close()


def test_two_processes_past_the_window_alert_the_story_once(store: Store, store_url: str) -> None:
    store.save_batch(WIRE, [alerting(article("a1"), "s1")], NOW)
    later = NOW + WINDOW + timedelta(hours=1)
    others = [Store(store_url).open() for _ in range(2)]
    start = threading.Barrier(2)
    created: list[int] = []

    def poll(node: Store, identity: str) -> None:
        start.wait()
        created.append(node.save_batch(WIRE, [alerting(article(identity), "s1")],
                                       later).alerts_created)

    threads = [threading.Thread(target=poll, args=(node, f"n{i}"))
               for i, node in enumerate(others)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for node in others:
        node.close()
    assert sorted(created) == [1, 1]  # one new alert, one follow-up of it
    rows = kinds(store)
    assert [k for k, _ in rows].count("alert") == 2
    assert rows[1:] == [("alert", "s1"), ("follow_up", rows[2][1])]


# --- upgrading ---------------------------------------------------------------------------


def test_an_upgrade_gives_stored_articles_their_link_keys_and_fingerprints(
    store_url: str,
) -> None:
    engine = sa.create_engine(Store(store_url).url)
    with engine.begin() as conn:
        create_version_1(conn, store_url)
        for i in range(3):
            conn.exec_driver_sql(
                "INSERT INTO articles (identity, source, guid, url, title, summary, content,"
                " author, fetched_at, story_id) VALUES"
                f" ('id{i}', 'wire', NULL, {'NULL' if i == 2 else repr(f'https://w.example/{i}')},"
                f" 'Title {i}', 'Zélensky said', '', '', '2026-11-26 12:00:00', 's{i}')"
            )
    upgraded = Store(store_url).open()
    by_link = replace(article("new"), url="https://w.example/0", fingerprint="")
    by_text = replace(article("new2"), url=None,
                      fingerprint=content_fingerprint("title 2", "zelensky SAID", ""))
    found = upgraded.recall("wire", [by_link, by_text])
    upgraded.close()
    engine.dispose()
    assert [(r.identity, r.duplicate_of) for r in found] == [("id0", None), ("id2", None)]
    assert found[1].link_key is None
