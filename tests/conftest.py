"""Shared fixtures: a real HTTP feed server on 127.0.0.1, store URLs for every back-end."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from monitor.channel_settings import ConsoleChannelSettings
from monitor.channels.console import ConsoleChannel
from monitor.config import Settings
from monitor.daemon import CycleReport, Daemon
from monitor.rules.load import load_rules
from monitor.store import Store

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
RULES = REPO / "rules"
POSTGRES_URL = os.environ.get("NEWSMON_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    chunk_delay: float = 0.0  # seconds between 1-byte chunks: a trickling server
    delay: float = 0.0  # seconds before answering a POST


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes = b""
    at: float = field(default_factory=time.monotonic)  # when it arrived


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early (caps, deadlines) are what the tests provoke


class FeedServer:
    """A real HTTP server in a thread, serving programmable routes and recording requests."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.scripts: dict[str, list[Route]] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0  # most GETs in progress at once
        self.connections = 0  # accepted so far
        self.open_connections = 0  # accepted and not yet closed by the client
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with server.lock:
                    server.connections += 1
                    server.open_connections += 1

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    with server.lock:
                        server.open_connections -= 1

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                server.requests.append(Request(self.path, dict(self.headers.items()), body))
                route = server.next_route(self.path)
                if route.delay:
                    time.sleep(route.delay)
                self.send_response(route.status)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def do_GET(self) -> None:
                with server.lock:
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    self._get()
                finally:
                    with server.lock:
                        server.active -= 1

            def _get(self) -> None:
                server.requests.append(Request(self.path, dict(self.headers.items())))
                route = server.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self.send_response(304)
                    self.send_header("ETag", route.etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                if route.etag:
                    self.send_header("ETag", route.etag)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if route.chunk_delay:
                    for byte in route.body:
                        try:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        except OSError:
                            return
                        time.sleep(route.chunk_delay)
                else:
                    try:
                        self.wfile.write(route.body)
                    except OSError:
                        return

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, body: bytes, **options: object) -> str:
        self.routes[path] = Route(body=body, **options)  # type: ignore[arg-type]
        return self.url(path)

    def script(self, path: str, *responses: Route) -> None:
        """Answer the next POSTs to ``path`` with these, then with ``routes[path]`` (or 200)."""
        self.scripts.setdefault(path, []).extend(responses)

    def next_route(self, path: str) -> Route:
        queued = self.scripts.get(path)
        if queued:
            return queued.pop(0)
        return self.routes.get(path) or Route(body=b"ok", content_type="text/plain")

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


@contextmanager
def running_feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with running_feed_server() as server:
        yield server


def run_cycles(settings: Settings, out: io.StringIO | None = None,
               cycles: int = 1) -> list[CycleReport]:
    """Run the whole daemon in-process for ``cycles`` of ``run --once``, alerts to the
    console channel writing to ``out``."""
    channel = ConsoleChannel("console", ConsoleChannelSettings(type="console"),
                             out if out is not None else io.StringIO())

    async def go() -> list[CycleReport]:
        async with httpx.AsyncClient() as client:
            daemon = Daemon(settings, load_rules(settings.rules.paths),
                            Store(settings.storage.url), client, {"console": channel})
            await daemon.start()
            try:
                return [await daemon.run_once() for _ in range(cycles)]
            finally:
                await daemon.close()

    return asyncio.run(go())


def _postgres_available() -> bool:
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each back-end; PostgreSQL gets its own schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty schema on the real PostgreSQL (several nodes share one database)."""
    with postgres_schema() as url:
        yield url


@contextmanager
def postgres_schema() -> Iterator[str]:
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (CI must start it)")
        pytest.skip("PostgreSQL is not reachable")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()
