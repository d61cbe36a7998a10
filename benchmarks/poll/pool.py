"""httpx's connection pool alone: CPU and connections for 1,000 feed requests.

    .venv/bin/python benchmarks/poll/pool.py [--rounds 3]

The benchmark's feed server (100 loopback hosts, ten feeds each) and one
``httpx.AsyncClient`` as ``monitor.fetch.build_client`` makes it, 16 requests at
a time (``fetch.concurrency``), with different keep-alive bounds
(``max_keepalive_connections``; ``max_connections`` stays 32). Two orders: the
feeds' own (each host comes back 100 requests later: nothing to reuse) and
shuffled (a host's next feed may come soon). Two kinds of request: a full feed
(200, gzip, the body read to the end) and a conditional one answered 304, the
way ``Fetcher`` handles it (the response is closed without reading its empty
body) and read to the end. Prints this process's CPU seconds (the server's
thread included, the same in every variant) and the connections the server
accepted. Variants alternate within each round.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import Corpus, utc_now
from servers import FeedServer

CONCURRENCY = 16
KEEPALIVE = {"unset (main)": None, "16 (branch)": CONCURRENCY, "4": 4, "0": 0}
Request = tuple[str, str | None]  # URL, ETag to send


async def one_pass(requests: list[Request], keepalive: int | None, read_304: bool) -> float:
    """CPU seconds of this process for the requests, ``CONCURRENCY`` at a time."""
    limits = httpx.Limits(max_connections=2 * CONCURRENCY,
                          max_keepalive_connections=keepalive)
    async with httpx.AsyncClient(limits=limits, http2=True,
                                 headers={"Accept-Encoding": "gzip, deflate"}) as client:
        slots = asyncio.Semaphore(CONCURRENCY)

        async def get(url: str, etag: str | None) -> None:
            headers = {"If-None-Match": etag} if etag else {}
            async with slots, client.stream("GET", url, headers=headers) as response:
                if response.status_code != 304 or read_304:
                    async for _ in response.aiter_raw():
                        pass

        started = time.process_time()
        await asyncio.gather(*(get(url, etag) for url, etag in requests))
        return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    hosts = [f"127.0.0.{2 + i}" for i in range(100)]
    corpus = Corpus(1000, hosts, utc_now())
    server = FeedServer(hosts)
    server.start()
    server.publish(corpus)
    full = [(server.url(feed), None) for feed in corpus.feeds]
    unchanged = [(server.url(feed), server.bodies[feed.path].etag) for feed in corpus.feeds]
    shuffled = random.Random(1)
    kinds = {"200, feed order": (full, False), "200, shuffled": (full, True),
             "304 closed, shuffled": (unchanged, True), "304 read, shuffled": (unchanged, True)}
    results: dict[tuple[str, str], list[tuple[float, int]]] = {}
    try:
        for _ in range(args.rounds):
            for kind, (requests, shuffle) in kinds.items():
                order = list(requests)
                if shuffle:
                    shuffled.shuffle(order)
                for name, keepalive in KEEPALIVE.items():
                    server.reset_counts()
                    cpu = asyncio.run(one_pass(order, keepalive, kind.startswith("304 read")))
                    results.setdefault((kind, name), []).append((cpu, server.connections))
    finally:
        server.stop()
    print("| requests | keep-alive bound | CPU (s), each round | connections, each round |")
    print("|---|---|---|---|")
    for (kind, name), runs in results.items():
        print(f"| {kind} | {name} | {' '.join(f'{cpu:.2f}' for cpu, _ in runs)} "
              f"| {' '.join(str(n) for _, n in runs)} |")


if __name__ == "__main__":
    main()
