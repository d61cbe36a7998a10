"""Fetching against a real HTTP server on 127.0.0.1: conditional GET and hard limits."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from monitor.config import FetchSettings
from monitor.errors import FetchError, FetchFailure
from monitor.fetch import Fetcher, Validators, _is_private, build_client, parse_retry_after
from monitor.records import FetchResult
from tests.conftest import FeedServer, running_feed_server

RSS = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


def fetch(url: str, validators: Validators | None = None, **settings: Any) -> FetchResult:
    async def go() -> FetchResult:
        fetch_settings = FetchSettings(**settings)
        async with build_client(fetch_settings) as client:
            fetcher = Fetcher(client, fetch_settings)
            return await fetcher.fetch("src", url, validators or Validators())

    return asyncio.run(go())


def test_an_unchanged_feed_costs_a_304(feed_server: FeedServer) -> None:
    modified = "Tue, 17 Nov 2026 10:00:00 GMT"
    url = feed_server.serve("/feed", RSS, etag='"v1"', headers={"Last-Modified": modified})
    first = fetch(url)
    assert first.body == RSS
    assert first.etag == '"v1"'
    second = fetch(url, Validators(first.etag, first.last_modified))
    assert second.not_modified
    assert second.body == b""
    sent = feed_server.requests_to("/feed")[1].headers
    assert sent["If-None-Match"] == '"v1"'
    assert sent["If-Modified-Since"] == modified


def test_the_user_agent_names_newsmon(feed_server: FeedServer) -> None:
    fetch(feed_server.serve("/feed", RSS))
    assert "newsmon" in feed_server.requests_to("/feed")[0].headers["User-Agent"]


def test_a_server_error_is_a_fetch_error_naming_the_source_and_status(
    feed_server: FeedServer,
) -> None:
    url = feed_server.serve("/feed", b"oops", status=500)
    with pytest.raises(FetchError) as caught:
        fetch(url)
    assert caught.value.kind is FetchFailure.HTTP_STATUS
    assert "HTTP 500" in str(caught.value)
    assert "src" in str(caught.value)
    assert url in str(caught.value)


def test_retry_after_on_429_is_reported(feed_server: FeedServer) -> None:
    url = feed_server.serve("/feed", b"slow down", status=429, headers={"Retry-After": "120"})
    with pytest.raises(FetchError) as caught:
        fetch(url)
    assert caught.value.retry_after == 120


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("30") == 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412400.0) == 80
    assert parse_retry_after("soon") is None


def test_a_body_over_the_cap_is_cut_off(feed_server: FeedServer) -> None:
    url = feed_server.serve("/big", b"x" * 200_000)
    with pytest.raises(FetchError) as caught:
        fetch(url, max_bytes=100_000)
    assert caught.value.kind is FetchFailure.TOO_LARGE


def test_a_gzip_bomb_is_cut_off_at_the_cap_not_inflated(feed_server: FeedServer) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB in ~64 KiB
    url = feed_server.serve("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError) as caught:
        fetch(url, max_bytes=1024 * 1024)
    assert caught.value.kind is FetchFailure.TOO_LARGE


def test_a_gzip_feed_is_decompressed(feed_server: FeedServer) -> None:
    url = feed_server.serve("/gz", gzip.compress(RSS), headers={"Content-Encoding": "gzip"})
    assert fetch(url).body == RSS


def test_stacked_content_encodings_are_refused(feed_server: FeedServer) -> None:
    body = gzip.compress(gzip.compress(RSS))
    url = feed_server.serve("/gz2", body, headers={"Content-Encoding": "gzip, gzip"})
    with pytest.raises(FetchError, match="stacked"):
        fetch(url)


def test_a_trickling_server_hits_the_total_deadline(feed_server: FeedServer) -> None:
    url = feed_server.serve("/slow", RSS, chunk_delay=0.2)  # ~16 s for the whole body
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch(url, total_timeout=timedelta(seconds=1), read_timeout=timedelta(seconds=5))
    assert caught.value.kind is FetchFailure.TIMEOUT
    assert time.monotonic() - started < 5


def test_a_redirect_loop_is_refused(feed_server: FeedServer) -> None:
    feed_server.serve("/a", b"", status=302, headers={"Location": "/b"})
    feed_server.serve("/b", b"", status=302, headers={"Location": "/a"})
    with pytest.raises(FetchError, match="redirect loop"):
        fetch(feed_server.url("/a"))


def test_redirects_are_followed_up_to_the_limit(feed_server: FeedServer) -> None:
    feed_server.serve("/old", b"", status=301, headers={"Location": "/new"})
    feed_server.serve("/new", RSS)
    assert fetch(feed_server.url("/old")).body == RSS
    for hop in range(7):
        feed_server.serve(f"/hop{hop}", b"", status=302, headers={"Location": f"/hop{hop + 1}"})
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetch(feed_server.url("/hop0"))


def test_a_redirect_to_another_scheme_is_refused(feed_server: FeedServer) -> None:
    feed_server.serve("/ftp", b"", status=302, headers={"Location": "ftp://example.org/feed"})
    with pytest.raises(FetchError, match="only http"):
        fetch(feed_server.url("/ftp"))


@pytest.fixture
def jump_into_loopback(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A redirect from "localhost" (playing a public host) into 127.0.0.1 (the private
    network here); returns the redirecting URL. The target serves /intranet."""
    async def private(url: str) -> bool:
        return urlsplit(url).hostname == "127.0.0.1"

    monkeypatch.setattr("monitor.fetch._is_private", private)
    port = feed_server.base.rsplit(":", 1)[1]
    feed_server.serve("/jump", b"", status=302,
                      headers={"Location": f"http://127.0.0.1:{port}/intranet"})
    feed_server.serve("/intranet", RSS)
    return f"http://localhost:{port}/jump"


def test_a_public_feed_may_not_redirect_into_a_private_network(
    feed_server: FeedServer, jump_into_loopback: str
) -> None:
    with pytest.raises(FetchError, match="private network"):
        fetch(jump_into_loopback)
    assert feed_server.requests_to("/intranet") == []


def test_allow_private_permits_a_redirect_into_a_private_network(
    jump_into_loopback: str,
) -> None:

    async def go() -> bytes:
        settings = FetchSettings()
        async with build_client(settings) as client:
            result = await Fetcher(client, settings).fetch(
                "src", jump_into_loopback, Validators(), allow_private=True)
            return result.body

    assert asyncio.run(go()) == RSS


@pytest.mark.parametrize(
    ("url", "private"),
    [("http://127.0.0.1/x", True), ("http://10.1.2.3/x", True), ("http://192.168.0.9/", True),
     ("http://172.16.0.1/", True), ("http://169.254.169.254/latest", True),
     ("http://[::1]/", True), ("http://8.8.8.8/", False), ("http://93.184.215.14/", False)],
)
def test_private_addresses_are_recognised(url: str, private: bool) -> None:
    assert asyncio.run(_is_private(url)) is private


def test_an_unreachable_server_is_a_connect_error() -> None:
    with pytest.raises(FetchError) as caught:
        fetch("http://127.0.0.1:9/feed", connect_timeout=timedelta(seconds=2))
    assert caught.value.kind in (FetchFailure.CONNECT, FetchFailure.TIMEOUT)


def test_local_paths_and_file_urls_are_read_with_the_same_cap(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(RSS)
    assert fetch(str(feed)).body == RSS
    assert fetch(feed.as_uri()).body == RSS
    with pytest.raises(FetchError) as caught:
        fetch(str(feed), max_bytes=10)
    assert caught.value.kind is FetchFailure.TOO_LARGE


def test_a_missing_local_file_is_reported_as_not_found(tmp_path: Path) -> None:
    with pytest.raises(FetchError) as caught:
        fetch(str(tmp_path / "nope.xml"))
    assert caught.value.kind is FetchFailure.NOT_FOUND


def test_requests_to_one_host_are_limited(feed_server: FeedServer) -> None:
    urls = [feed_server.serve(f"/slow{i}", RSS[:8], chunk_delay=0.05) for i in range(6)]

    async def go() -> None:
        settings = FetchSettings(per_host=2)
        async with build_client(settings) as client:
            fetcher = Fetcher(client, settings)
            await asyncio.gather(*(fetcher.fetch("src", u, Validators()) for u in urls))

    asyncio.run(go())
    assert feed_server.max_active == 2


def test_a_feed_that_is_not_redirected_is_fetched_without_a_dns_lookup_of_its_own(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whether a source's own address is private matters only once it redirects: a poll
    that is answered at once costs no lookup besides the connection's (none at all on a
    kept-alive connection)."""
    port = feed_server.base.rsplit(":", 1)[1]
    url = urlsplit(feed_server.serve("/feed", RSS, etag='"v1"'))._replace(
        netloc=f"localhost:{port}").geturl()
    looked_up: list[str] = []

    async def go() -> list[FetchResult]:
        loop = asyncio.get_running_loop()
        resolve = loop.getaddrinfo

        async def counting(host: Any, *args: Any, **kwargs: Any) -> Any:
            looked_up.append(host.decode() if isinstance(host, bytes) else host)
            return await resolve(host, *args, **kwargs)

        monkeypatch.setattr(loop, "getaddrinfo", counting)
        settings = FetchSettings()
        async with build_client(settings) as client:
            fetcher = Fetcher(client, settings)
            return [await fetcher.fetch("src", url, Validators()),
                    await fetcher.fetch("src", url, Validators(etag='"v1"'))]

    first, second = asyncio.run(go())
    assert first.body == RSS
    assert second.not_modified
    assert looked_up == ["localhost"]  # the one connection's, kept alive for the second


def _open_connections_settle(servers: list[FeedServer], at_most: int) -> None:
    """Wait (up to two seconds) until the client keeps at most ``at_most`` connections
    open to ``servers``: a server sees a close a moment after the client makes it."""
    deadline = time.monotonic() + 2
    while sum(s.open_connections for s in servers) > at_most and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_host_s_connection_is_kept_for_its_next_feed(feed_server: FeedServer) -> None:
    urls = [feed_server.serve(f"/feed{i}", RSS) for i in range(3)]

    async def go() -> None:
        settings = FetchSettings()
        async with build_client(settings) as client:
            fetcher = Fetcher(client, settings)
            for url in urls:
                await fetcher.fetch("src", url, Validators())

    asyncio.run(go())
    assert feed_server.connections == 1


def test_no_more_idle_connections_are_kept_than_sources_are_polled_at_a_time() -> None:
    """httpcore's pool looks at every kept connection whenever a request starts or ends;
    idle ones beyond ``concurrency`` are closed (the oldest first)."""
    with contextlib.ExitStack() as stack:
        hosts = [stack.enter_context(running_feed_server()) for _ in range(5)]

        async def go() -> list[int]:
            settings = FetchSettings(concurrency=2)
            async with build_client(settings) as client:
                fetcher = Fetcher(client, settings)
                for host in hosts:
                    await fetcher.fetch("src", host.serve("/feed", RSS), Validators())
                await asyncio.to_thread(_open_connections_settle, hosts, 2)
                return [host.open_connections for host in hosts]

        assert asyncio.run(go()) == [0, 0, 0, 1, 1]
