"""The daemon polling real feeds over HTTP, restarted between polls on the same SQLite
file: an item is one article and a story one alert per rule and window, whatever
the feeds' guids do, however many sources carry the article, however it is edited."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx

from monitor.config import Settings, resolve_paths
from monitor.daemon import CycleReport, Daemon
from monitor.records import Article
from monitor.rules.load import load_rules
from monitor.store import Store
from tests.conftest import FeedServer
from tests.test_daemon import FlakyChannel

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
RULES = """
rules:
  - id: atacms
    title: ATACMS decisions
    query: ATACMS
    dedupe: {scope: story, window: 6h}
  - id: atacms-each
    title: Every ATACMS article
    query: ATACMS
    dedupe: {scope: article}
  - id: taurus
    title: Taurus decisions
    query: Taurus
"""
DECISION = ("Biden authorises Ukraine to strike Russia with ATACMS missiles",
            "Outgoing President Joe Biden has cleared Ukraine to fire US-made ATACMS missiles at"
            " targets inside Russia, initially in the Kursk region, US officials said.")


@dataclass(frozen=True)
class Item:
    guid: str | None
    link: str | None
    title: str
    text: str
    published: datetime = START


def rss(*items: Item) -> bytes:
    def tag(name: str, value: str | None) -> str:
        return f"<{name}>{escape(value)}</{name}>" if value else ""

    body = "".join(
        "<item>" + tag("guid", i.guid).replace("<guid>", '<guid isPermaLink="false">')
        + tag("link", i.link) + tag("title", i.title) + tag("description", i.text)
        + tag("pubDate", format_datetime(i.published)) + "</item>"
        for i in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>Feed</title><link>http://feed.example/</link>{body}</channel></rss>"
            ).encode()


def sent_for(channel: FlakyChannel, rule: str) -> list[tuple[str, str]]:
    """(kind, headline) of what ``channel`` was sent for ``rule``."""
    return [(a.kind, a.article_title) for a in channel.sent if a.rule_id == rule]


class Service:
    """newsmon on one SQLite file with a fake clock; each ``run`` is a fresh process state
    (a restart) that polls every source ``rounds`` times, calling ``before`` each time."""

    def __init__(self, tmp_path: Path, sources: list[dict[str, Any]]) -> None:
        (tmp_path / "rules.yaml").write_text(RULES)
        self.settings = resolve_paths(Settings(
            storage={"url": f"sqlite:///{tmp_path / 'state.db'}"},  # type: ignore[arg-type]
            rules={"paths": [str(tmp_path / "rules.yaml")]},  # type: ignore[arg-type]
            defaults={"max_age": "off"},  # type: ignore[arg-type]
            sources=sources,  # type: ignore[arg-type]
        ), tmp_path)
        self.channel = FlakyChannel("console", failures=0)
        self.now = START

    def run(self, rounds: int = 1, before: Callable[[], None] = lambda: None,
            step: timedelta = timedelta(minutes=15)) -> list[CycleReport]:
        async def go() -> list[CycleReport]:
            async with httpx.AsyncClient() as client:
                daemon = Daemon(self.settings, load_rules(self.settings.rules.paths),
                                Store(self.settings.storage.url), client,
                                {"console": self.channel}, clock=lambda: self.now)
                await daemon.start()
                try:
                    reports = []
                    for _ in range(rounds):
                        before()
                        reports.append(await daemon.run_once())
                        self.now += step
                    return reports
                finally:
                    await daemon.close()

        return asyncio.run(go())

    def stored(self) -> list[Article]:
        store = Store(self.settings.storage.url).open()
        try:
            return [a for rows in store.articles_since(START - timedelta(days=30)) for a in rows]
        finally:
            store.close()

    def count(self) -> int:
        store = Store(self.settings.storage.url).open()
        try:
            return store.count_articles()
        finally:
            store.close()


def news(reports: list[CycleReport], field: str = "new") -> list[int]:
    return [getattr(p, field) for r in reports for p in r.polls]


ITEMS = (
    Item("decision", "https://wire.example/atacms?utm_source=rss", *DECISION),
    Item("sanctions", "https://wire.example/sanctions", "EU drafts 15th sanctions package",
         "The package targets the shadow fleet carrying Russian oil, diplomats said."),
    Item("storm", "https://wire.example/storm", "Storm Bert floods towns in Wales",
         "Rivers burst their banks after a month's rain fell in two days."),
)


def regenerated(fetches: Iterator[int], items: tuple[Item, ...]) -> list[Item]:
    """The items as a feed that makes up every guid anew on each fetch serves them."""
    n = next(fetches)
    return [replace(i, guid=f"{i.guid}-{n}-{id(fetches)}") for i in items]


def test_a_feed_making_up_new_guids_on_every_fetch_gets_no_new_articles_and_no_alerts(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    fetches = itertools.count()
    url = feed_server.url("/feed.xml")

    def serve() -> None:
        feed_server.serve("/feed.xml", rss(*regenerated(fetches, ITEMS)))

    service = Service(tmp_path, [{"name": "wire", "url": url}])
    reports = service.run(rounds=3, before=serve)
    reports += service.run(rounds=2, before=serve)  # restarted
    assert news(reports) == [3, 0, 0, 0, 0]
    assert news(reports, "alerts") == [2, 0, 0, 0, 0]
    assert sent_for(service.channel, "atacms") == [("alert", DECISION[0])]
    assert service.count() == 3


def test_without_links_a_made_up_guid_is_recognised_by_the_text(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    fetches = itertools.count()
    unlinked = tuple(replace(i, link=None) for i in ITEMS)

    def serve() -> None:
        feed_server.serve("/feed.xml", rss(*regenerated(fetches, unlinked)))

    service = Service(tmp_path, [{"name": "wire", "url": feed_server.url("/feed.xml")}])
    reports = service.run(rounds=2, before=serve) + service.run(rounds=1, before=serve)
    assert news(reports) == [3, 0, 0]
    assert sent_for(service.channel, "atacms") == [("alert", DECISION[0])]


def test_by_link_an_item_whose_guid_and_text_change_on_every_fetch_is_one_article(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    fetches = itertools.count()

    def serve() -> None:
        n = next(fetches)
        feed_server.serve("/feed.xml", rss(*(
            replace(i, guid=f"{i.guid}-{n}", text=f"{i.text} Updated {n + 1} minutes ago.")
            for i in ITEMS)))

    service = Service(tmp_path, [{"name": "wire", "url": feed_server.url("/feed.xml"),
                                  "identity": "link"}])
    reports = service.run(rounds=2, before=serve) + service.run(rounds=1, before=serve)
    assert news(reports) == [3, 0, 0]
    assert news(reports, "updated") == [0, 3, 3]
    assert sent_for(service.channel, "atacms") == [("alert", DECISION[0])]
    assert service.count() == 3
    assert all(a.summary.endswith("Updated 3 minutes ago.") for a in service.stored())


def test_an_edited_item_alerts_only_rules_that_did_not_match_it_before(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    url = feed_server.url("/feed.xml")
    first = Item("g-1", "https://wire.example/taurus", "Berlin debates sending Taurus to Kyiv",
                 "The chancellor has so far refused to send the cruise missiles.")
    edited = replace(first, title="Berlin debates sending Taurus as US clears ATACMS")
    service = Service(tmp_path, [{"name": "wire", "url": url}])
    feed_server.serve("/feed.xml", rss(first))
    service.run()
    feed_server.serve("/feed.xml", rss(edited))
    reports = service.run(rounds=2)  # restarted, then polled again unchanged
    feed_server.serve("/feed.xml", rss(replace(edited, text=edited.text + " (corrected)")))
    reports += service.run()
    assert news(reports, "updated") == [1, 0, 1]
    assert sent_for(service.channel, "taurus") == [("alert", first.title)]
    assert sent_for(service.channel, "atacms") == [("alert", edited.title)]
    assert sent_for(service.channel, "atacms-each") == [("alert", edited.title)]
    (stored,) = service.stored()
    assert (stored.title, stored.summary) == (edited.title, edited.text + " (corrected)")


def test_one_article_carried_by_three_sources_alerts_once_and_never_follows_itself_up(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    wire = Item("w-1", "https://wire.example/atacms?utm_source=rss", *DECISION)
    same_link = Item("world-77", "https://WIRE.example/atacms?fbclid=abc#top",
                     "US lets Kyiv fire ATACMS into Russia", "Another summary of it.")
    syndicated = Item("d-1", "https://daily.example/2026/11/atacms", *DECISION)
    retold = Item("o-1", "https://observer.example/atacms",
                  "Washington clears Ukraine to hit targets inside Russia with ATACMS",
                  "President Joe Biden has cleared Ukraine to fire US-made ATACMS missiles at"
                  " targets inside Russia, in the Kursk region first, officials said.")
    carried = {"world": same_link, "daily": syndicated, "observer": retold}
    sources = [{"name": "wire", "url": feed_server.serve("/wire.xml", rss(wire))}]
    for name in carried:  # nothing yet: the wire publishes first
        sources.append({"name": name, "url": feed_server.serve(f"/{name}.xml", rss())})
    service = Service(tmp_path, sources)
    reports = service.run()
    for name, item in carried.items():
        feed_server.serve(f"/{name}.xml", rss(item))
    reports += service.run() + service.run()  # the three polled at once, then restarted
    assert news(reports) == [1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    assert sent_for(service.channel, "atacms") == [("alert", DECISION[0]),
                                                   ("follow_up", retold.title)]
    assert sorted(sent_for(service.channel, "atacms-each")) == [("alert", DECISION[0]),
                                                                ("alert", retold.title)]
    assert service.count() == 4
    assert [a.source for a in service.stored()] == ["wire", "observer"]  # and two copies


def test_a_story_alerts_once_per_dedupe_window_and_again_when_it_keeps_going(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    url = feed_server.url("/feed.xml")
    service = Service(tmp_path, [{"name": "wire", "url": url}])
    items: list[Item] = []

    def publish(hours: float, guid: str) -> None:
        service.now = START + timedelta(hours=hours)
        title, text = DECISION
        items.insert(0, Item(guid, f"https://wire.example/{guid}", f"{title} ({guid})",
                             f"{text} Update {guid}.", service.now))
        feed_server.serve("/feed.xml", rss(*items))

    publish(0, "first")
    service.run()
    publish(2, "second")  # within the 6 h window of the alert: a follow-up
    service.run()
    publish(7, "third")  # the story goes on past the window: a new alert (restarted)
    service.run()
    publish(8, "fourth")
    service.run()
    assert [kind for kind, _ in sent_for(service.channel, "atacms")] == [
        "alert", "follow_up", "alert", "follow_up"]
    assert [kind for kind, _ in sent_for(service.channel, "atacms-each")] == ["alert"] * 4
    assert len({a.story_id for a in service.channel.sent}) == 1


def test_an_edited_copy_of_another_sources_article_is_stored_but_never_alerted(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    wire = Item("w-1", "https://wire.example/atacms", *DECISION)
    copy = Item("d-1", "https://daily.example/atacms", *DECISION)
    sources = [{"name": "wire", "url": feed_server.serve("/wire.xml", rss(wire))},
               {"name": "daily", "url": feed_server.serve("/daily.xml", rss())}]
    service = Service(tmp_path, sources)
    service.run()  # the wire's article first (polled at once, either could be first)
    feed_server.serve("/daily.xml", rss(copy))
    service.run()
    edited = replace(copy, title=DECISION[0] + ", and Berlin weighs Taurus")
    feed_server.serve("/daily.xml", rss(edited))
    (report,) = service.run()
    assert news([report], "updated") == [0, 1]
    assert [a.rule_id for a in service.channel.sent] == ["atacms", "atacms-each"]
    assert service.count() == 2
