"""The running daemon seen from outside: /metrics scraped and parsed, /healthz judged."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.channel_settings import ConsoleChannelSettings
from monitor.channels.console import ConsoleChannel
from monitor.config import Settings, resolve_paths
from monitor.daemon import Daemon
from monitor.observe.endpoint import Endpoint, Response
from monitor.observe.healthz import HealthFacts, assess
from monitor.rules.load import load_rules
from monitor.store import Store
from tests.conftest import REPO, RULES, SEEDS, FeedServer
from tests.tcp_proxy import TcpProxy

SEED_HEADLINE = "Biden authorises Ukraine to strike Russia with US long-range missiles"


@dataclass
class Running:
    daemon: Daemon
    base: str
    out: io.StringIO
    initial: dict[tuple[str, tuple[tuple[str, str], ...]], float]  # before the first poll


def make_settings(tmp_path: Path, store_url: str, sources: list[dict[str, Any]],
                  **sections: Any) -> Settings:
    raw = Settings(
        storage={"url": store_url},  # type: ignore[arg-type]
        rules={"paths": [str(RULES)]},  # type: ignore[arg-type]
        sources=sources,  # type: ignore[arg-type]
        defaults={"max_age": "off", "interval": "1h"},  # type: ignore[arg-type]
        http={"enabled": True, "port": 0},  # type: ignore[arg-type]
        **sections,
    )
    return resolve_paths(raw, tmp_path)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Running]:
    out = io.StringIO()
    channel = ConsoleChannel("console", ConsoleChannelSettings(type="console"), out)
    async with httpx.AsyncClient() as client:
        daemon = Daemon(settings, load_rules(settings.rules.paths), Store(settings.storage.url),
                        client, {"console": channel})
        await daemon.start()
        initial = parse(daemon.metrics.render().decode())
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await eventually(lambda: _true(daemon.endpoint_port is not None))
            yield Running(daemon, f"http://127.0.0.1:{daemon.endpoint_port}", out, initial)
        finally:
            stop.set()
            await task
            await daemon.close()


async def _true(value: bool) -> bool:
    return value


async def eventually(condition: Callable[[], Awaitable[bool]], tries: int = 200) -> None:
    """Wait for the daemon to get somewhere (not a timing assertion: it only bounds a hang)."""
    for _ in range(tries):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the daemon never got there")


async def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def wire(feed_server: FeedServer) -> dict[str, Any]:
    url = feed_server.serve("/wire.xml", (SEEDS / "feeds" / "wire.xml").read_bytes())
    return {"name": "seed-wire", "url": url}


def test_metrics_count_a_poll_its_articles_hits_and_deliveries(
    tmp_path: Path, feed_server: FeedServer, wire: dict[str, Any]
) -> None:
    broken = {"name": "broken", "url": feed_server.serve("/broken", b"oops", status=500)}
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'state.db'}", [wire, broken])

    async def go() -> tuple[dict[Any, float], dict[Any, float]]:
        async with running(settings) as service:
            before = service.initial

            async def delivered() -> bool:
                samples = await scrape(service.base)
                return (value(samples, "newsmon_polls_total", source="broken", outcome="error")
                        == 1 and value(samples, "newsmon_outbox_alerts", channel="console",
                                       status="pending") == 0
                        and value(samples, "newsmon_alerts_sent_total", channel="console",
                                  via="message") > 0)

            await eventually(delivered)
            return before, await scrape(service.base)

    before, after = asyncio.run(go())
    # Every known series exists from the start, at zero.
    assert value(before, "newsmon_rule_hits_total", rule="north-korean-troops") == 0
    assert ("newsmon_rule_hits_total", (("rule", "north-korean-troops"),)) in before
    assert value(after, "newsmon_polls_total", source="seed-wire", outcome="ok") == 1
    assert value(after, "newsmon_new_articles_total", source="seed-wire") == 12
    assert value(after, "newsmon_fetch_errors_total", source="broken") == 1
    assert value(after, "newsmon_fetch_errors_total", source="seed-wire") == 0
    hits = value(after, "newsmon_rule_hits_total", rule="long-range-strike-policy")
    assert hits >= 2
    sent = value(after, "newsmon_alerts_sent_total", channel="console", via="message")
    assert sent >= 1
    assert value(after, "newsmon_alerts_failed_total", channel="console") == 0
    assert value(after, "newsmon_poll_duration_seconds_count", source="seed-wire") == 1
    assert value(after, "newsmon_delivery_duration_seconds_count", channel="console") == sent
    assert value(after, "newsmon_alert_delay_seconds_count", channel="console") == sent
    assert value(after, "newsmon_store_up") == 1
    assert value(after, "newsmon_last_poll_timestamp_seconds") > 0


def test_the_outbox_depth_is_read_from_the_store_at_scrape_time(
    tmp_path: Path, wire: dict[str, Any]
) -> None:
    # A digest-only channel: the alerts wait in the outbox as "held".
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'state.db'}", [wire], channels={
        "console": {"type": "console", "digest": "0 8 * * *", "immediate": False}})

    async def go() -> float:
        async with running(settings) as service:
            async def held() -> bool:
                samples = await scrape(service.base)
                return value(samples, "newsmon_outbox_alerts", channel="console",
                             status="held") > 0

            await eventually(held)
            samples = await scrape(service.base)
            return value(samples, "newsmon_outbox_alerts", channel="console", status="held")

    held = asyncio.run(go())
    store = Store(settings.storage.url).open()
    counts = {c.status: c.count for c in store.outbox_counts.counts()}
    store.close()
    assert held == counts["held"]


def test_healthz_is_ok_while_the_daemon_runs_and_the_endpoint_stops_with_it(
    tmp_path: Path, wire: dict[str, Any]
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'state.db'}", [wire])

    async def go() -> tuple[httpx.Response, httpx.Response, httpx.Response, str]:
        async with running(settings) as service:
            async def polled() -> bool:
                samples = await scrape(service.base)
                return value(samples, "newsmon_last_poll_timestamp_seconds") > 0

            await eventually(polled)
            async with httpx.AsyncClient() as http:
                health = await http.get(f"{service.base}/healthz")
                missing = await http.get(f"{service.base}/nothing")
                posted = await http.post(f"{service.base}/metrics")
            base = service.base
        return health, missing, posted, base

    health, missing, posted, base = asyncio.run(go())
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["problems"] == []
    assert body["scheduler"] == {"running": True}
    assert body["store"] == {"reachable": True, "error": None}
    assert body["last_poll"]["age_seconds"] >= 0
    assert body["last_poll"]["stale_after_seconds"] == 2 * 3600 + 60
    assert missing.status_code == 404
    assert posted.status_code == 405
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz")


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_healthz_says_503_and_why_when_the_store_is_unreachable(
    tmp_path: Path, store_url: str, wire: dict[str, Any]
) -> None:
    proxy = TcpProxy("127.0.0.1", 5432)
    assert "@127.0.0.1:5432/" in store_url
    through_proxy = store_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    settings = make_settings(tmp_path, through_proxy, [wire])

    async def go() -> tuple[httpx.Response, httpx.Response, dict[Any, float]]:
        async with running(settings) as service:
            async with httpx.AsyncClient() as http:
                up = await http.get(f"{service.base}/healthz")
                proxy.cut()
                down = await http.get(f"{service.base}/healthz")
            return up, down, await scrape(service.base)

    up, down, samples = asyncio.run(go())
    assert up.status_code == 200
    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "unhealthy"
    assert body["store"]["reachable"] is False
    assert body["store"]["error"]
    assert body["problems"][0].startswith("the store does not answer: ")
    assert value(samples, "newsmon_store_up") == 0


NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_healthz_reports_a_stale_poll_and_a_stopped_scheduler() -> None:
    stale = assess(HealthFacts(scheduler_running=True, store_error=None,
                               running_since=NOW - timedelta(hours=5),
                               last_poll=NOW - timedelta(hours=3),
                               stale_after=timedelta(hours=2), now=NOW))
    assert stale.status_code == 503
    assert stale.body["problems"] == ["the last poll finished 10800s ago (more than 7200s)"]
    never = assess(HealthFacts(scheduler_running=False, store_error=None,
                               running_since=NOW - timedelta(hours=3), last_poll=None,
                               stale_after=timedelta(hours=2), now=NOW))
    assert never.body["problems"] == [
        "the scheduler is not running",
        "no poll has finished in the 10800s since start (more than 7200s)"]
    fresh = assess(HealthFacts(scheduler_running=True, store_error=None,
                               running_since=NOW - timedelta(minutes=1), last_poll=None,
                               stale_after=timedelta(hours=2), now=NOW))
    assert fresh.healthy


@pytest.mark.slow
def test_a_daemon_process_serves_metrics_on_the_port_it_logs_and_stops_serving_on_sigterm(
    tmp_path: Path, wire: dict[str, Any]
) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///state.db"\n[rules]\npaths = ["{RULES}"]\n'
                      '[defaults]\nmax_age = "off"\n[http]\nenabled = true\nport = 0\n'
                      f'[[sources]]\nname = "seed-wire"\nurl = "{wire["url"]}"\n')
    process = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO,
                               env={k: v for k, v in os.environ.items()
                                    if not k.startswith(("NEWSMON_", "JOURNAL_", "NOTIFY_"))})
    assert process.stderr is not None
    try:
        port = None
        for line in process.stderr:  # bounded by the test's timeout if it never comes
            found = re.search(rb"http://127\.0\.0\.1:(\d+)/healthz", line)
            if found:
                port = int(found.group(1))
                break
        assert port is not None, "the daemon never logged its port"
        base = f"http://127.0.0.1:{port}"
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for _ in range(200):
            samples = parse(httpx.get(f"{base}/metrics").text)
            if value(samples, "newsmon_polls_total", source="seed-wire", outcome="ok"):
                break
            time.sleep(0.05)
        assert value(samples, "newsmon_new_articles_total", source="seed-wire") == 12
        assert httpx.get(f"{base}/healthz").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/healthz")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()


def test_the_endpoint_answers_head_refuses_garbage_and_is_not_held_up_by_a_silent_client(
) -> None:
    async def ok() -> Response:
        return Response(200, b"fine\n")

    async def go() -> tuple[bytes, bytes, bytes]:
        endpoint = Endpoint("127.0.0.1", 0, {"/healthz": ok})
        await endpoint.start()
        try:
            silent = await asyncio.open_connection("127.0.0.1", endpoint.port)  # sends nothing
            head = await raw(endpoint.port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            garbage = await raw(endpoint.port, b"\x16\x03\x01 not http\r\n\r\n")
            get = await raw(endpoint.port, b"GET /healthz?verbose=1 HTTP/1.0\r\n\r\n")
            silent[1].close()
        finally:
            await endpoint.stop()
        return head, garbage, get

    async def raw(port: int, request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        answer = await reader.read()
        writer.close()
        return answer

    head, garbage, get = asyncio.run(go())
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 5\r\n" in head
    assert head.endswith(b"\r\n\r\n")  # the head only
    assert garbage.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert get.startswith(b"HTTP/1.1 200 OK\r\n")
    assert get.endswith(b"\r\n\r\nfine\n")
