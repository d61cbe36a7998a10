"""`newsmon channels test NAME`: send a test alert to one channel; report success or the error."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from monitor.channels.registry import build_channel
from monitor.config import find_config_path, load_settings
from monitor.errors import ChannelError, ConfigError, StoreError
from monitor.records import Alert, Span
from monitor.store import Store


def test_alert(channel: str, severity_floor: str) -> Alert:
    from monitor.severity import Severity

    severity = max(Severity(severity_floor), Severity.HIGH, key=lambda s: s.rank)
    snippet = "If you can read this, newsmon's alerts will arrive in this channel."
    return Alert(
        rule_id="newsmon-test", rule_title="newsmon test alert", severity=severity,
        channel=channel, story_id=f"test-{datetime.now(UTC).isoformat()}",
        article_title="Test: newsmon can reach this channel", article_url=None,
        source="newsmon", published=datetime.now(UTC), snippet=snippet,
        matched_terms=("newsmon",), spans=(Span("content", 39, 46, "newsmon"),),
    )


def test(args: argparse.Namespace) -> int:
    settings = load_settings(find_config_path(args.config))
    if args.name not in settings.channels:
        raise ConfigError([f"channels: no channel named {args.name!r} (configured: "
                           f"{', '.join(settings.channels)})"])
    channel_settings = settings.channels[args.name]
    if not getattr(channel_settings, "configured", lambda: True)():
        raise ConfigError([f"channels.{args.name}: not configured (see docs/configuration.md)"])
    channel = build_channel(args.name, channel_settings)

    async def send() -> None:
        try:
            await channel.send(test_alert(args.name, channel_settings.min_severity))
        finally:
            await channel.close()

    try:
        asyncio.run(send())
    except ChannelError as exc:
        kind = f"{exc.kind}, permanent" if exc.permanent else str(exc.kind)
        print(f"failed: {exc.reason} ({kind})", file=sys.stderr)
        return 1
    print(f"ok: test alert sent to {args.name}")
    _clear_failing(settings.storage.url, args.name)
    return 0


def _clear_failing(url: str, name: str) -> None:
    """A channel that works again gets its waiting alerts: clear its failing mark."""
    try:
        store = Store(url).open()
    except StoreError as exc:
        print(f"note: could not update the state database: {exc}", file=sys.stderr)
        return
    try:
        state = store.channel_health.channel_states().get(name)
        if state is not None and state.failing_since is not None:
            store.channel_health.clear_failing(name)
            print(f"channel {name} was marked failing ({state.error}); cleared: its waiting"
                  " alerts will be sent")
    finally:
        store.close()
