"""One cycle of a running newsmon daemon, timed without the process's start-up.

    .venv/bin/python benchmarks/poll/cycle.py CONFIG OUTPUT.json
    .venv/bin/python benchmarks/poll/cycle.py CONFIG OUTPUT.json --after-cold READY GO

``newsmon run`` is a daemon: it imports its libraries, loads rules and opens its
store once, then polls every source each interval. This builds the daemon the
way ``newsmon run`` does (same configuration, rules, channels, store, HTTP
client), starts it, and times one ``Daemon.run_once`` (one full cycle: poll every
source, deliver what is due). It writes one JSON object to OUTPUT.json: the
cycle's wall and CPU seconds (this process, all threads, and its parse workers)
and what it did.

With ``--after-cold`` the daemon first runs an untimed cycle (the cold pass, on a
database of its own), creates the file READY, waits for the file GO (the
benchmark changes the feeds meanwhile), then times the next cycle: what a
running daemon pays for a tick, its story index and workers already warm.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from monitor.channels.registry import build_channels
from monitor.daemon import Daemon
from monitor.fetch import build_client
from monitor.reload import load_configuration, used_channels
from monitor.store import Store

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    """CPU time of this process and of its living children (the parse workers)."""
    total = time.process_time()
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if fields[1] == me:  # ppid; then utime and stime are fields 11 and 12
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


async def one_cycle(config: str, after_cold: tuple[Path, Path] | None) -> dict[str, float]:
    configuration = load_configuration(Path(config))
    settings, rules = configuration.settings, configuration.rules
    channels = build_channels({n: c for n, c in settings.channels.items()
                               if n in used_channels(settings, rules)})
    client = build_client(settings.fetch)
    daemon = Daemon(settings, rules, Store(settings.storage.url), client, channels)
    try:
        await daemon.start()
        if after_cold is not None:
            ready, go = after_cold
            await daemon.run_once()
            ready.touch()
            while not go.exists():
                await asyncio.sleep(0.05)
        wall, cpu = time.perf_counter(), cpu_seconds()
        report = await daemon.run_once()
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    finally:
        await daemon.close()
        await client.aclose()
    return {"cycle_wall": wall, "cycle_cpu": cpu, "polls": len(report.polls),
            "not_modified": sum(p.not_modified for p in report.polls),
            "new": sum(p.new for p in report.polls), "sent": report.delivery.sent}


if __name__ == "__main__":
    waits = (Path(sys.argv[4]), Path(sys.argv[5])) if sys.argv[3:4] == ["--after-cold"] else None
    Path(sys.argv[2]).write_text(json.dumps(asyncio.run(one_cycle(sys.argv[1], waits))))
