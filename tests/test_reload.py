"""Reloading a running daemon in-process: a new set replaces the old one whole or not at
all; sources are rescheduled; polls under way finish with what they started with."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from watchfiles import Change

from monitor.config import SourceSettings
from monitor.daemon import Daemon
from monitor.errors import RuleSetError
from monitor.reload import WatchedPaths, load_configuration, rejection_lines
from monitor.rules.load import load_rules
from monitor.store import Store
from tests.conftest import FeedServer
from tests.service_fixtures import BROKEN_RULE, rss, rule
from tests.test_daemon import Clock, console, settings_for


def requests_to(feed_server: FeedServer, path: str) -> int:
    return len([r for r in feed_server.requests if r.path == path])


async def until(condition: Any) -> None:
    """Wait (up to 10 s) for ``condition()`` while the daemon runs."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_broken_rule_file_rejects_the_whole_set_with_path_line_col(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "good.yaml").write_text(rule("good", "Scholz"))
    (tmp_path / "rules" / "bad.yaml").write_text(BROKEN_RULE)
    (tmp_path / "newsmon.toml").write_text('[rules]\npaths = ["rules"]\n')
    with pytest.raises(RuleSetError) as caught:
        load_configuration(tmp_path / "newsmon.toml")
    (line,) = rejection_lines(caught.value)
    assert line.startswith(f"{tmp_path / 'rules' / 'bad.yaml'}:3:")
    assert ": error: " in line


def test_a_rule_routed_to_an_unknown_channel_is_rejected_at_its_notify_line(
    tmp_path: Path
) -> None:
    (tmp_path / "r.yaml").write_text(rule("r", "Scholz") + "notify: [nowhere]\n")
    (tmp_path / "newsmon.toml").write_text('[rules]\npaths = ["r.yaml"]\n')
    with pytest.raises(RuleSetError) as caught:
        load_configuration(tmp_path / "newsmon.toml")
    (line,) = rejection_lines(caught.value)
    assert line.startswith(f"{tmp_path / 'r.yaml'}:6:")
    assert "unknown channel 'nowhere'" in line


def test_only_the_configuration_and_rule_files_are_watched(tmp_path: Path) -> None:
    (tmp_path / "rules" / "deep").mkdir(parents=True)
    (tmp_path / "single.yaml").write_text(rule("s", "x"))
    (tmp_path / "newsmon.toml").write_text('[rules]\npaths = ["rules", "single.yaml"]\n')
    paths = WatchedPaths.of(load_configuration(tmp_path / "newsmon.toml"))
    wanted = [name for name in ("newsmon.toml", "rules/deep/a.yaml", "rules/b.yml",
                                "single.yaml", "state.db", "state.db-wal", "rules/notes.txt",
                                "other.yaml")
              if paths.wanted(Change.modified, str(tmp_path / name))]
    assert wanted == ["newsmon.toml", "rules/deep/a.yaml", "rules/b.yml", "single.yaml"]
    assert paths.flat_folders == {tmp_path}
    assert paths.rule_folders == {tmp_path / "rules"}


def test_reconfigure_reschedules_sources_and_lets_a_removed_sources_poll_finish(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "scholz.yaml").write_text(rule("scholz", "Scholz"))
    slow = feed_server.serve("/slow.xml", rss("Scholz in the slow feed"), chunk_delay=0.002)
    kept = feed_server.serve("/kept.xml", rss("Scholz in the kept feed"))
    moved = feed_server.serve("/moved.xml", rss("Scholz in the moved feed"))
    added = feed_server.serve("/added.xml", rss("Scholz in the added feed"))

    def settings(sources: list[dict[str, Any]]) -> Any:
        return settings_for(tmp_path, [{**s, "interval": "1h"} for s in sources],
                            rules={"paths": [str(rules_dir)]})

    before = settings([{"name": "slow", "url": slow}, {"name": "kept", "url": kept}])
    after = settings([{"name": "kept", "url": moved}, {"name": "added", "url": added}])
    channel, out = console()

    def fetched(path: str) -> int:
        return requests_to(feed_server, path)

    async def go() -> list[SourceSettings]:
        async with httpx.AsyncClient() as client:
            rules = load_rules(before.rules.paths)
            daemon = Daemon(before, rules, Store(before.storage.url), client,
                            {"console": channel})
            await daemon.start()
            stop = asyncio.Event()
            task = asyncio.create_task(daemon.run(stop))
            await until(lambda: fetched("/slow.xml") and "kept feed" in out.getvalue())
            await daemon.reconfigure(after, load_rules(after.rules.paths), daemon.channels)
            await until(lambda: all(f"{name} feed" in out.getvalue()
                                    for name in ("slow", "moved", "added")))
            stop.set()
            await task
            enabled = daemon.enabled_sources
            await daemon.close()
            return enabled

    enabled = asyncio.run(go())
    assert [s.name for s in enabled] == ["kept", "added"]
    assert fetched("/slow.xml") == 1  # its poll finished; no new one was scheduled
    assert fetched("/kept.xml") == 1  # the changed URL was polled at once, the old one no more


def test_sections_read_at_start_only_keep_their_values_and_say_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = settings_for(tmp_path, [])
    after = settings_for(tmp_path, [{"name": "new", "url": "feed.xml"}],
                         fetch={"max_items": 7}, http={"enabled": True, "port": 0})

    async def go() -> Daemon:
        async with httpx.AsyncClient() as client:
            daemon = Daemon(before, load_rules(before.rules.paths),
                            Store(before.storage.url), client, {})
            await daemon.reconfigure(after, load_rules(after.rules.paths), {})
            return daemon

    daemon = asyncio.run(go())
    assert (daemon.settings.fetch, daemon.settings.http) == (before.fetch, before.http)
    assert [s.name for s in daemon.enabled_sources] == ["new"]
    warned = {r.getMessage() for r in caplog.records if r.levelname == "WARNING"}
    assert warned == {"[fetch] changed: it takes effect when newsmon restarts",
                      "[http] changed: it takes effect when newsmon restarts"}
    assert 'newsmon_new_articles_total{source="new"} 0.0' in daemon.metrics.render().decode()


def test_a_shorter_interval_takes_effect_at_the_reload_not_after_the_next_poll(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """Both ways of shortening it: the source's own ``interval`` and ``[defaults]``."""
    own = feed_server.serve("/own.xml", rss("Scholz in the own feed"))
    default = feed_server.serve("/default.xml", rss("Scholz in the default feed"))
    before = settings_for(tmp_path, [{"name": "own", "url": own, "interval": "6h"},
                                     {"name": "default", "url": default}],
                          defaults={"max_age": "off", "interval": "6h"})
    after = settings_for(tmp_path, [{"name": "own", "url": own, "interval": "10m"},
                                    {"name": "default", "url": default}],
                         defaults={"max_age": "off", "interval": "10m"})
    clock = Clock(datetime.now(UTC))

    def fetched(path: str) -> int:
        return requests_to(feed_server, path)

    async def go() -> None:
        async with httpx.AsyncClient() as client:
            daemon = Daemon(before, load_rules(before.rules.paths), Store(before.storage.url),
                            client, {}, clock=clock)
            await daemon.start()
            stop = asyncio.Event()
            task = asyncio.create_task(daemon.run(stop))
            try:
                await until(lambda: fetched("/own.xml") == 1 and fetched("/default.xml") == 1)
                # Both given back, due in about 6 h.
                await until(lambda: all(s.due_at is not None and s.due_at > clock.now
                                        for s in reader.nodes.schedule().values()))
                await daemon.reconfigure(after, load_rules(after.rules.paths), {})
                clock.now += timedelta(minutes=11)  # one new interval on; the old one is 6 h
                await until(lambda: fetched("/own.xml") == 2 and fetched("/default.xml") == 2)
            finally:
                stop.set()
                await task
                await daemon.close()

    reader = Store(before.storage.url).open()
    try:
        asyncio.run(go())
    finally:
        reader.close()
