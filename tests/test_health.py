"""Operational alerts: a failing source, a silent source, and their recovery."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from monitor.channel_settings import ConsoleChannelSettings
from monitor.channels.console import ConsoleChannel
from monitor.config import HealthSettings, Settings, resolve_paths
from monitor.daemon import Daemon
from monitor.health import after_success
from monitor.rules.load import load_rules
from monitor.store import SourceState, Store
from tests.conftest import RULES, SEEDS, FeedServer, Route

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def run(settings: Settings, clock: Clock, out: io.StringIO) -> Any:
    async def go() -> Any:
        channel = ConsoleChannel("console", ConsoleChannelSettings(type="console"), out)
        async with httpx.AsyncClient() as client:
            daemon = Daemon(settings, load_rules(settings.rules.paths),
                            Store(settings.storage.url), client, {"console": channel}, clock)
            await daemon.start()
            try:
                return await daemon.run_once()
            finally:
                await daemon.close()

    return asyncio.run(go())


def settings_for(tmp_path: Path, url: str, **source: Any) -> Settings:
    return resolve_paths(Settings(
        storage={"url": f"sqlite:///{tmp_path / 'state.db'}"},  # type: ignore[arg-type]
        rules={"paths": [str(RULES)]},  # type: ignore[arg-type]
        defaults={"max_age": "off"},  # type: ignore[arg-type]
        health={"failing_after": "6h"},  # type: ignore[arg-type]
        sources=[{"name": "wire", "url": url, **source}],  # type: ignore[list-item]
    ), tmp_path)


def test_a_source_failing_past_the_limit_alerts_once_and_then_recovers(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.routes["/wire.xml"] = Route(status=500, body=b"down")
    settings = settings_for(tmp_path, feed_server.url("/wire.xml"))
    clock, out = Clock(), io.StringIO()
    for _ in range(4):  # 0h, 3h, 6h, 9h
        run(settings, clock, out)
        clock.now += timedelta(hours=3)
    text = out.getvalue()
    assert text.count("[HIGH] Source failing") == 1
    assert "wire has failed for 6h00m (3 attempts): HTTP 500" in text
    feed_server.routes["/wire.xml"] = Route(body=(SEEDS / "feeds" / "wire.xml").read_bytes())
    run(settings, clock, out)
    assert out.getvalue().count("[HIGH] Source recovered") == 1
    assert "wire works again after failing for 12h00m" in out.getvalue()


def test_a_source_that_stops_publishing_is_reported_silent(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    body = (SEEDS / "feeds" / "wire.xml").read_bytes()
    feed_server.routes["/wire.xml"] = Route(body=body)
    settings = settings_for(tmp_path, feed_server.url("/wire.xml"), expect_every="1h")
    clock, out = Clock(), io.StringIO()
    run(settings, clock, out)  # the first items: now the source is known to publish
    for hours in (1, 2, 3, 4):
        clock.now = START + timedelta(hours=hours)
        run(settings, clock, out)
    assert "Source silent" not in out.getvalue()  # 4h quiet: silence_factor 4 x 1h
    clock.now = START + timedelta(hours=4, minutes=30)
    run(settings, clock, out)
    clock.now = START + timedelta(hours=5)
    run(settings, clock, out)
    text = out.getvalue()
    assert text.count("[HIGH] Source silent") == 1
    assert "wire has had no new item for 4h30m (usually one every 60m)" in text
    feed_server.routes["/wire.xml"] = Route(body=body.replace(
        b"</channel>", b"<item><title>Fresh news</title><guid>new-1</guid></item></channel>"))
    run(settings, clock, out)
    assert "wire has new items again after 5h00m" in out.getvalue()


def test_the_usual_gap_is_learned_only_after_enough_history() -> None:
    policy = HealthSettings(min_history=3)
    state = SourceState("wire", "u", last_new_at=START)
    for hours in (1, 2, 3):  # new items every hour
        state, event = after_success(state, state, 1, START + timedelta(hours=hours), None,
                                     policy)
        assert event is None
    assert state.gaps_seen == 3
    assert state.gap_mean == 3600
    quiet = START + timedelta(hours=3 + 5)
    _, event = after_success(state, state, 0, quiet, None, policy)
    assert event is not None
    assert event.kind == "silent"
    young = SourceState("new", "u", last_new_at=START, gap_mean=3600, gaps_seen=1)
    assert after_success(young, young, 0, quiet, None, policy)[1] is None
