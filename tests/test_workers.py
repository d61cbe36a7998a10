"""The worker pool: CPU work in processes, each job under a deadline that can stop it."""

from __future__ import annotations

import asyncio
import os
import pickle
import time

import pytest

from monitor.errors import ParseError
from monitor.parse import parse_feed
from monitor.workers import JobTimeout, WorkerLost, WorkerPool
from tests.conftest import SEEDS

# Not valid UTF-8 and undeclared, so the fast parser leaves it to feedparser, which
# takes about 8 s over 20,000 attributes on one element (HAZARDS.md): a real runaway.
SLOW_FEED = (b"<rss version='2.0'><channel><title>Caf\xe9 news</title><item><title "
             + b" ".join(b'a%d="x"' % i for i in range(20_000))
             + b">t</title></item></channel></rss>")


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_a_job_returns_its_result_and_raises_its_error_with_its_fields() -> None:
    async def go() -> None:
        async with WorkerPool(1) as pool:
            feed = await pool.run(10, parse_feed, "seed-wire", "wire.xml",
                                  (SEEDS / "feeds" / "wire.xml").read_bytes())
            assert feed.entries[0].title.startswith("Biden authorises Ukraine")
            with pytest.raises(ParseError) as caught:
                await pool.run(10, parse_feed, "empty-one", "http://x.example/feed", b"")
            assert caught.value.source == "empty-one"
            assert caught.value.url == "http://x.example/feed"
            assert str(caught.value) == ("source empty-one (http://x.example/feed):"
                                         " not a feed: the body is empty")

    run(go())


def test_a_job_past_its_deadline_is_stopped_and_its_worker_replaced() -> None:
    async def go() -> None:
        async with WorkerPool(1) as pool:
            first_pid = await pool.run(10, os.getpid)
            with pytest.raises(JobTimeout, match=r"stopped after 0\.5s"):
                await pool.run(0.5, parse_feed, "slow", "u", SLOW_FEED)
            second_pid = await pool.run(10, os.getpid)
            assert second_pid != first_pid  # the runaway's worker was killed, a new one serves
            assert not _alive(first_pid)

    run(go())


def test_a_runaway_job_does_not_disturb_the_jobs_beside_it() -> None:
    wire = (SEEDS / "feeds" / "wire.xml").read_bytes()

    async def go() -> None:
        async with WorkerPool(2) as pool:
            slow = asyncio.ensure_future(pool.run(1, parse_feed, "slow", "u", SLOW_FEED))
            feeds = [await pool.run(10, parse_feed, "seed-wire", "w", wire) for _ in range(5)]
            assert all(len(f.entries) == len(feeds[0].entries) > 0 for f in feeds)
            with pytest.raises(JobTimeout):
                await slow

    run(go())


def test_the_deadline_counts_from_when_a_worker_takes_the_job() -> None:
    async def go() -> None:
        async with WorkerPool(1) as pool:
            # Three 0.4 s jobs on one worker, each with a 1 s deadline: the last one
            # waits 0.8 s for the worker, which does not count against it.
            results = await asyncio.gather(*(pool.run(1, time.sleep, 0.4) for _ in range(3)))
            assert results == [None, None, None]

    run(go())


def test_a_worker_killed_from_outside_fails_only_its_job() -> None:
    async def go() -> None:
        async with WorkerPool(1) as pool:
            pid = await pool.run(10, os.getpid)
            job = asyncio.ensure_future(pool.run(30, time.sleep, 20))
            await asyncio.sleep(0.3)
            os.kill(pid, 9)
            with pytest.raises(WorkerLost):
                await job
            assert await pool.run(10, len, b"four") == 4

    run(go())


def test_closing_the_pool_stops_a_running_job_at_once() -> None:
    async def go() -> None:
        pool = WorkerPool(1)
        pid = await pool.run(10, os.getpid)
        job = asyncio.ensure_future(pool.run(60, time.sleep, 60))
        await asyncio.sleep(0.3)
        await pool.close()
        with pytest.raises(WorkerLost):
            await asyncio.wait_for(job, 10)
        assert not _alive(pid)

    run(go())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_parsed_feeds_cross_between_processes_unchanged() -> None:
    feed = parse_feed("seed-wire", "w", (SEEDS / "feeds" / "wire.xml").read_bytes())
    assert pickle.loads(pickle.dumps(feed, protocol=pickle.HIGHEST_PROTOCOL)) == feed


def test_a_killed_fork_server_is_started_again_for_the_next_worker() -> None:
    async def go() -> None:
        async with WorkerPool(1) as pool:
            pid = await pool.run(10, os.getpid)
            server = _parent(pid)
            os.kill(server, 9)
            os.kill(pid, 9)
            with pytest.raises(WorkerLost):
                await pool.run(10, os.getpid)
            again = await pool.run(10, os.getpid)
            assert _parent(again) != server

    run(go())


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])
