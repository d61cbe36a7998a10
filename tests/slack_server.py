"""A fake Slack on 127.0.0.1 for channel tests: the Web API's chat.postMessage and webhooks.

A real HTTP server in a thread (like ``conftest.FeedServer``) that answers in
Slack's shapes:

    POST /api/chat.postMessage   JSON or form body, ``Authorization: Bearer <token>``
                                 -> {"ok": true, "channel": ..., "ts": "<increasing>", ...}
                                 (wrong token: invalid_auth; none: not_authed)
    POST /hooks/<anything>       -> 200 "ok"

Like Slack, it refuses messages beyond Block Kit's limits (more than 50 blocks, a
section text over 3,000 characters, an empty text) with ``invalid_blocks``, so a
test passing here does not fail on the real service for that reason.

Every request is recorded (path, headers, parsed body). Failures are scripted:
``fail_next`` queues canned replies (status, headers, body, delay, trickle, drop)
applied to the next requests, whatever their path; ``delay`` makes every answer
wait (a slow Slack that still answers normally). Use the ``slack_server``
fixture -- ``from tests.slack_server import slack_server_fixture  # noqa: F401``
in a test module (importing it under another name than the fixture's keeps
ruff's F811 quiet) -- or ``with SlackServer() as server:``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

TOKEN = "xoxb-1111-2222-test-SECRET-token"
WEBHOOK_PATH = "/hooks/services/T0000/B0000/SECRETpathXYZ"
MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000


@dataclass(frozen=True)
class Canned:
    """One scripted reply: ``body`` as bytes, text, or a dict sent as JSON."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | str | dict[str, Any] = b""
    delay: float = 0.0  # seconds to wait before answering (timeouts)
    trickle: float = 0.0  # seconds between body bytes: a reply too slow to ever finish
    drop: bool = False  # hang up without answering


@dataclass(frozen=True)
class SlackRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up (deadlines) are what some tests provoke


def _parse(raw: bytes, content_type: str) -> dict[str, Any]:
    try:
        if "json" in content_type:
            data = json.loads(raw or b"{}")
            return data if isinstance(data, dict) else {"_": data}
        body: dict[str, Any] = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"_invalid": True}
    if isinstance(body.get("blocks"), str):  # form posts carry blocks as a JSON string
        with contextlib.suppress(json.JSONDecodeError):
            body["blocks"] = json.loads(body["blocks"])
    return body


def block_problem(blocks: object) -> str | None:
    """Why Slack would refuse these blocks (``invalid_blocks``), or ``None``."""
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "more than 50 blocks"
    for block in blocks:
        if not isinstance(block, dict):
            return "a block is not an object"
        texts = [block.get("text")] if "text" in block else block.get("elements", [])
        for text in texts:
            value = text.get("text") if isinstance(text, dict) else None
            if not isinstance(value, str) or not value.strip():
                return f"empty text in a {block.get('type')} block"
            limit = 150 if block.get("type") == "header" else MAX_SECTION_CHARS
            if len(value) > limit:
                return f"a {block.get('type')} text of {len(value)} characters"
    return None


class SlackServer:
    """A fake Slack in a thread: records requests, replays scripted failures."""

    def __init__(self, token: str = TOKEN, channels: set[str] | None = None) -> None:
        self.token = token
        self.channels = channels  # when set, other channels are channel_not_found
        self.requests: list[SlackRequest] = []
        self._failures: deque[Canned] = deque()
        self.delay = 0.0  # seconds every answer waits before it is sent
        self._lock = threading.Lock()
        self._messages = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = _parse(raw, self.headers.get("Content-Type", ""))
                request = SlackRequest(self.path, dict(self.headers.items()), body, raw)
                canned = server._record(request)
                time.sleep(server.delay)
                if canned is None:
                    canned = server._answer(request)
                elif canned.delay:
                    time.sleep(canned.delay)
                self._reply(canned)

            def _reply(self, canned: Canned) -> None:
                if canned.drop:
                    self.close_connection = True
                    return
                body = canned.body
                headers = dict(canned.headers)
                if isinstance(body, dict):
                    body = json.dumps(body).encode()
                    headers.setdefault("Content-Type", "application/json; charset=utf-8")
                elif isinstance(body, str):
                    body = body.encode()
                headers.setdefault("Content-Type", "text/html")
                try:
                    self.send_response(canned.status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if canned.trickle:
                        for byte in body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(canned.trickle)
                    else:
                        self.wfile.write(body)
                except OSError:
                    return

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- life -------------------------------------------------------------------------

    def start(self) -> SlackServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        # shutdown() waits for the serve loop's next poll; a connection wakes it at once
        stopper = threading.Thread(target=self.httpd.shutdown)
        stopper.start()
        with contextlib.suppress(OSError):
            socket.create_connection(self.httpd.server_address[:2], timeout=0.2).close()
        stopper.join()
        self.httpd.server_close()

    def __enter__(self) -> SlackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return self.base + "/api/"

    def webhook_url(self, path: str = WEBHOOK_PATH) -> str:
        return self.base + path

    # -- scripting ----------------------------------------------------------------------

    def fail_next(self, status: int = 500, body: bytes | str | dict[str, Any] = b"",
                  headers: dict[str, str] | None = None, delay: float = 0.0,
                  trickle: float = 0.0, drop: bool = False, times: int = 1) -> None:
        """Answer the next ``times`` requests with this reply instead of the normal one."""
        canned = Canned(status, dict(headers or {}), body, delay, trickle, drop)
        with self._lock:
            self._failures.extend([canned] * times)

    def slack_error(self, error: str, status: int = 200,
                    headers: dict[str, str] | None = None) -> None:
        """The next Web API call gets ``{"ok": false, "error": error}``."""
        self.fail_next(status, {"ok": False, "error": error}, headers)

    def rate_limit(self, retry_after: str = "30", api: bool = True) -> None:
        """The next request gets a 429 with ``Retry-After`` (JSON for the API, text for hooks)."""
        body: dict[str, Any] | str = "rate_limited"
        if api:
            body = {"ok": False, "error": "ratelimited"}
        self.fail_next(429, body, {"Retry-After": retry_after})

    # -- what arrived ------------------------------------------------------------------

    @property
    def posts(self) -> list[SlackRequest]:
        return [r for r in self.requests if r.path == "/api/chat.postMessage"]

    @property
    def hooks(self) -> list[SlackRequest]:
        return [r for r in self.requests if r.path.startswith("/hooks/")]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The bodies of every message posted, by either route, in order."""
        return [r.body for r in self.requests
                if r.path == "/api/chat.postMessage" or r.path.startswith("/hooks/")]

    # -- the fake service -----------------------------------------------------------------

    def _record(self, request: SlackRequest) -> Canned | None:
        with self._lock:
            self.requests.append(request)
            return self._failures.popleft() if self._failures else None

    def _answer(self, request: SlackRequest) -> Canned:
        if request.path == "/api/chat.postMessage":
            return self._post_message(request)
        if request.path.startswith("/hooks/") and len(request.path) > len("/hooks/"):
            if request.body.get("_invalid"):
                return Canned(400, body="invalid_payload")
            if not request.body.get("text") and not request.body.get("blocks"):
                return Canned(400, body="no_text")
            if block_problem(request.body.get("blocks")):
                return Canned(400, body="invalid_blocks")
            return Canned(200, body="ok")
        if request.path.startswith("/api/"):
            return Canned(404, body={"ok": False, "error": "unknown_method"})
        return Canned(404, body="Not Found")

    def _post_message(self, request: SlackRequest) -> Canned:
        authorization = request.header("Authorization") or ""
        token = authorization.removeprefix("Bearer ") if authorization else request.body.get(
            "token", "")
        if not token:
            return Canned(200, body={"ok": False, "error": "not_authed"})
        if token != self.token:
            return Canned(200, body={"ok": False, "error": "invalid_auth"})
        body = request.body
        channel = body.get("channel")
        if not channel or (self.channels is not None and channel not in self.channels):
            return Canned(200, body={"ok": False, "error": "channel_not_found"})
        if not body.get("text") and not body.get("blocks"):
            return Canned(200, body={"ok": False, "error": "no_text"})
        if block_problem(body.get("blocks")):
            return Canned(200, body={"ok": False, "error": "invalid_blocks"})
        with self._lock:
            self._messages += 1
            number = self._messages
        ts = f"{1_700_000_000 + number}.{number:06d}"
        message: dict[str, Any] = {"type": "message", "bot_id": "B0TEST", "ts": ts,
                                   "text": body.get("text", ""), "blocks": body.get("blocks", [])}
        if body.get("thread_ts"):
            message["thread_ts"] = body["thread_ts"]
        return Canned(200, body={"ok": True, "channel": channel, "ts": ts, "message": message})


@pytest.fixture(name="slack_server")
def slack_server_fixture() -> Iterator[SlackServer]:
    """A started fake Slack, stopped after the test; request it as ``slack_server``."""
    with SlackServer() as server:
        yield server


slack_server = slack_server_fixture  # for `from tests.slack_server import slack_server`
