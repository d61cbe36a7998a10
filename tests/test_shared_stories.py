"""Story clustering across nodes: the shared store is the source of truth for story ids.

Two nodes on one PostgreSQL database receive two outlets' versions of the same story
at the same moment; they must cluster them as one node would, so that each rule
alerts once per story.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from monitor.config import Settings, resolve_paths
from monitor.daemon import Daemon
from monitor.rules.load import load_rules
from monitor.store import BatchOutcome, Store
from tests.conftest import RULES, SEEDS, FeedServer
from tests.service_fixtures import rss
from tests.test_daemon import FlakyChannel


def settings(tmp_path: Path, url: str, sources: list[dict[str, Any]]) -> Settings:
    raw = Settings(storage={"url": url}, rules={"paths": [str(RULES)]},  # type: ignore[arg-type]
                   sources=sources, defaults={"max_age": "off"})  # type: ignore[arg-type]
    return resolve_paths(raw, tmp_path)


def outcome(url: str) -> tuple[dict[str, int], int]:
    """Outbox rows per kind, and how many stories both outlets told."""
    engine = sa.create_engine(Store(url).url)
    with engine.connect() as conn:
        kinds = dict(conn.execute(sa.text("SELECT kind, count(*) FROM outbox GROUP BY kind"))
                     .all())
        shared = conn.execute(sa.text(
            "SELECT count(*) FROM (SELECT story_id FROM articles GROUP BY story_id"
            " HAVING count(DISTINCT source) = 2) AS s")).scalar_one()
    engine.dispose()
    return {k: int(v) for k, v in kinds.items()}, int(shared)


class SlowStore(Store):
    """A database whose writes take a while: a node that assigned stories without
    waiting for the other's commit would go unnoticed with fast writes."""

    def save_batch(self, *args: Any, **kwargs: Any) -> BatchOutcome:
        time.sleep(0.3)
        return super().save_batch(*args, **kwargs)


def test_two_nodes_given_two_outlets_versions_at_once_make_one_story_and_one_alert(
    tmp_path: Path, feed_server: FeedServer, postgres_url: str
) -> None:
    wire = {"name": "seed-wire", "url": feed_server.serve(
        "/wire.xml", (SEEDS / "feeds" / "wire.xml").read_bytes())}
    observer = {"name": "baltic-observer", "url": feed_server.serve(
        "/outlet.atom", (SEEDS / "feeds" / "outlet.atom").read_bytes(),
        content_type="application/atom+xml")}
    rules = load_rules([RULES])
    one_node = f"sqlite:///{tmp_path / 'one.db'}"

    async def single() -> None:
        async with httpx.AsyncClient() as client:
            daemon = Daemon(settings(tmp_path, one_node, [wire, observer]), rules,
                            Store(one_node), client, {"console": FlakyChannel("console", 0)})
            await daemon.start()
            try:
                await daemon.run_once()
            finally:
                await daemon.close()

    async def two_nodes() -> None:
        async with httpx.AsyncClient() as client:
            a = Daemon(settings(tmp_path, postgres_url, [wire]), rules,
                       SlowStore(postgres_url), client, {"console": FlakyChannel("console", 0)})
            b = Daemon(settings(tmp_path, postgres_url, [observer]), rules,
                       SlowStore(postgres_url), client, {"console": FlakyChannel("console", 0)})
            await a.start()
            await b.start()
            # Hold the story lock while both nodes fetch, so that both have their new
            # articles in hand at the same moment before either may assign a story.
            holder = Store(postgres_url).open()
            holder.story_lock.acquire()
            try:
                polls = asyncio.gather(a.run_once(), b.run_once())
                while len(feed_server.requests) < 2:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.5)  # both parse, then wait for the lock
                await asyncio.to_thread(holder.story_lock.release)
                await polls
            finally:
                holder.close()
                await a.close()
                await b.close()

    asyncio.run(single())
    feed_server.requests.clear()
    asyncio.run(two_nodes())
    expected_kinds, expected_shared = outcome(one_node)
    kinds, shared = outcome(postgres_url)
    assert expected_shared >= 1  # the seed story is told by both outlets
    assert (kinds, shared) == (expected_kinds, expected_shared)


def test_two_nodes_given_one_article_by_two_sources_at_once_store_it_once_and_a_copy(
    tmp_path: Path, feed_server: FeedServer, postgres_url: str
) -> None:
    # The same link in two feeds (their guids differ): one article, whichever node
    # stores it first; the other node finds it when its turn comes and keeps a copy.
    title = "Biden authorises Ukraine to strike targets inside Russia with ATACMS missiles"
    wire = {"name": "seed-wire", "url": feed_server.serve("/wire.xml", rss(title))}
    agency = {"name": "agency", "url": feed_server.serve(
        "/agency.xml", rss(title).replace(b"<guid>", b"<guid>agency-"))}
    rules = load_rules([RULES])

    async def two_nodes() -> None:
        async with httpx.AsyncClient() as client:
            nodes = [Daemon(settings(tmp_path, postgres_url, [source]), rules,
                            SlowStore(postgres_url), client,
                            {"console": FlakyChannel("console", 0)})
                     for source in (wire, agency)]
            for node in nodes:
                await node.start()
            holder = Store(postgres_url).open()
            holder.story_lock.acquire()
            try:
                polls = asyncio.gather(*(node.run_once() for node in nodes))
                while len(feed_server.requests) < 2:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.5)  # both recognise the article as new, then wait
                await asyncio.to_thread(holder.story_lock.release)
                await polls
            finally:
                holder.close()
                for node in nodes:
                    await node.close()

    asyncio.run(two_nodes())
    engine = sa.create_engine(Store(postgres_url).url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT source, duplicate_of IS NOT NULL FROM articles ORDER BY id")).all()
        alerted = conn.execute(sa.text(
            "SELECT DISTINCT a.source FROM outbox o JOIN articles a ON a.id = o.article_id"
        )).scalars().all()
    engine.dispose()
    assert [copy for _, copy in rows] == [False, True]
    assert alerted == [rows[0][0]]  # only the article alerts, never its copy
