"""`newsmon silence add|list|remove`: time-bounded mutes, kept in the state database.

What a silence does to the alerts it covers is ``monitor.silence``'s; this module
checks the names against the configuration and rules (a typo would silence
nothing), writes the row, and prints.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from typing import Any, cast

from monitor.config import Settings, find_config_path, load_settings
from monitor.durations import describe, format_duration
from monitor.rules.load import load_rules
from monitor.silence import TARGETS, Action, Silence, Target
from monitor.store import Store
from monitor.store.silences import SilencedCount

EXIT_INVALID = 2


def add(args: argparse.Namespace) -> int:
    settings = load_settings(find_config_path(args.config))
    target, name = _target(args)
    known = _known_names(settings, target)
    if name not in known:
        print(f"newsmon: silence: unknown {target} {name!r} (known: "
              f"{', '.join(sorted(known)) or 'none'})", file=sys.stderr)
        return EXIT_INVALID
    now = datetime.now(UTC)
    store = Store(settings.storage.url).open()
    try:
        silence = store.silences.add(target, name, cast(Action, args.then), args.reason or "",
                                     _who(), now, now + args.duration)
    finally:
        store.close()
    fate = ("go to the channel's next digest (on a channel without one, they are sent when"
            " the silence ends)" if silence.action == "digest"
            else "are recorded and not sent")
    print(f"silence {silence.id} added: {target} {name} for {format_duration(args.duration)},"
          f" until {_when(silence.until)}; alerts it covers {fate}")
    return 0


def list_(args: argparse.Namespace) -> int:
    settings = load_settings(find_config_path(args.config))
    now = datetime.now(UTC)
    store = Store(settings.storage.url).open()
    try:
        silences = store.silences.active(now)
        counts = store.silences.counts([s.id for s in silences])
    finally:
        store.close()
    listed = [silence_json(s, counts, now) for s in silences]
    if args.json:
        print(json.dumps(listed, indent=2))
    elif not listed:
        print("no active silences")
    for silence in [] if args.json else listed:
        print(silence_line(silence, now))
    return 0


def remove(args: argparse.Namespace) -> int:
    settings = load_settings(find_config_path(args.config))
    store = Store(settings.storage.url).open()
    try:
        silence = store.silences.remove(args.id, datetime.now(UTC))
    finally:
        store.close()
    print(f"silence {silence.id} removed: {silence.target} {silence.name} alerts as usual"
          " from now on")
    return 0


def silence_json(silence: Silence, counts: list[SilencedCount],
                 now: datetime) -> dict[str, Any]:
    """One silence as `status --json` and `silence list --json` show it."""
    return {
        "id": silence.id, "target": silence.target, "name": silence.name,
        "action": silence.action, "reason": silence.reason, "created_by": silence.created_by,
        "starts_at": silence.starts_at.isoformat(), "ends_at": silence.until.isoformat(),
        "active": silence.active(now),
        "alerts": {c.status: c.count for c in counts if c.silence_id == silence.id},
    }


def silence_line(silence: dict[str, Any], now: datetime) -> str:
    """One line of ``silence_json``'s output, for people."""
    filed = ", ".join(f"{n} {status}" for status, n in sorted(silence["alerts"].items()))
    until = datetime.fromisoformat(silence["ends_at"])
    state = (f"{describe(until - now)} left" if silence["active"]
             else f"ended {_when(until)}")
    reason = f" — {silence['reason']}" if silence["reason"] else ""
    return (f"  {silence['id']}: {silence['target']} {silence['name']}, {silence['action']},"
            f" {state} (by {silence['created_by']}){reason}; alerts: {filed or 'none yet'}")


def _target(args: argparse.Namespace) -> tuple[Target, str]:
    for target in TARGETS:
        name = getattr(args, target)
        if name:
            return target, str(name)
    raise AssertionError("argparse requires one of --rule, --source, --channel")


def _known_names(settings: Settings, target: str) -> set[str]:
    if target == "source":
        return {s.name for s in settings.sources}
    if target == "channel":
        return set(settings.channels)
    return {r.id for r in load_rules(settings.rules.paths).rules}


def _who() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (e.g. a DynamicUser= service)
        return "unknown"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
