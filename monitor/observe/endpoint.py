"""The optional HTTP endpoint: ``GET /healthz`` and ``GET /metrics``, on the event loop.

Served by a few lines of ``asyncio.start_server`` rather than prometheus-client's
thread server, on purpose:

- ``/healthz`` is answered by the same event loop that runs the polls: a hung
  loop does not answer, which is the truth (a server thread would keep saying
  "ok" while nothing runs);
- the store is read (outbox depth, the health ping) through the daemon's one
  database thread, like every other store call, never from a second thread;
- it starts and stops with ``Daemon.run``: nothing is left listening.

Deliberately tiny: GET and HEAD, one request per connection, headers capped,
a deadline on reading the request. Answers never echo the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("newsmon.http")

READ_DEADLINE = 5.0
MAX_HEADER_LINES = 100
MAX_LINE = 8192
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def json(cls, status: int, data: object) -> Response:
        return cls(status, json.dumps(data, indent=2).encode() + b"\n",
                   "application/json; charset=utf-8")


Handler = Callable[[], Awaitable[Response]]


class Endpoint:
    """``routes`` maps a path to the coroutine that answers it."""

    def __init__(self, host: str, port: int, routes: dict[str, Handler]) -> None:
        self._host = host
        self._port = port
        self._routes = routes
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the OS chose for port 0)."""
        if self._server is None:
            raise RuntimeError("the endpoint is not listening")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self._host, self._port,
                                                  limit=MAX_LINE)
        log.info("health and metrics on http://%s:%d/healthz and /metrics", self._host,
                 self.port)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            response, head_only = await self._answer(reader)
            head = (f"HTTP/1.1 {response.status} {REASONS.get(response.status, '')}\r\n"
                    f"Content-Type: {response.content_type}\r\n"
                    f"Content-Length: {len(response.body)}\r\n"
                    "Cache-Control: no-store\r\nConnection: close\r\n\r\n")
            writer.write(head.encode("ascii") + (b"" if head_only else response.body))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away or never finished its request
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[Response, bool]:
        """The response, and whether to send its head only (HEAD)."""
        try:
            request_line = await asyncio.wait_for(self._read_head(reader), READ_DEADLINE)
        except (ValueError, asyncio.LimitOverrunError):
            return Response(400, b"bad request\n"), False
        parts = request_line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return Response(400, b"bad request\n"), False
        method, target = parts[0], parts[1].split("?", 1)[0]
        route = self._routes.get(target)
        if route is None:
            return Response(404, b"not found: try /healthz or /metrics\n"), False
        if method not in ("GET", "HEAD"):
            return Response(405, b"only GET\n"), False
        try:
            return await route(), method == "HEAD"
        except Exception:
            log.exception("http: %s failed", target)
            return Response(500, b"internal error (see the log)\n"), False

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader) -> str:
        """The request line; the headers are read and ignored (nothing here needs them)."""
        request_line = (await reader.readuntil(b"\n")).decode("latin-1").strip()
        for _ in range(MAX_HEADER_LINES):
            if not (await reader.readuntil(b"\n")).strip():
                return request_line
        raise ValueError("too many header lines")
