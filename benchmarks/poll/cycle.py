"""One cycle of a running newsmon daemon, timed without the process's start-up.

    .venv/bin/python benchmarks/poll/cycle.py CONFIG OUTPUT.json

``newsmon run`` is a daemon: it imports its libraries, loads rules and opens its
store once, then polls every source each interval. This builds the daemon the
way ``newsmon run`` does (same configuration, rules, channels, store, HTTP
client), starts it, and times one ``Daemon.run_once`` (one full cycle: poll every
source, deliver what is due). It writes one JSON object to OUTPUT.json: the
cycle's wall and CPU seconds (this process, all threads) and what it did.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from monitor.channels.registry import build_channels
from monitor.daemon import Daemon
from monitor.fetch import build_client
from monitor.reload import load_configuration, used_channels
from monitor.store import Store


async def one_cycle(config: str) -> dict[str, float]:
    configuration = load_configuration(Path(config))
    settings, rules = configuration.settings, configuration.rules
    channels = build_channels({n: c for n, c in settings.channels.items()
                               if n in used_channels(settings, rules)})
    client = build_client(settings.fetch)
    daemon = Daemon(settings, rules, Store(settings.storage.url), client, channels)
    try:
        await daemon.start()
        wall, cpu = time.perf_counter(), time.process_time()
        report = await daemon.run_once()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await daemon.close()
        await client.aclose()
    return {"cycle_wall": wall, "cycle_cpu": cpu, "polls": len(report.polls),
            "not_modified": sum(p.not_modified for p in report.polls),
            "new": sum(p.new for p in report.polls), "sent": report.delivery.sent}


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(asyncio.run(one_cycle(sys.argv[1]))))
