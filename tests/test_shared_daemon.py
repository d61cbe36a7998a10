"""Daemons sharing one database: a channel's digest is sent by one node; a node whose
due sources the others polled is still healthy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from monitor.config import ClusterSettings
from monitor.daemon import Daemon
from monitor.records import Alert, Digest
from monitor.rules.load import load_rules
from monitor.store import Store
from tests.conftest import RULES, SEEDS, FeedServer
from tests.test_daemon import Clock
from tests.test_shared_stories import settings


class DigestChannel:
    """Records digests; a send takes a while, so two nodes' sends would overlap."""

    pace = 0.0

    def __init__(self, digests: list[Digest]) -> None:
        self.digests = digests

    async def send(self, alert: Alert, thread: str | None = None) -> str | None:
        raise AssertionError("this channel only sends digests")

    async def send_digest(self, digest: Digest) -> None:
        await asyncio.sleep(0.3)
        self.digests.append(digest)

    async def close(self) -> None:
        pass


def test_two_nodes_whose_digest_falls_due_together_send_it_once(
    tmp_path: Path, feed_server: FeedServer, postgres_url: str
) -> None:
    wire = {"name": "seed-wire", "url": feed_server.serve(
        "/wire.xml", (SEEDS / "feeds" / "wire.xml").read_bytes())}
    rules = load_rules([RULES])
    configured = settings(tmp_path, postgres_url, [wire]).model_copy(update={
        "channels": {"console": settings(tmp_path, postgres_url, []).channels["console"]
                     .model_copy(update={"digest": "0 8 * * *", "immediate": False})}})
    clock = Clock(datetime(2026, 11, 26, 7, 0, tzinfo=UTC))
    digests: list[Digest] = []

    async def go() -> None:
        async with httpx.AsyncClient() as client:
            nodes = [Daemon(configured, rules, Store(postgres_url), client,
                            {"console": DigestChannel(digests)}, clock) for _ in range(2)]
            for node in nodes:
                await node.start()
            try:
                await nodes[0].run_once()  # polls, plans alerts held for the digest
                assert digests == []
                clock.now += timedelta(hours=1, minutes=1)
                await asyncio.gather(*(node.send_due_digests() for node in nodes))
            finally:
                for node in nodes:
                    await node.close()

    asyncio.run(go())
    (digest,) = digests
    assert len(digest.alerts) >= 2


def test_a_node_that_finds_nothing_due_because_the_others_polled_it_is_healthy(
    tmp_path: Path, feed_server: FeedServer, postgres_url: str
) -> None:
    wire = {"name": "seed-wire", "url": feed_server.serve(
        "/wire.xml", (SEEDS / "feeds" / "wire.xml").read_bytes())}
    configured = settings(tmp_path, postgres_url, [wire]).model_copy(update={
        "cluster": ClusterSettings(lease=timedelta(minutes=10), heartbeat=timedelta(minutes=1),
                                   claim_every=timedelta(seconds=1))})
    start = datetime.now(UTC)
    clock = Clock(start)
    other = Store(postgres_url).open()

    async def go() -> tuple[bool, bool]:
        async with httpx.AsyncClient() as client:
            node = Daemon(configured, load_rules([RULES]), Store(postgres_url), client,
                          {"console": DigestChannel([])}, clock)
            await node.start()
            # Another node holds the only source for as long as this test runs.
            assert other.nodes.claim_due("other:1:abc", ["seed-wire"], start,
                                         timedelta(hours=10), 1) == ["seed-wire"]
            stop = asyncio.Event()
            running = asyncio.create_task(node.run(stop))
            try:
                await asyncio.sleep(0.2)
                clock.now = start + timedelta(hours=1)  # far past the longest interval
                stale = (await node.health()).healthy
                await asyncio.sleep(1.5)  # the node looks for due sources again
                looked = (await node.health()).healthy
            finally:
                stop.set()
                await running
                await node.close()
            return stale, looked

    try:
        stale, looked = asyncio.run(go())
    finally:
        other.close()
    assert (stale, looked) == (False, True)
