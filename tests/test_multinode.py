"""Three real daemon processes share one PostgreSQL database, a few hundred feeds with
new items arriving, a Slack and an SMTP server; one node is SIGKILLed mid-cycle.

Pinned down: every alert is delivered exactly once (but for sends cut mid-way by the
kill: at most one per channel); each feed is polled once per interval across the
nodes, never sooner, and keeps being polled after its node died; nothing is lost.
"""

from __future__ import annotations

import os
import random
import signal
import string
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.store import Store
from tests.conftest import REPO, FeedServer
from tests.slack_server import TOKEN, SlackServer
from tests.smtp_server import MailServer, MailServerFactory
from tests.smtp_server import mail_server as mail_server

pytestmark = pytest.mark.slow

FEEDS = 240
INTERVAL = 3.0  # seconds between two polls of a feed
LEASE = 4.0  # longer: a poll the kill cut and its repeat are more than INTERVAL apart too
NODES = 3
FINCH, KINGFISHER = "zebrafinch", "kingfisher"  # what the email and the Slack rule look for

RULES = {
    "finch.yaml": f"""id: finch-watch
title: Finch watch
severity: high
query: {FINCH}
notify: [mail]
examples:
  match: ["{FINCH} seen"]
  no_match: ["nothing"]
""",
    "kingfisher.yaml": f"""id: kingfisher-watch
title: Kingfisher watch
severity: high
query: {KINGFISHER}
notify: [slack]
examples:
  match: ["{KINGFISHER} seen"]
  no_match: ["nothing"]
""",
}


def word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(9))


class Newsroom:
    """The feeds, and a stream of new items: each item is its own story, with a key."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.rng = random.Random(8)
        self.items: dict[int, list[tuple[str, str, str]]] = {i: [] for i in range(FEEDS)}
        self.expected: dict[str, list[str]] = {"mail": [], "slack": []}
        for feed in range(FEEDS):
            for _ in range(2):
                self.add(feed, "")

    def path(self, feed: int) -> str:
        return f"/feed/{feed}.xml"

    def add(self, feed: int, keyword: str) -> str:
        key = word(self.rng)
        title = f"{keyword} {key} {word(self.rng)} {word(self.rng)}".strip()
        summary = " ".join(word(self.rng) for _ in range(12))
        self.items[feed] = (self.items[feed] + [(key, title, summary)])[-5:]
        now = format_datetime(datetime.now(UTC))
        entries = "".join(
            f"<item><title>{t}</title><link>http://news.test/{k}</link><guid>{k}</guid>"
            f"<description>{s}</description><pubDate>{now}</pubDate></item>"
            for k, t, s in reversed(self.items[feed]))
        body = (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Feed {feed}</title>"
                f"<link>http://news.test/</link>{entries}</channel></rss>").encode()
        self.server.serve(self.path(feed), body)
        if keyword == FINCH:
            self.expected["mail"].append(key)
        elif keyword == KINGFISHER:
            self.expected["slack"].append(key)
        return key

    def stream(self, stop: threading.Event, every: float) -> None:
        count = 0
        while not stop.wait(every):
            count += 1
            keyword = KINGFISHER if count % 5 == 0 else FINCH
            self.add(self.rng.randrange(FEEDS), keyword)


def write_config(tmp_path: Path, url: str, feeds: FeedServer, slack: SlackServer,
                 mail: MailServer) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    for name, text in RULES.items():
        (rules / name).write_text(text)
    sources = "".join(f'[[sources]]\nname = "feed-{i}"\nurl = "{feeds.url(f"/feed/{i}.xml")}"\n'
                      for i in range(FEEDS))
    config = tmp_path / "newsmon.toml"
    config.write_text(f"""
[storage]
url = "{url}"
[rules]
paths = ["{rules}"]
[defaults]
interval = "{INTERVAL:.0f}s"
max_age = "off"
[fetch]
per_host = 32
concurrency = 16
[delivery]
interval = "1s"
lease = "4s"
[cluster]
lease = "{LEASE:.0f}s"
heartbeat = "1s"
claim_every = "1s"
[channels.slack]
type = "slack"
token = "{TOKEN}"
channel = "#news"
api_url = "{slack.base}/api/"
[channels.mail]
type = "email"
host = "127.0.0.1"
port = {mail.port}
security = "none"
sender = "newsmon@news.test"
to = ["desk@news.test"]
{sources}""")
    return config


def start_node(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=sink, cwd=REPO,
                                env={**os.environ})


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with SlackServer() as server:
        yield server


def test_three_nodes_deliver_every_alert_once_and_poll_each_feed_once_per_interval(
    tmp_path: Path, feed_server: FeedServer, slack: SlackServer,
    mail_server: MailServerFactory, postgres_url: str,
) -> None:
    mail = mail_server()
    news = Newsroom(feed_server)
    config = write_config(tmp_path, postgres_url, feed_server, slack, mail)
    engine = sa.create_engine(Store(postgres_url).url)
    nodes = [start_node(config, tmp_path / f"node-{i}.log") for i in range(NODES)]
    stop_stream = threading.Event()
    streamer = threading.Thread(target=news.stream, args=(stop_stream, 0.5))
    try:
        wait(lambda: len({r.path for r in list(feed_server.requests)}) == FEEDS, 30,
             "every feed polled once")
        streamer.start()
        time.sleep(4)

        # SIGKILL the first node while it holds leases (polls in flight).
        def leases_held() -> bool:
            with engine.connect() as conn:
                return bool(conn.execute(sa.text(
                    "SELECT count(*) FROM sources WHERE lease_owner LIKE :me"),
                    {"me": f"%:{nodes[0].pid}:%"}).scalar_one())

        wait(leases_held, 10, "the first node holding leases")
        nodes[0].send_signal(signal.SIGKILL)
        nodes[0].wait(timeout=10)
        killed_at = time.monotonic()
        time.sleep(LEASE + INTERVAL + 2)  # the others take over and keep polling
        stop_stream.set()
        streamer.join()

        def delivered() -> dict[str, Counter[str]]:
            received = {"mail": Counter[str](), "slack": Counter[str]()}
            texts = {"mail": [str(m.message["Subject"]) for m in list(mail.received)],
                     "slack": [str(r.body.get("text")) for r in list(slack.requests)]}
            for channel, keys in news.expected.items():
                for key in keys:
                    received[channel][key] = sum(key in text for text in texts[channel])
            return received

        wait(lambda: all(all(delivered()[c].values()) for c in news.expected), 20,
             "every alert delivered")
        time.sleep(1)  # anything sent twice would arrive now
        for node in nodes[1:]:
            node.send_signal(signal.SIGTERM)
        assert [node.wait(timeout=10) for node in nodes[1:]] == [0] * (NODES - 1)
    finally:
        stop_stream.set()
        for node in nodes:
            if node.poll() is None:
                node.kill()
                node.wait()
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.text(
            "SELECT status, count(*) FROM outbox GROUP BY status")).all())
        pollers = conn.execute(sa.text(
            "SELECT count(DISTINCT last_node) FROM sources")).scalar_one()
    engine.dispose()

    # Every alert delivered, exactly once but for sends the kill cut (one per channel).
    received = delivered()
    assert len(news.expected["mail"]) >= 20
    assert len(news.expected["slack"]) >= 5
    for channel in ("mail", "slack"):
        repeated = sum(n - 1 for n in received[channel].values())
        assert repeated <= 1, (channel, received[channel])
    assert statuses == {"sent": len(news.expected["mail"]) + len(news.expected["slack"])}
    assert pollers >= NODES - 1  # the work was shared

    # Each feed polled once per interval across the nodes (three nodes each polling on
    # their own would poll it three times as often): between a feed's first and last
    # request, no more polls than intervals, give or take one (a poll the kill cut is
    # repeated; a request leaves a loaded machine a little after its poll started).
    # And every feed was polled again once the dead node's leases had expired.
    polls: dict[str, list[float]] = {}
    for request in list(feed_server.requests):
        polls.setdefault(request.path, []).append(request.at)
    excess = max(len(times) - 1 - (times[-1] - times[0]) / INTERVAL for times in polls.values())
    assert excess <= 1.5, excess
    expired = killed_at + LEASE  # the dead node's leases have run out by then
    assert all(any(at > expired for at in times) for times in polls.values())
