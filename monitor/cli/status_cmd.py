"""`newsmon status`: sources, outbox and rules at a glance. Never prints a secret."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from monitor.config import find_config_path, load_settings
from monitor.errors import RuleSetError
from monitor.rules.load import load_rules
from monitor.store import Store


def status(args: argparse.Namespace) -> int:
    settings = load_settings(find_config_path(args.config))
    store = Store(settings.storage.url).open()
    try:
        states = {s.name: s for s in store.source_states()}
        counts = store.outbox.counts()
        channel_states = store.outbox.channel_states()
        failed = store.outbox.failed_rows(5)
        articles = store.count_articles()
    finally:
        store.close()
    now = datetime.now(UTC)
    print(f"storage: {_storage_label(settings.storage.url)} ({articles} articles)")
    print("\nsources:")
    for source in settings.sources:
        state = states.get(source.name)
        flag = "" if source.enabled else " (disabled)"
        if state is None:
            print(f"  {source.name}{flag}: never polled")
            continue
        line = f"  {source.name}{flag}: last success {_ago(state.last_success_at, now)}"
        if state.feed_url:
            line += f" (feed discovered on the page: {state.feed_url})"
        if state.consecutive_failures:
            line += (f", {state.consecutive_failures} failures in a row, next try "
                     f"{_ago(state.next_poll_at, now)}; last error: {state.last_error}")
        print(line)
    print("\nchannels:")
    per_channel: dict[str, list[str]] = {}
    for count in counts:
        per_channel.setdefault(count.channel, []).append(f"{count.count} {count.status}")
    for name in sorted(set(settings.channels) | set(per_channel)):
        channel_state = channel_states.get(name)
        line = f"  {name}: " + (", ".join(per_channel.get(name, [])) or "no alerts yet")
        if channel_state is not None and channel_state.failing_since is not None:
            line += (f"; FAILING since {_ago(channel_state.failing_since, now)}:"
                     f" {channel_state.error}"
                     f" (fix the settings or run `newsmon channels test {name}`)")
        print(line)
    if failed:
        print("\nlatest failed alerts:")
        for channel, rule, error in failed:
            print(f"  {channel} / {rule}: {error}")
    try:
        rules = load_rules(settings.rules.paths)
        print(f"\nrules: {len(rules.rules)} loaded from "
              f"{', '.join(str(p) for p in settings.rules.paths)}")
    except RuleSetError as exc:
        print(f"\nrules: INVALID ({len(exc.errors)} errors; run `newsmon rules check`)")
    return 0


def _storage_label(url: str) -> str:
    if "@" in url:  # never show credentials
        scheme, rest = url.split("://", 1)
        return f"{scheme}://…@{rest.rsplit('@', 1)[1]}"
    return url


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = int((now - when).total_seconds())
    if seconds < 0:
        return f"in {-seconds}s" if -seconds < 120 else f"in {-seconds // 60}m"
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago" if seconds < 172800 else f"{seconds // 86400}d ago"
