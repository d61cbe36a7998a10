"""`newsmon run`: build the daemon from the configuration and run it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from monitor.channels.registry import build_channels
from monitor.config import Settings, channel_secrets, find_config_path, load_settings
from monitor.daemon import Daemon
from monitor.errors import ConfigError, RuleError, RuleSetError
from monitor.fetch import build_client
from monitor.logs import setup_logging
from monitor.rules.load import load_rules
from monitor.rules.model import RuleSet
from monitor.store import Store

log = logging.getLogger("newsmon")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(find_config_path(args.config))
    setup_logging(args.log_level, channel_secrets(settings))
    rules = load_rules(settings.rules.paths)
    for warning in rules.warnings:
        log.warning("%s", warning)
    check_routes(settings, rules)
    return asyncio.run(_serve(settings, rules, once=args.once))


def check_routes(settings: Settings, rules: RuleSet) -> None:
    """Every channel a rule names exists, and every channel alerts go to is usable."""
    errors: list[RuleError] = []
    used: set[str] = set(settings.defaults.channels) | set(settings.health_channels)
    for rule in rules.rules:
        for name in rule.notify:
            used.add(name)
            if name not in settings.channels:
                where = rule.notify_origin or rule.origin
                errors.append(RuleError(where.path, where.line, where.col,
                                        f"notify: unknown channel {name!r} (configured: "
                                        f"{', '.join(settings.channels) or 'none'})"))
    if errors:
        raise RuleSetError(errors)
    problems = []
    for name in sorted(used):
        channel = settings.channels[name]
        configured = getattr(channel, "configured", lambda: True)()
        if not configured:
            problems.append(f"channels.{name}: alerts are routed here but it is not configured"
                            " (see docs/configuration.md)")
    if problems:
        raise ConfigError(problems)


async def _serve(settings: Settings, rules: RuleSet, *, once: bool) -> int:
    used = ({name for r in rules.rules for name in r.notify} | set(settings.defaults.channels)
            | set(settings.health_channels))
    channels = build_channels({n: c for n, c in settings.channels.items() if n in used})
    client = build_client(settings.fetch)
    daemon = Daemon(settings, rules, Store(settings.storage.url), client, channels)
    try:
        await daemon.start()
        if once:
            report = await daemon.run_once()
            for failed in report.failed_sources:
                print(f"newsmon: {failed.error}", file=sys.stderr)
            log.info("cycle done: %d sources polled (%d failed), %d alerts sent, %d retrying,"
                     " %d failed", len(report.polls), len(report.failed_sources),
                     report.delivery.sent, report.delivery.retrying, report.delivery.failed)
            return 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await daemon.run(stop)
        log.info("newsmon stopped")
        return 0
    finally:
        await daemon.close()
        await client.aclose()
