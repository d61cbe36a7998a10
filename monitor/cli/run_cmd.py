"""`newsmon run`: build the daemon from the configuration and run it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from monitor.channels.registry import build_channels
from monitor.config import find_config_path
from monitor.daemon import Daemon
from monitor.fetch import build_client
from monitor.logs import setup_logging
from monitor.reload import Configuration, load_configuration, used_channels
from monitor.sd_notify import Notifier
from monitor.secrets import channel_secrets
from monitor.service import Service
from monitor.store import Store

log = logging.getLogger("newsmon")


def run(args: argparse.Namespace) -> int:
    configuration = load_configuration(find_config_path(args.config))
    settings = configuration.settings
    setup_logging(args.log_level, channel_secrets(settings), settings.logging.format)
    for warning in configuration.rules.warnings:
        log.warning("%s", warning)
    return asyncio.run(_serve(configuration, once=args.once, log_level=args.log_level))


async def _serve(configuration: Configuration, *, once: bool, log_level: str) -> int:
    settings, rules = configuration.settings, configuration.rules
    channels = build_channels({n: c for n, c in settings.channels.items()
                               if n in used_channels(settings, rules)})
    client = build_client(settings.fetch)
    daemon = Daemon(settings, rules, Store(settings.storage.url), client, channels)
    notifier = Notifier.from_environment()
    try:
        notifier.status("starting: opening the state database")
        await daemon.start()
        if once:
            report = await daemon.run_once()
            for failed in report.failed_sources:
                print(f"newsmon: {failed.error}", file=sys.stderr)
            log.info("cycle done: %d sources polled (%d failed), %d alerts sent, %d retrying,"
                     " %d failed", len(report.polls), len(report.failed_sources),
                     report.delivery.sent, report.delivery.retrying, report.delivery.failed)
            return 0
        await Service(configuration, daemon, notifier, log_level).run()
        log.info("newsmon stopped")
        return 0
    finally:
        await daemon.close()
        await client.aclose()
        notifier.close()
