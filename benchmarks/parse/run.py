"""Parsing 1,000 changed feeds from the event loop: a thread per parse (before) against
the worker pool (``monitor.workers``, now), in the same run on the same feeds.

    .venv/bin/python benchmarks/parse/run.py [--feeds 1000] [--items 20] [--workers N]
                                             [--rounds 5]

Prints, as medians of interleaved rounds: wall time, the CPU time of the daemon's own
process, the event loop's worst stall (a ticker that should wake every 5 ms), and the
ratio of wall times. The feeds are generated (fixed seed): half RSS 2.0, half Atom 1.0,
20 items of headline, summary and a few paragraphs each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from monitor.parse import parse_feed
from monitor.records import ParsedFeed
from monitor.workers import WorkerPool

WORDS = [
    "sanctions", "package", "shadow", "fleet", "tankers", "minister", "Brussels", "missile",
    "strike", "Kursk", "troops", "authorised", "long-range", "decision", "officials", "Kyiv",
    "Moscow", "oil", "price", "cap", "talks", "storm", "weather", "central", "bank", "rates",
    "inflation", "election", "council", "vote", "summit",
]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def feed(index: int, items: int, rng: random.Random) -> bytes:
    entries = []
    for i in range(items):
        title, summary = sentence(rng, 9), sentence(rng, 30)
        body = "".join(f"<p>{sentence(rng, 25)}</p>" for _ in range(4))
        if index % 2:
            entries.append(f"<entry><id>urn:f{index}:{i}</id><title>{title}</title>"
                           f"<link href='http://outlet{index}.example/a/{i}'/>"
                           f"<updated>2024-11-18T09:{i:02d}:00Z</updated>"
                           f"<summary>{summary}</summary>"
                           f"<content type='html'><![CDATA[{body}]]></content></entry>")
        else:
            entries.append(f"<item><guid>f{index}-{i}</guid><title>{title}</title>"
                           f"<link>http://outlet{index}.example/a/{i}</link>"
                           f"<pubDate>Mon, 18 Nov 2024 09:{i:02d}:00 GMT</pubDate>"
                           f"<description>{summary}</description></item>")
    if index % 2:
        return ("<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
                f"<title>Outlet {index}</title><id>urn:f{index}</id>"
                f"<updated>2024-11-18T10:00:00Z</updated>{''.join(entries)}</feed>").encode()
    return ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Outlet {index}</title>{''.join(entries)}</channel></rss>").encode()


Parse = Callable[[str, bytes], Awaitable[ParsedFeed]]


async def measure(bodies: list[bytes], parse: Parse, concurrency: int) -> tuple[float, float]:
    """(wall seconds, worst event-loop stall in ms) parsing every body, ``concurrency`` at once."""
    stall = 0.0
    done = False

    async def ticker() -> None:
        nonlocal stall
        while not done:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            stall = max(stall, time.perf_counter() - before - 0.005)

    limit = asyncio.Semaphore(concurrency)

    async def one(i: int, body: bytes) -> None:
        async with limit:
            parsed = await parse(f"f{i}", body)
            assert len(parsed.entries) > 0

    tick = asyncio.ensure_future(ticker())
    start = time.perf_counter()
    await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
    wall = time.perf_counter() - start
    done = True
    await tick
    return wall, stall * 1000


def descendants_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's descendants (the fork
    server and its workers), read from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, frontier = 0.0, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                total += times[pid]
                frontier.append(pid)
    return total


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    load = f"{os.getloadavg()[0]:.1f}"
    rng = random.Random(7)
    bodies = [feed(i, args.items, rng) for i in range(args.feeds)]
    print(f"{args.feeds} feeds x {args.items} items, {sum(map(len, bodies)) / 1e6:.1f} MB;"
          f" {os.cpu_count()} CPUs; pool of {args.workers} workers")

    async def in_thread(name: str, body: bytes) -> ParsedFeed:
        return await asyncio.to_thread(parse_feed, name, "u", body, None, 1000)

    pool = WorkerPool(args.workers)
    await pool.run(30, len, b"")  # start one worker: the fork server's start is a one-off

    async def in_pool(name: str, body: bytes) -> ParsedFeed:
        return await pool.run(30, parse_feed, name, "u", body, None, 1000)

    variants = (("thread per parse (before)", in_thread), ("worker pool (now)", in_pool))
    runs: dict[str, list[tuple[float, ...]]] = {label: [] for label, _ in variants}
    try:
        for _ in range(args.rounds):  # interleaved, so both see the same machine load
            for label, parse in variants:
                cpu, helpers = time.process_time(), descendants_cpu()
                wall, stall = await measure(bodies, parse, concurrency=16)
                runs[label].append((wall, time.process_time() - cpu,
                                    descendants_cpu() - helpers, stall))
    finally:
        await pool.close()
    print(f"median of {args.rounds} interleaved rounds; load average before/after:"
          f" {load} / {os.getloadavg()[0]:.1f}")
    print("| parsing | wall (s) | feeds/s | CPU: daemon process (s) | CPU: workers (s) |"
          " worst loop stall (ms) | wall vs before |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = statistics.median(m[0] for m in runs[variants[0][0]])
    for label, measured in runs.items():
        wall, cpu, helpers, stall = (statistics.median(m[i] for m in measured) for i in range(4))
        print(f"| {label} | {wall:.2f} | {len(bodies) / wall:,.0f} | {cpu:.2f} | {helpers:.2f} |"
              f" {stall:.0f} | {wall / base:.2f}x |")


if __name__ == "__main__":
    asyncio.run(main())
