"""The whole service in-process: real feeds over HTTP, the real store, console output."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.channel_settings import ConsoleChannelSettings
from monitor.channels.console import ConsoleChannel
from monitor.config import Settings, resolve_paths
from monitor.daemon import CycleReport, Daemon
from monitor.errors import ChannelError, ChannelFailure
from monitor.records import Alert, Digest
from monitor.rules.load import load_rules
from monitor.store import SourceState, Store
from tests.conftest import RULES, SEEDS, FeedServer

SEED_HEADLINE = "Biden authorises Ukraine to strike Russia with US long-range missiles"
RETOLD_HEADLINE = "Washington lifts curbs on ATACMS strikes inside Russia"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FlakyChannel:
    """A channel that fails its first ``failures`` sends, then records what it sends."""

    pace = 0.0

    def __init__(self, name: str, failures: int) -> None:
        self.name = name
        self.failures = failures
        self.sent: list[Alert] = []

    async def send(self, alert: Alert, thread: str | None = None) -> str | None:
        if self.failures > 0:
            self.failures -= 1
            raise ChannelError(self.name, "HTTP 503 from the test", ChannelFailure.SERVER)
        self.sent.append(alert)
        return None

    async def send_digest(self, digest: Digest) -> None:
        raise AssertionError("no digest configured")

    async def close(self) -> None:
        pass


def settings_for(tmp_path: Path, sources: list[dict[str, Any]], **sections: Any) -> Settings:
    sections.setdefault("defaults", {"max_age": "off"})
    sections.setdefault("rules", {"paths": [str(RULES)]})
    raw = Settings(
        storage={"url": f"sqlite:///{tmp_path / 'state.db'}"},  # type: ignore[arg-type]
        sources=sources,  # type: ignore[arg-type]
        **sections,
    )
    return resolve_paths(raw, tmp_path)


@pytest.fixture
def seed_feeds(feed_server: FeedServer) -> list[dict[str, Any]]:
    wire = feed_server.serve("/wire.xml", (SEEDS / "feeds" / "wire.xml").read_bytes(),
                             etag='"wire-1"')
    observer = feed_server.serve("/outlet.atom", (SEEDS / "feeds" / "outlet.atom").read_bytes(),
                                 content_type="application/atom+xml")
    return [{"name": "seed-wire", "url": wire}, {"name": "baltic-observer", "url": observer}]


def cycle(settings: Settings, channels: dict[str, Any], clock: Clock | None = None,
          rounds: int = 1) -> list[CycleReport]:
    async def go() -> list[CycleReport]:
        async with httpx.AsyncClient() as client:
            daemon = Daemon(settings, load_rules(settings.rules.paths), Store(settings.storage.url),
                            client, channels, **({"clock": clock} if clock else {}))
            await daemon.start()
            try:
                reports = []
                for _ in range(rounds):
                    reports.append(await daemon.run_once())
                return reports
            finally:
                await daemon.close()

    return asyncio.run(go())


def console() -> tuple[ConsoleChannel, io.StringIO]:
    out = io.StringIO()
    return ConsoleChannel("console", ConsoleChannelSettings(type="console"), out), out


def test_the_seed_story_alerts_and_a_restart_repeats_nothing(
    tmp_path: Path, seed_feeds: list[dict[str, Any]]
) -> None:
    settings = settings_for(tmp_path, seed_feeds)
    channel, out = console()
    (report,) = cycle(settings, {"console": channel})
    text = out.getvalue()
    assert report.delivery.sent == sum(p.alerts for p in report.polls) > 0
    assert "[HIGH] Policy shift on long-range strikes into Russia" in text
    assert SEED_HEADLINE in text
    assert RETOLD_HEADLINE in text
    assert "New sanctions package against Russia" in text
    assert "North Korea tests" not in text  # a near miss
    channel2, out2 = console()
    (again,) = cycle(settings, {"console": channel2})
    assert out2.getvalue() == ""
    assert [p.new for p in again.polls] == [0, 0]


def test_a_failing_source_costs_only_itself(
    tmp_path: Path, feed_server: FeedServer, seed_feeds: list[dict[str, Any]]
) -> None:
    broken = feed_server.serve("/broken", b"<html>oops</html>", status=500)
    settings = settings_for(tmp_path, [{"name": "broken", "url": broken}, *seed_feeds],
                            defaults={"max_age": "off", "interval": "10m"})
    channel, out = console()
    clock = Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    (report,) = cycle(settings, {"console": channel}, clock)
    assert [p.error is not None for p in report.polls] == [True, False, False]
    assert SEED_HEADLINE in out.getvalue()
    store = Store(settings.storage.url).open()
    state = store.source_state("broken", broken)
    store.close()
    assert state.consecutive_failures == 1
    assert state.last_error is not None
    assert "HTTP 500" in state.last_error
    assert state.next_poll_at == clock.now + timedelta(minutes=10)


def test_a_source_failing_for_weeks_keeps_backing_off_at_the_cap(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """The doubling must not outgrow a timedelta (10 min * 2**40 does): its 41st failure
    is recorded like its 2nd, with the longest backoff."""
    broken = feed_server.serve("/broken", b"<html>oops</html>", status=500)
    settings = settings_for(tmp_path, [{"name": "broken", "url": broken}],
                            defaults={"max_age": "off", "interval": "10m"})
    clock = Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    store = Store(settings.storage.url).open()
    store.nodes.add_sources([("broken", broken)])
    store.record_failure(SourceState("broken", broken, last_error="HTTP 500",
                                     consecutive_failures=40,
                                     next_poll_at=clock.now - timedelta(minutes=1)), clock.now)
    (report,) = cycle(settings, {"console": console()[0]}, clock)
    state = store.source_state("broken", broken)
    store.close()
    assert report.polls[0].error is not None
    assert "HTTP 500" in report.polls[0].error
    assert state.consecutive_failures == 41
    assert state.next_poll_at == clock.now + timedelta(hours=6)


def test_a_poll_cut_short_by_a_bug_is_recorded_as_the_sources_failure_and_backs_off(
    tmp_path: Path, seed_feeds: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in normalising")

    monkeypatch.setattr("monitor.entry_texts.normalise_entry", broken)  # a bug, not the source
    settings = settings_for(tmp_path, seed_feeds[:1],
                            defaults={"max_age": "off", "interval": "10m"})
    clock = Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    (report,) = cycle(settings, {"console": console()[0]}, clock)
    assert report.polls[0].error is not None
    assert "poll failed unexpectedly" in caplog.text  # with the traceback, for the bug report
    store = Store(settings.storage.url).open()
    state = store.source_state("seed-wire", seed_feeds[0]["url"])
    store.close()
    assert state.consecutive_failures == 1
    assert state.last_error == "internal error: RuntimeError('a bug in normalising')"
    assert state.next_poll_at == clock.now + timedelta(minutes=10)


def test_a_bug_after_a_poll_committed_keeps_what_it_committed(
    tmp_path: Path, seed_feeds: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The failure is recorded on the stored state: the articles' validators stay."""
    save_batch = Store.save_batch

    def save_then_fail(self: Store, *args: Any, **kwargs: Any) -> Any:
        save_batch(self, *args, **kwargs)
        raise RuntimeError("a bug after the commit")

    monkeypatch.setattr(Store, "save_batch", save_then_fail)
    settings = settings_for(tmp_path, seed_feeds[:1])
    (report,) = cycle(settings, {"console": console()[0]})
    assert report.polls[0].error is not None
    store = Store(settings.storage.url).open()
    state = store.source_state("seed-wire", seed_feeds[0]["url"])
    stored = store.count_articles()
    store.close()
    assert stored == 12
    assert state.etag == '"wire-1"'  # what the poll committed
    assert state.consecutive_failures == 1
    assert state.last_error == "internal error: RuntimeError('a bug after the commit')"


def test_html_served_as_a_feed_is_reported_as_not_a_feed(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    url = feed_server.serve("/page", b"<html><body><h1>Please enable JavaScript</h1></body></html>",
                            content_type="text/html")
    settings = settings_for(tmp_path, [{"name": "page", "url": url}])
    (report,) = cycle(settings, {"console": console()[0]})
    assert report.polls[0].error is not None
    assert "not a feed" in report.polls[0].error


def test_an_unchanged_feed_is_not_parsed_again(
    tmp_path: Path, feed_server: FeedServer, seed_feeds: list[dict[str, Any]]
) -> None:
    settings = settings_for(tmp_path, seed_feeds[:1])
    first, second = cycle(settings, {"console": console()[0]}, rounds=2)
    assert first.polls[0].new == 12
    assert second.polls[0].not_modified
    assert feed_server.requests_to("/wire.xml")[1].headers["If-None-Match"] == '"wire-1"'


def test_articles_older_than_max_age_are_stored_but_not_alerted(
    tmp_path: Path, seed_feeds: list[dict[str, Any]]
) -> None:
    settings = settings_for(tmp_path, seed_feeds, defaults={"max_age": "7d"})
    channel, out = console()
    (report,) = cycle(settings, {"console": channel}, Clock(datetime(2026, 11, 26, tzinfo=UTC)))
    assert [p.new for p in report.polls] == [12, 10]
    assert sum(p.alerts for p in report.polls) == 0
    assert out.getvalue() == ""


def test_a_failed_delivery_is_retried_until_the_channel_recovers(
    tmp_path: Path, seed_feeds: list[dict[str, Any]]
) -> None:
    settings = settings_for(tmp_path, seed_feeds[:1])
    flaky = FlakyChannel("console", failures=2)
    clock = Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    (first,) = cycle(settings, {"console": flaky}, clock)
    planned = first.polls[0].alerts
    assert first.delivery.sent == 0
    assert flaky.sent == []
    for _ in range(3):
        clock.now += timedelta(minutes=10)
        cycle(settings, {"console": flaky}, clock)
    assert len(flaky.sent) == planned
    assert len({(a.rule_id, a.story_id) for a in flaky.sent}) == planned


def test_an_alert_undeliverable_past_max_age_is_marked_failed_not_dropped(
    tmp_path: Path, seed_feeds: list[dict[str, Any]]
) -> None:
    settings = settings_for(tmp_path, seed_feeds[:1], delivery={"max_age": "1h"})
    dead = FlakyChannel("console", failures=10_000)
    clock = Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    cycle(settings, {"console": dead}, clock)
    clock.now += timedelta(hours=2)
    (late,) = cycle(settings, {"console": dead}, clock)
    assert late.delivery.failed > 0
    store = Store(settings.storage.url).open()
    counts = {c.status: c.count for c in store.outbox_counts.counts()}
    store.close()
    assert counts.get("failed", 0) >= 1


def test_the_scheduled_daemon_polls_delivers_and_stops_when_asked(
    tmp_path: Path, seed_feeds: list[dict[str, Any]]
) -> None:
    settings = settings_for(tmp_path, seed_feeds)
    channel, out = console()

    async def go() -> float:
        async with httpx.AsyncClient() as client:
            daemon = Daemon(settings, load_rules(settings.rules.paths),
                            Store(settings.storage.url), client, {"console": channel})
            await daemon.start()
            stop = asyncio.Event()
            task = asyncio.create_task(daemon.run(stop))
            for _ in range(100):
                await asyncio.sleep(0.05)
                if SEED_HEADLINE in out.getvalue():
                    break
            loop = asyncio.get_running_loop()
            asked = loop.time()
            stop.set()
            await task
            await daemon.close()
            return loop.time() - asked

    stopped_in = asyncio.run(go())
    assert SEED_HEADLINE in out.getvalue()
    assert stopped_in < 2


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in [k for k in __import__("os").environ if k.startswith("NEWSMON_")]:
        monkeypatch.delenv(key)
    return


def test_a_digest_only_channel_gets_one_digest_when_its_schedule_comes(
    tmp_path: Path, seed_feeds: list[dict[str, Any]]
) -> None:
    settings = settings_for(tmp_path, seed_feeds[:1], channels={
        "console": {"type": "console", "digest": "0 8 * * *", "immediate": False}})
    channel, out = console()
    clock = Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    (first,) = cycle(settings, {"console": channel}, clock)
    assert first.polls[0].alerts > 0
    assert (first.delivery.sent, first.digested, out.getvalue()) == (0, 0, "")
    clock.now = datetime(2026, 11, 27, 7, 59, tzinfo=UTC)
    assert cycle(settings, {"console": channel}, clock)[0].digested == 0
    clock.now = datetime(2026, 11, 27, 8, 1, tzinfo=UTC)
    (due,) = cycle(settings, {"console": channel}, clock)
    assert due.digested == first.polls[0].alerts
    text = out.getvalue()
    assert text.startswith(f"newsmon digest: {due.digested} alerts")
    assert SEED_HEADLINE in text
    clock.now = datetime(2026, 11, 28, 8, 1, tzinfo=UTC)
    assert cycle(settings, {"console": channel}, clock)[0].digested == 0  # nothing new


def test_alerts_held_for_a_digest_a_reload_removed_are_sent_at_the_next_round(
    tmp_path: Path, seed_feeds: list[dict[str, Any]]
) -> None:
    """A digest-only channel held its alerts; a reload takes its digest away. They are
    not lost waiting for a digest that will never come: the next round sends them."""
    digest_only = settings_for(tmp_path, seed_feeds[:1], channels={
        "console": {"type": "console", "digest": "0 8 * * *", "immediate": False}})
    plain = settings_for(tmp_path, seed_feeds[:1], channels={"console": {"type": "console"}})
    channel, out = console()

    async def go() -> tuple[CycleReport, CycleReport]:
        async with httpx.AsyncClient() as client:
            daemon = Daemon(digest_only, load_rules(digest_only.rules.paths),
                            Store(digest_only.storage.url), client,
                            {"console": channel},
                            clock=Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC)))
            await daemon.start()
            try:
                first = await daemon.run_once()
                await daemon.reconfigure(plain, load_rules(plain.rules.paths), daemon.channels)
                return first, await daemon.run_once()
            finally:
                await daemon.close()

    first, second = asyncio.run(go())
    assert first.polls[0].alerts > 0
    assert first.delivery.sent == 0
    assert second.delivery.sent == first.polls[0].alerts
    assert SEED_HEADLINE in out.getvalue()
    reader = Store(plain.storage.url).open()
    try:
        assert {c.status for c in reader.outbox_counts.counts()} == {"sent"}
    finally:
        reader.close()


def test_a_web_page_given_as_a_source_leads_to_the_feed_it_names(
    tmp_path: Path, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    feed_server.serve("/feeds/wire.xml", (SEEDS / "feeds" / "wire.xml").read_bytes())
    page = feed_server.serve(
        "/news", b'<html><head><title>Wire</title><link rel="alternate" type="text/html" '
        b'href="/amp"><link rel="alternate" type="application/rss+xml" title="RSS" '
        b'href="/feeds/wire.xml"></head><body>News</body></html>', content_type="text/html")
    settings = settings_for(tmp_path, [{"name": "wire-site", "url": page}])
    channel, out = console()
    with caplog.at_level("WARNING"):
        first, _ = cycle(settings, {"console": channel}, rounds=2)
    assert first.polls[0].error is None
    assert first.polls[0].new == 12
    assert SEED_HEADLINE in out.getvalue()
    assert f"newsmon uses {feed_server.url('/feeds/wire.xml')} from now on" in caplog.text
    assert len(feed_server.requests_to("/news")) == 1  # the next poll goes to the feed
    assert len(feed_server.requests_to("/feeds/wire.xml")) == 2
    store = Store(settings.storage.url).open()
    assert store.source_state("wire-site", page).feed_url == feed_server.url("/feeds/wire.xml")
    store.close()


def test_a_web_page_that_names_no_feed_is_reported_as_not_a_feed(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    page = feed_server.serve("/plain", b"<html><body>Just a page</body></html>",
                             content_type="text/html")
    settings = settings_for(tmp_path, [{"name": "page", "url": page}])
    (report,) = cycle(settings, {"console": console()[0]})
    assert report.polls[0].error is not None
    assert "not a feed (content type text/html)" in report.polls[0].error


def test_alerts_are_delivered_while_a_slow_source_is_still_being_polled(
    tmp_path: Path, feed_server: FeedServer, seed_feeds: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow_feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Slow</title>'
                 b"</channel></rss>")
    slow = feed_server.serve("/slow.xml", slow_feed, chunk_delay=3.0 / len(slow_feed))
    settings = settings_for(tmp_path, [*seed_feeds, {"name": "slow", "url": slow}])
    events: list[str] = []
    channel = FlakyChannel("console", failures=0)
    record, poll = channel.send, Daemon.poll

    async def send(alert: Alert, thread: str | None = None) -> str | None:
        events.append("sent")
        return await record(alert, thread)

    async def polled(self: Daemon, source: Any, *args: Any, **options: Any) -> Any:
        report = await poll(self, source, *args, **options)
        events.append(f"polled {source.name}")
        return report

    channel.send = send  # type: ignore[method-assign]
    monkeypatch.setattr(Daemon, "poll", polled)
    (report,) = cycle(settings, {"console": channel})
    assert [p.error for p in report.polls] == [None, None, None]
    assert report.delivery.sent == len(channel.sent) == sum(p.alerts for p in report.polls) > 0
    # The seed sources' alerts went out while the slow body was still arriving.
    assert events.index("sent") < events.index("polled slow")


def test_a_relative_item_link_resolves_against_the_url_the_feed_was_redirected_to(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.serve("/wire.xml", b"", status=301, headers={"Location": "/moved/wire.xml"})
    feed_server.serve("/moved/wire.xml", b'<rss version="2.0"><channel><title>W</title><item>'
                      b"<title>Biden authorises ATACMS strikes</title><guid>w-1</guid>"
                      b"<link>story-1</link></item></channel></rss>")
    settings = settings_for(tmp_path, [{"name": "wire", "url": feed_server.url("/wire.xml")}])
    (report,) = cycle(settings, {"console": console()[0]})
    assert report.polls[0].new == 1
    store = Store(settings.storage.url).open()
    ((article,),) = store.articles_since(datetime(2000, 1, 1, tzinfo=UTC))
    store.close()
    assert article.url == feed_server.url("/moved/story-1")
