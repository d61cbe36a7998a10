"""The benchmark's own servers: the feeds over HTTP, and an SMTP sink.

``FeedServer`` is a small HTTP/1.1 server (keep-alive, GET only) on an asyncio
loop in a thread, listening on several loopback addresses (127.0.0.2, ...) so the
feeds live on many "hosts" as they do on the internet and per-host limits apply
as they would there. Each feed's body is serialised and gzipped once per change;
a request carrying the feed's ETag (``If-None-Match``) or a date not older than
its Last-Modified (``If-Modified-Since``, without ``If-None-Match``) gets a 304.
Every response is counted by status.

``MailSink`` is aiosmtpd on 127.0.0.1, counting the messages and sessions it
receives.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from corpus import Corpus, Feed


@dataclass(frozen=True)
class Body:
    raw: bytes
    gzipped: bytes
    etag: str
    last_modified: str
    modified_at: datetime
    content_type: str


class FeedServer:
    def __init__(self, hosts: list[str]) -> None:
        self.hosts = hosts
        self.port = 0
        self.bodies: dict[str, Body] = {}
        self.statuses: Counter[int] = Counter()
        self.bytes_sent = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.AbstractServer] = []

    def publish(self, corpus: Corpus, feeds: list[Feed] | None = None) -> None:
        """Serialise (and gzip) the given feeds, or all, as they are now."""
        for feed in feeds if feeds is not None else corpus.feeds:
            raw = corpus.body(feed)
            digest = hashlib.sha1(raw).hexdigest()[:20]
            kind = "application/atom+xml" if feed.atom else "application/rss+xml"
            self.bodies[feed.path] = Body(raw, gzip.compress(raw, 6), f'"{digest}"',
                                          format_datetime(feed.updated, usegmt=True),
                                          feed.updated, f"{kind}; charset=utf-8")

    def url(self, feed: Feed) -> str:
        return f"http://{feed.host}:{self.port}{feed.path}"

    def reset_counts(self) -> None:
        self.statuses = Counter()
        self.bytes_sent = 0
        self.connections = 0

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result()

    async def _listen(self) -> None:
        # The same port on every address: the first bind picks it.
        for host in self.hosts:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, self.port))
            self.port = sock.getsockname()[1]
            sock.listen(512)
            self._servers.append(await asyncio.start_server(self._serve, sock=sock))

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()
        asyncio.run_coroutine_threadsafe(close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                response = self._respond(method, target, headers)
                writer.write(response)
                await writer.drain()
                self.bytes_sent += len(response)
                if headers.get("connection", "").lower() == "close" or version == "HTTP/1.0":
                    return
        finally:
            writer.close()

    def _respond(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        body = self.bodies.get(target.split("?", 1)[0])
        if method != "GET" or body is None:
            self.statuses[404] += 1
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        validators = (f"ETag: {body.etag}\r\nLast-Modified: {body.last_modified}\r\n"
                      "Cache-Control: max-age=300\r\nVary: Accept-Encoding\r\n")
        if _not_modified(body, headers):
            self.statuses[304] += 1
            return f"HTTP/1.1 304 Not Modified\r\n{validators}\r\n".encode()
        self.statuses[200] += 1
        gzip_ok = "gzip" in headers.get("accept-encoding", "")
        payload = body.gzipped if gzip_ok else body.raw
        encoding = "Content-Encoding: gzip\r\n" if gzip_ok else ""
        return (f"HTTP/1.1 200 OK\r\nContent-Type: {body.content_type}\r\n{encoding}"
                f"Content-Length: {len(payload)}\r\n{validators}\r\n").encode() + payload


def _not_modified(body: Body, headers: dict[str, str]) -> bool:
    if "if-none-match" in headers:
        return body.etag in [t.strip() for t in headers["if-none-match"].split(",")]
    since = headers.get("if-modified-since")
    if not since:
        return False
    try:
        return parsedate_to_datetime(since) >= body.modified_at
    except (TypeError, ValueError):
        return False


class _Counting:
    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages += 1
        return "250 OK"


class MailSink:
    def __init__(self) -> None:
        self.handler = _Counting()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._controller: Any = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> int:
        return self.handler.messages

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
