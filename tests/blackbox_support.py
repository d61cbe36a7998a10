"""Black-box harness: newsmon as users run it, against real servers on 127.0.0.1.

Written from the documented contracts only (DESIGN.md, README, docs/): the tests that
use it run ``python -m monitor ...`` as a subprocess in a temporary folder and watch
what comes out of it (exit code, standard output and error, ``status --json``, the
JSON a webhook channel receives), never the package's internals.

``WebServer`` is one threaded HTTP server that serves scripted responses per path
(feeds, hostile answers, redirects, trickles) and records every request, including
the POSTs of newsmon's webhook channel (``/hook``).
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
HOOK_PATH = "/hook"
SLACK_API = "/slack/api/"


@dataclass
class Reply:
    """One scripted HTTP answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float = 0.0  # seconds between body bytes, sent forever: a body that never ends
    content_type: str = "application/rss+xml; charset=utf-8"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Route = Reply | Callable[[Request], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up on a trickle is expected


class WebServer:
    """Serves ``routes`` (path -> Reply or a function of the request); records requests."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.slack_messages: list[dict[str, Any]] = []  # with "_ts": the ts answered
        self.hook_delay: float = 0.0  # seconds the webhooks wait before answering
        self.undelayed: set[str] = set()  # webhook paths that answer at once anyway
        self.hook_started = threading.Event()  # set when a webhook POST arrives
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request(method, self.path, headers, body)
                with outer._lock:
                    outer.requests.append(request)
                scripted = self.path.split("?")[0] in outer.routes
                slack_api = self.path == SLACK_API + "chat.postMessage"
                if method == "POST" and slack_api and not scripted:
                    self._send(outer._slack_reply(request))
                    return
                is_hook = self.path == HOOK_PATH or self.path.startswith(HOOK_PATH + "-")
                if method == "POST" and is_hook:
                    outer.hook_started.set()
                    if outer.hook_delay and self.path not in outer.undelayed:
                        time.sleep(outer.hook_delay)
                    self._send(Reply(200, b"{}", content_type="application/json"))
                    return
                route = outer.routes.get(self.path.split("?")[0])
                if route is None:
                    self._send(Reply(404, b"not found", content_type="text/plain"))
                    return
                reply = route(request) if callable(route) else route
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.trickle:
                        self.send_header("Content-Length", str(10**9))
                        self.end_headers()
                        self.wfile.write(reply.body)
                        self.wfile.flush()
                        for _ in range(600):
                            time.sleep(reply.trickle)
                            self.wfile.write(b" ")
                            self.wfile.flush()
                        return
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return self.base + path

    def hooks(self, path: str = HOOK_PATH) -> list[dict[str, Any]]:
        """The JSON bodies a webhook channel posted to ``path``, in order."""
        with self._lock:
            return [json.loads(r.body) for r in self.requests
                    if r.method == "POST" and r.path == path]

    def _slack_reply(self, request: Request) -> Reply:
        """Slack's chat.postMessage: every message gets the next ``ts``."""
        with self._lock:
            self.slack_messages.append(_form_or_json(request))
            ts = f"1700000000.{len(self.slack_messages):06d}"
            self.slack_messages[-1]["_ts"] = ts
        body = json.dumps({"ok": True, "channel": "C0TEST", "ts": ts}).encode()
        return Reply(200, body, content_type="application/json")

    def gets(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == "GET" and r.path == path]


def _form_or_json(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        parsed: dict[str, Any] = json.loads(request.body)
        return parsed
    return {k: v[0] for k, v in parse_qs(request.body.decode()).items()}


# ---------------------------------------------------------------- feeds


def rss(items: Iterable[dict[str, str]], title: str = "Test feed") -> bytes:
    """An RSS 2.0 feed; each item maps tag -> text (already escaped XML)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
             f"<title>{title}</title><link>http://feeds.example/</link>",
             "<description>test</description>"]
    for item in items:
        parts.append("<item>" + "".join(f"<{k}>{v}</{k}>" for k, v in item.items()) + "</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode()


def rfc822(epoch: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(epoch))


# ---------------------------------------------------------------- running newsmon


def once_per_session(tmp_path_factory: Any, name: str, observe: Callable[[], T]) -> T:
    """``observe()`` once per test session, even when pytest-xdist spreads a module's tests
    over several workers: the first worker runs it, the others wait and read its result."""
    root: Path = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of one session
    saved = root / f"blackbox-{name}.pickle"
    with open(root / f"blackbox-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if saved.exists():
            loaded: T = pickle.loads(saved.read_bytes())
            return loaded
        value = observe()
        saved.write_bytes(pickle.dumps(value))
        return value



@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    maxrss_mib: float  # peak resident memory of newsmon and the children it reaped

    def lines(self, text: str, where: str = "stderr") -> list[str]:
        return [line for line in getattr(self, where).splitlines() if text in line]


def newsmon_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env.pop("CREDENTIALS_DIRECTORY", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m monitor ARGS`` as a user would start it (output to files, not pipes)."""
    out = open(cwd / f".out-{time.monotonic_ns()}", "w+")  # noqa: SIM115 (closed by finish)
    err = open(cwd / f".err-{time.monotonic_ns()}", "w+")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "monitor", *args], cwd=cwd,
                               env=newsmon_env(env), stdout=out, stderr=err, text=True)
    process._bb_files = (out, err)  # type: ignore[attr-defined]
    return process


def finish(process: subprocess.Popen[str], timeout: float = 60) -> Result:
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = process._bb_files  # type: ignore[attr-defined]
    texts = []
    for handle in (out, err):
        handle.seek(0)
        texts.append(handle.read())
        handle.close()
        os.unlink(handle.name)
    return Result(process.returncode, texts[0], texts[1], usage.ru_maxrss / 1024)


def newsmon(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 60) -> Result:
    return finish(start(list(args), cwd, env), timeout)


def current_stderr(process: subprocess.Popen[str]) -> str:
    err = process._bb_files[1]  # type: ignore[attr-defined]
    return Path(err.name).read_text()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def terminate(process: subprocess.Popen[str], signum: int = signal.SIGTERM,
              timeout: float = 15) -> Result:
    process.send_signal(signum)
    return finish(process, timeout)


def status_json(cwd: Path, config: str = "newsmon.toml") -> dict[str, Any]:
    result = newsmon("status", "--config", config, "--json", cwd=cwd)
    assert result.rc == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def write_rule(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path
