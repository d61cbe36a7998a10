"""`newsmon status [--json]`: nodes, sources, outbox, silences, rules and storage at a
glance.

One snapshot (``snapshot``) is built from the configuration, the rules and the
store, then printed as text or as JSON (its shape is documented in
docs/operations.md). Never prints a secret: the storage URL loses its
credentials, channel settings are not shown at all.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.cli.silence_cmd import silence_json, silence_line
from monitor.config import Settings, SourceSettings, find_config_path, load_settings
from monitor.errors import RuleSetError
from monitor.rules.load import load_rules
from monitor.store import SourceState, Store
from monitor.store.migrate import stored_version
from monitor.store.nodes import NodeStatus, SourceSchedule

ENDED_SILENCES = timedelta(days=7)  # ended silences stay in `status` this long
OUTBOX_STATUSES = ("pending", "sending", "deferred", "held", "sent", "failed", "silenced")
HELD_SHOWN = 8  # sources named per node in the text; the rest are counted


def status(args: argparse.Namespace) -> int:
    settings = load_settings(find_config_path(args.config))
    now = datetime.now(UTC)
    data = snapshot(settings, now)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(render(data, now))
    return 0


def snapshot(settings: Settings, now: datetime) -> dict[str, Any]:
    store = Store(settings.storage.url).open()
    try:
        states = {s.name: s for s in store.source_states()}
        counts = store.outbox_counts.counts()
        channel_states = store.channel_health.channel_states()
        failed = store.outbox_counts.failed_rows(5)
        articles = store.count_articles()
        silences = store.silences.active(now) + store.silences.ended_since(
            now - ENDED_SILENCES, now)
        silenced = store.silences.counts([s.id for s in silences])
        nodes = store.nodes.alive(now, settings.cluster.lease)
        schedule = store.nodes.schedule()
        with store.transaction() as conn:
            version = stored_version(conn)
    finally:
        store.close()
    per_channel: dict[str, dict[str, int]] = {
        name: dict.fromkeys(OUTBOX_STATUSES, 0) for name in settings.channels}
    for count in counts:
        per_channel.setdefault(count.channel, dict.fromkeys(OUTBOX_STATUSES, 0))[
            count.status] = count.count
    channels = []
    for name in sorted(per_channel):
        state = channel_states.get(name)
        failing = state is not None and state.failing_since is not None
        channels.append({
            "name": name, "configured": name in settings.channels, "outbox": per_channel[name],
            "failing_since": _iso(state.failing_since) if state and failing else None,
            "error": state.error if state and failing else None,
            "last_sent_at": _iso(state.last_sent_at) if state else None,
        })
    return {
        "generated_at": now.isoformat(),
        "storage": {"url": _storage_label(settings.storage.url),
                    "backend": "sqlite" if store.single_node else "postgresql",
                    "schema_version": version, "articles": articles},
        "nodes": [_node(n) for n in nodes],
        "sources": [_source(settings, s, states.get(s.name), schedule.get(s.name))
                    for s in settings.sources],
        "channels": channels,
        "failed_alerts": [{"channel": c, "rule": r, "error": e} for c, r, e in failed],
        "silences": [silence_json(s, silenced, now) for s in sorted(silences,
                                                                    key=lambda s: s.id)],
        "rules": _rules(settings),
    }


def _node(node: NodeStatus) -> dict[str, Any]:
    return {"id": node.id, "host": node.host, "pid": node.pid,
            "started_at": _iso(node.started_at), "heartbeat_at": _iso(node.heartbeat_at),
            "polling": list(node.holding)}


def _source(settings: Settings, source: SourceSettings, state: SourceState | None,
            schedule: SourceSchedule | None) -> dict[str, Any]:
    name, enabled = source.name, source.enabled
    polled_by = schedule.last_node if schedule else None
    if state is None or state.last_attempt_at is None:
        return {"name": name, "enabled": enabled, "last_success": None, "last_attempt": None,
                "last_error": None, "consecutive_failures": 0, "next_poll": None,
                "articles_seen": 0, "feed_url": None, "polled_by": polled_by}
    due = schedule.due_at if schedule and schedule.due_at else (
        state.last_attempt_at + settings.source_interval(source))
    next_poll = state.next_poll_at if state.consecutive_failures else due
    return {
        "name": name, "enabled": enabled,
        "last_success": _iso(state.last_success_at), "last_attempt": _iso(state.last_attempt_at),
        "last_error": state.last_error, "consecutive_failures": state.consecutive_failures,
        "next_poll": _iso(next_poll) if enabled else None,
        "articles_seen": state.articles_seen, "feed_url": state.feed_url,
        "polled_by": polled_by,
    }


def _rules(settings: Settings) -> dict[str, Any]:
    paths = [str(p) for p in settings.rules.paths]
    try:
        rules = load_rules(settings.rules.paths)
    except RuleSetError as exc:
        return {"loaded": 0, "ids": [], "paths": paths, "errors": len(exc.errors)}
    return {"loaded": len(rules.rules), "ids": [r.id for r in rules.rules], "paths": paths,
            "errors": 0}


def render(data: dict[str, Any], now: datetime) -> str:
    storage = data["storage"]
    lines = [f"storage: {storage['url']} ({storage['articles']} articles, schema version "
             f"{storage['schema_version']})"]
    lines += _node_lines(data["nodes"], now)
    lines += ["", "sources:"]
    for source in data["sources"]:
        flag = "" if source["enabled"] else " (disabled)"
        if source["last_attempt"] is None:
            lines.append(f"  {source['name']}{flag}: never polled")
            continue
        line = f"  {source['name']}{flag}: last success {_ago(source['last_success'], now)}"
        if len(data["nodes"]) > 1 and source["polled_by"]:
            line += f" by {source['polled_by']}"
        if source["feed_url"]:
            line += f" (feed discovered on the page: {source['feed_url']})"
        if source["consecutive_failures"]:
            line += (f", {source['consecutive_failures']} failures in a row, next try "
                     f"{_ago(source['next_poll'], now)}; last error: {source['last_error']}")
        elif source["next_poll"]:
            line += f", next poll {_ago(source['next_poll'], now)}"
        lines.append(line)
    lines += ["", "channels:"]
    for channel in data["channels"]:
        counts = ", ".join(f"{n} {status}" for status, n in channel["outbox"].items() if n)
        line = f"  {channel['name']}: {counts or 'no alerts yet'}"
        if not channel["configured"]:
            line += ("; not in the configuration any more: its waiting alerts are retried,"
                     " then recorded failed after delivery.max_age")
        if channel["failing_since"]:
            line += (f"; FAILING since {_ago(channel['failing_since'], now)}:"
                     f" {channel['error']}"
                     f" (fix the settings or run `newsmon channels test {channel['name']}`)")
        lines.append(line)
    if data["failed_alerts"]:
        lines += ["", "latest failed alerts:"]
        lines += [f"  {f['channel']} / {f['rule']}: {f['error']}" for f in data["failed_alerts"]]
    lines += ["", "silences:" if data["silences"] else "silences: none"]
    for silence in data["silences"]:
        lines.append(silence_line(silence, now))
    rules = data["rules"]
    lines.append("")
    if rules["errors"]:
        lines.append(f"rules: INVALID ({rules['errors']} errors; run `newsmon rules check`)")
    else:
        lines.append(f"rules: {rules['loaded']} loaded from {', '.join(rules['paths'])}")
    return "\n".join(lines)


def _node_lines(nodes: list[dict[str, Any]], now: datetime) -> list[str]:
    lines = ["", f"nodes: {len(nodes)} alive" if nodes else "nodes: none running"]
    for node in nodes:
        polling = node["polling"]
        held = ", ".join(polling[:HELD_SHOWN])
        if len(polling) > HELD_SHOWN:
            held += f" and {len(polling) - HELD_SHOWN} more"
        lines.append(f"  {node['id']}: up since {_ago(node['started_at'], now)}, heartbeat"
                     f" {_ago(node['heartbeat_at'], now)}, polling {len(polling)} sources"
                     + (f": {held}" if held else ""))
    return lines


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _storage_label(url: str) -> str:
    if "@" in url:  # never show credentials
        scheme, rest = url.split("://", 1)
        return f"{scheme}://…@{rest.rsplit('@', 1)[1]}"
    return url


def _ago(when: str | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = int((now - datetime.fromisoformat(when)).total_seconds())
    if seconds < 0:
        return f"in {-seconds}s" if -seconds < 120 else f"in {-seconds // 60}m"
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago" if seconds < 172800 else f"{seconds // 86400}d ago"
