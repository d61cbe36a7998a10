"""Benchmark of several nodes on one PostgreSQL database: throughput with 1, 2 and 3
`newsmon run` processes on 5,000 feeds, against one node on SQLite as the baseline.

    .venv/bin/python benchmarks/multinode/run.py                 # 5,000 feeds; ~5 minutes
    .venv/bin/python benchmarks/multinode/run.py --feeds 1000    # quicker

For each set-up: a fresh database (a fresh PostgreSQL schema), a local feed server
(a thread pool in this process) serving every feed with ETag support, and N real
daemon processes with the same configuration (interval 1 h: each feed is polled once
per round). Two rounds are timed:

- *new*: the first poll of every feed; each feed has 3 new items (15,000 articles for
  5,000 feeds): fetch, parse, match, cluster (under the story lock), store.
- *unchanged*: every source made due again at once; every feed answers 304.

While a round runs, PostgreSQL's sessions are sampled every 0.1 s for backends
waiting on the story lock (advisory) and on row locks. Measures only; writes nothing
outside a temporary folder and the schemas it drops.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get("NEWSMON_TEST_POSTGRES",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")
WORDS = ["ministers", "approve", "sanctions", "package", "shadow", "fleet", "tankers", "ports",
         "grain", "harbour", "storm", "warning", "flood", "rail", "strike", "talks", "budget",
         "vote", "court", "ruling", "election"]


def words(start: int, count: int) -> str:
    return " ".join(WORDS[(start + k) % len(WORDS)] for k in range(count))


class Feeds:
    """Every feed's body and ETag; requests counted per feed."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.bodies: dict[str, tuple[bytes, str]] = {}
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        now = format_datetime(datetime.now(UTC))
        for feed in range(count):
            items = "".join(
                f"<item><title>{words(feed * 7 + i * 3, 6)} {feed}-{i}</title>"
                f"<link>http://news.test/{feed}/{i}</link><guid>{feed}-{i}</guid>"
                f"<description>Report {i} of desk {feed}: {words(feed + i, 20)}</description>"
                f"<pubDate>{now}</pubDate></item>" for i in range(3))
            body = (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Desk {feed}"
                    f"</title><link>http://news.test/</link>{items}</channel></rss>").encode()
            self.bodies[f"/feed/{feed}.xml"] = (body, f'"{hashlib.sha1(body).hexdigest()}"')

    def serve(self) -> ThreadingHTTPServer:
        feeds = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with feeds.lock:
                    feeds.requests[self.path] += 1
                body, etag = feeds.bodies[self.path]
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@dataclass
class Round:
    seconds: float
    polls_per_s: float
    max_requests_per_feed: int
    lock_waiters: float  # mean backends waiting on the story lock
    row_waiters: float  # mean backends waiting on row locks
    node_cpu_s: float  # CPU seconds the nodes used in the round


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def timed_round(url: str, feeds: Feeds, pids: list[int], since: datetime,
                shared: bool) -> Round:
    engine = sa.create_engine(url)
    feeds.requests.clear()
    samples: list[tuple[int, int]] = []
    monitor = sa.create_engine(POSTGRES) if shared else None
    cpu = cpu_seconds(pids)
    started = time.monotonic()
    while True:
        try:
            with engine.connect() as conn:
                done = conn.execute(
                    sa.text("SELECT count(*) FROM sources WHERE last_attempt_at >= :since"
                            " AND lease_owner IS NULL"),
                    {"since": since if shared else since.replace(tzinfo=None)}).scalar_one()
        except sa.exc.DBAPIError:  # the nodes have not created the schema yet
            done = 0
        if monitor is not None:
            with monitor.connect() as conn:
                row = conn.execute(sa.text(
                    "SELECT count(*) FILTER (WHERE wait_event = 'advisory'),"
                    " count(*) FILTER (WHERE wait_event IN ('tuple', 'transactionid'))"
                    " FROM pg_stat_activity WHERE datname = current_database()")).one()
            samples.append((int(row[0]), int(row[1])))
        if done >= feeds.count:
            break
        if time.monotonic() - started > 1800:
            raise RuntimeError("round did not finish in 30 minutes")
        time.sleep(0.1)
    used = cpu_seconds(pids) - cpu
    # From the start of the round's first poll to the start of its last (node start-up
    # excluded).
    with engine.connect() as conn:
        first, last = conn.execute(sa.text(
            "SELECT min(last_attempt_at), max(last_attempt_at) FROM sources WHERE"
            " last_attempt_at >= :since"),
            {"since": since if shared else since.replace(tzinfo=None)}).one()
    if isinstance(first, str):  # SQLite
        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    seconds = max((last - first).total_seconds(), 0.001)
    engine.dispose()
    if monitor is not None:
        monitor.dispose()
    n = max(len(samples), 1)
    return Round(seconds, feeds.count / seconds, max(feeds.requests.values()),
                 sum(s[0] for s in samples) / n, sum(s[1] for s in samples) / n, used)


def run_setup(nodes: int, backend: str, feeds: Feeds, base: str, folder: Path) -> list[Round]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES)
    if backend == "postgresql":
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{folder / f'{schema}.db'}"
    sources = "".join(f'[[sources]]\nname = "feed-{i}"\nurl = "{base}/feed/{i}.xml"\n'
                      for i in range(feeds.count))
    config = folder / f"{schema}.toml"
    config.write_text(f"""
[storage]
url = "{url}"
[rules]
paths = ["{ROOT / 'rules'}"]
[defaults]
interval = "1h"
max_age = "off"
[fetch]
per_host = 64
[cluster]
lease = "60s"
heartbeat = "5s"
claim_every = "1s"
{sources}""")
    since = datetime.now(UTC)
    logs = [(folder / f"{schema}-{i}.log").open("wb") for i in range(nodes)]
    processes = [subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config",
                                   str(config), "--log-level", "WARNING"],
                                  stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
                 for log in logs]
    shared = backend == "postgresql"
    try:
        first = timed_round(url, feeds, [p.pid for p in processes], since, shared)
        engine = sa.create_engine(url)
        since = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE sources SET due_at = NULL"))
        engine.dispose()
        second = timed_round(url, feeds, [p.pid for p in processes], since, shared)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        for log in logs:
            log.close()
        if backend == "postgresql":
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
    return [first, second]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=5000)
    args = parser.parse_args()
    feeds = Feeds(args.feeds)
    server = feeds.serve()
    host, port = server.server_address[:2]
    base = f"http://{host!s}:{port}"
    print(f"{args.feeds} feeds; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    print("| set-up | round | seconds | polls/s | vs 1 node (PostgreSQL) | max requests"
          " per feed | waiting on the story lock | waiting on row locks | node CPU s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    baseline: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for nodes, backend in ((1, "sqlite"), (1, "postgresql"), (2, "postgresql"),
                               (3, "postgresql")):
            rounds = run_setup(nodes, backend, feeds, base, Path(folder))
            for name, result in zip(("new", "unchanged"), rounds, strict=True):
                if (nodes, backend) == (1, "postgresql"):
                    baseline[name] = result.polls_per_s
                ratio = (f"{result.polls_per_s / baseline[name]:.2f}x" if name in baseline
                         else "—")
                waits = ((f"{result.lock_waiters:.2f}", f"{result.row_waiters:.2f}")
                         if backend == "postgresql" else ("—", "—"))
                print(f"| {nodes} node{'s' if nodes > 1 else ''}, {backend} | {name} |"
                      f" {result.seconds:.1f} | {result.polls_per_s:.0f} | {ratio} |"
                      f" {result.max_requests_per_feed} | {waits[0]} | {waits[1]} |"
                      f" {result.node_cpu_s:.0f} |", flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
