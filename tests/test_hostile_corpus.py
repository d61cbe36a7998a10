"""A corpus of hostile and broken feeds, served on 127.0.0.1 beside two good feeds.

Built from the issue's list of what a feed on the open internet does (and from the
measured library hazards), not from the other tests: the daemon runs two cycles of
``run --once`` over all of it at once, and each test below reads one outcome of that
run: the good sources' alerts arrive, each bad source costs one clear log line and a
growing backoff, nothing hostile reaches a stored article, memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import sqlite3
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.channel_settings import ConsoleChannelSettings
from monitor.channels.console import ConsoleChannel
from monitor.cli.status_cmd import snapshot
from monitor.config import Settings
from monitor.daemon import CycleReport, Daemon
from monitor.errors import ParseError
from monitor.parse import parse_feed
from monitor.rules.load import load_rules
from monitor.store import Store
from tests.conftest import SEEDS, FeedServer, Route
from tests.test_daemon import Clock, settings_for

PUBLIC_HOST = "public-news.test"  # reached through the test server acting as a proxy
MARKER = "hostile-corpus-marker-7f3a9c"  # the text of a local file an XXE feed names
CAP = 10 * 1024 * 1024  # the default body cap
INTERVAL = timedelta(minutes=2)
GOOD_HEADLINE = "Biden authorises Ukraine to strike Russia with US long-range missiles"


# --- the corpus ------------------------------------------------------------------------


def rss(items: str, declaration: str = '<?xml version="1.0" encoding="utf-8"?>',
        version: str = "2.0", doctype: str = "") -> str:
    return (f'{declaration}{doctype}<rss version="{version}"><channel><title>corpus</title>'
            f"<link>http://corpus.example/</link><description>d</description>{items}"
            "</channel></rss>")


def item(title: str, guid: str | None = None, link: str | None = None,
         date: str | None = None, description: str = "") -> str:
    parts = [f"<title>{title}</title>"]
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    parts.append(f"<description>{description or title}</description>")
    return "<item>" + "".join(parts) + "</item>"


def gzip_bomb(size: int) -> bytes:
    """``size`` bytes of zeros, gzipped (about 1/1000 of that)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    out = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join(out) + packer.flush()


HTML_PAGE = (b"<!DOCTYPE html><html><head><title>World news</title></head><body>"
             b"<h1>World news today</h1><p>Our latest reporting.</p></body></html>")
CHALLENGE = (b"<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>"
             b"<meta http-equiv=\"refresh\" content=\"390\"></head><body><div>"
             b"Checking your browser before accessing the site.</div>"
             b"<script>window._cf_chl_opt={cvId: '3'};</script></body></html>")
LOGIN = (b"<html><head><title>Sign in</title></head><body><form action=\"/login\" method=post>"
         b"Please sign in to continue<input name=user><input type=password name=pw></form>"
         b"</body></html>")

BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY lol0 "lol">'
                  + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
                  + "]>" + rss(item("&lol9;", guid="laughs"), declaration="")).encode()


def xxe(path: Path, encoding: str = "utf-8") -> bytes:
    doctype = f'<!DOCTYPE rss [<!ENTITY secret SYSTEM "file://{path}">]>'
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'
    return rss(item("Leak &secret; here", guid="xxe", link="http://corpus.example/xxe"),
               declaration=declaration, doctype=doctype).encode(encoding)


def json_feed(version: str) -> bytes:
    import json

    items: list[Any] = [
        {"content_html": "<p>Only html content, no id and no url</p>"},
        {"id": "jf-2", "title": "With attachments",
         "attachments": [{"url": "http://corpus.example/a.mp3", "mime_type": "audio/mpeg"}],
         "content_text": "Podcast episode"},
        {"id": 3, "url": "http://corpus.example/three", "content_text": "numeric id",
         "date_published": "not a date"},
        "not an item",
    ]
    author = {"authors": [{"name": "A"}]} if version == "1.1" else {"author": {"name": "A"}}
    return json.dumps({"version": f"https://jsonfeed.org/version/{version}",
                       "title": f"json {version}", "items": items, **author}).encode()


RDF = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns="http://purl.org/rss/1.0/"><channel rdf:about="http://corpus.example/"><title>rdf</title>
 <link>http://corpus.example/</link><description>d</description></channel>
 <item rdf:about="http://corpus.example/rdf1"><title>RDF item one</title>
 <link>http://corpus.example/rdf1</link></item></rdf:RDF>"""
ATOM03 = b"""<?xml version="1.0"?><feed version="0.3" xmlns="http://purl.org/atom/ns#">
 <title>atom03</title><entry><title>Atom 0.3 entry</title>
 <link rel="alternate" type="text/html" href="http://corpus.example/atom03"/>
 <id>tag:corpus.example,2024:1</id><issued>2024-11-17T10:00:00Z</issued>
 <modified>2024-11-17T10:00:00Z</modified></entry></feed>"""

CYRILLIC = "Правительство объявило новые санкции"
WESTERN = "Zelensky’s “victory plan” — café"
LATIN = "Zélensky à Genève"


def corpus(marker: Path, server: FeedServer) -> dict[str, Route]:
    """Path -> what the HTTP server answers there."""
    many = "".join(item(f"Item {i}", guid=f"many-{i}") for i in range(10_000))
    bomb = gzip_bomb(256 * 1024 * 1024)
    future = format_datetime(datetime.now(UTC) + timedelta(days=400), usegmt=True)
    xml = "application/rss+xml"
    return {
        "/trickle": Route(rss(item("slow", guid="slow")).encode() * 20, chunk_delay=1.0),
        "/bomb": Route(bomb, headers={"Content-Encoding": "gzip"}),
        "/bomb-deflate": Route(zlib.compress(bytes(64 * 1024 * 1024), 9),
                               headers={"Content-Encoding": "deflate"}),
        "/gzip-label-plain": Route(rss(item("plain", guid="p")).encode(),
                                   headers={"Content-Encoding": "gzip"}),
        "/loop-a": Route(status=302, headers={"Location": "/loop-b"}),
        "/loop-b": Route(status=301, headers={"Location": server.url("/loop-a")}),
        **{f"/hop{i}": Route(status=302, headers={"Location": f"/hop{i + 1}"}) for i in range(6)},
        "/hop6": Route(rss(item("After six hops", guid="hop")).encode()),
        "/to-file": Route(status=302, headers={"Location": "file:///etc/passwd"}),
        "/to-gopher": Route(status=307, headers={"Location": "gopher://corpus.example/1"}),
        f"http://{PUBLIC_HOST}/feed": Route(status=302,
                                            headers={"Location": server.url("/internal")}),
        "/internal": Route(rss(item("Internal only", guid="internal")).encode()),
        "/laughs": Route(BILLION_LAUGHS),
        "/xxe": Route(xxe(marker)),
        "/xxe-ebcdic": Route(xxe(marker, "cp037")),
        "/dev-zero": Route(b"/dev/zero", content_type=xml),
        "/file-url": Route(b"file:///etc/passwd", content_type=xml),
        "/marker-path": Route(str(marker).encode(), content_type=xml),
        "/empty": Route(b"", content_type=xml),
        "/html": Route(HTML_PAGE, content_type="text/html; charset=utf-8"),
        "/challenge": Route(CHALLENGE, content_type="text/html; charset=UTF-8", status=200),
        "/login": Route(LOGIN, content_type="text/html"),
        "/json-as-rss": Route(b'{"error": "rate limited", "code": 1015}', content_type=xml),
        "/deep-json": Route(b'{"version": "https://jsonfeed.org/version/1.1", "items": '
                            + b"[" * 200_000, content_type="application/feed+json"),
        "/deep-xml": Route(rss("<x>" * 100_000).encode()),
        "/jsonfeed-10": Route(json_feed("1"), content_type="application/json"),
        "/jsonfeed-11": Route(json_feed("1.1"), content_type="application/feed+json"),
        "/rss091": Route(rss(item("RSS 0.91 item", link="http://corpus.example/091"),
                             version="0.91").encode()),
        "/rss092": Route(rss(item("RSS 0.92 item", link="http://corpus.example/092"),
                             version="0.92").encode()),
        "/rdf": Route(RDF, content_type="application/rdf+xml"),
        "/atom03": Route(ATOM03, content_type="application/atom+xml"),
        "/cp1251": Route(rss(item(CYRILLIC, guid="cyr"), declaration="").encode("cp1251"),
                         content_type="application/rss+xml"),
        "/cp1252": Route(rss(item(WESTERN, guid="west"), declaration="").encode("cp1252"),
                         content_type="application/rss+xml"),
        "/says-utf8-is-latin1": Route(rss(item(LATIN, guid="lat")).encode("latin-1")),
        "/bom-says-utf16": Route(b"\xef\xbb\xbf" + rss(
            item(LATIN, guid="bom"), declaration='<?xml version="1.0" encoding="utf-16"?>'
        ).encode()),
        "/invalid-bytes": Route(rss(item(LATIN + " \udcff\udcfe", guid="bad")).encode(
            "utf-8", "surrogateescape")),
        "/bare-items": Route(rss(item("No guid, link or date") + item("Second bare item")
                                 ).encode()),
        "/duplicate-guids": Route(rss(item("First of twins", guid="twin",
                                           link="http://corpus.example/twin1")
                                      + item("Second of twins", guid="twin",
                                             link="http://corpus.example/twin2")).encode()),
        "/odd-dates": Route(rss(item("From the future", guid="f", date=future)
                                + item("Year one", guid="y1", date="Mon, 01 Jan 0001 00:00:00 GMT")
                                + item("Far future", guid="ff",
                                       date="Fri, 31 Dec 9999 23:59:59 GMT")
                                + item("Garbage date", guid="g", date="the day after")).encode()),
        "/ten-thousand": Route(rss(many).encode()),
        "/huge-attribute": Route(rss(
            f'<item><title x="{"A" * (5 * 1024 * 1024)}">Huge attribute</title>'
            '<guid>huge</guid></item>').encode()),
        "/429": Route(status=429, headers={"Retry-After": "3600"}),
        "/503": Route(status=503, headers={"Retry-After": format_datetime(
            datetime.now(UTC) + timedelta(hours=2), usegmt=True)}),
        "/503-absurd": Route(status=503, headers={"Retry-After": "9" * 30}),
        "/304": Route(status=304),
    }


@dataclass
class Raw:
    """What the raw server sends for a path: ``head`` + ``body``; ``send`` bytes of them
    (all if ``None``), then it closes; ``silent``: it sends nothing and holds on."""

    head: bytes = b""
    body: bytes = b""
    send: int | None = None
    silent: bool = False


class RawServer:
    """A socket server on 127.0.0.1 for answers no HTTP server library gives:
    a body cut off mid-way, a lying Content-Length, no answer at all."""

    def __init__(self, routes: dict[str, Raw]) -> None:
        self.routes = routes
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(4096)
            if not data:
                return
            request += data
        path = request.split(b" ")[1].decode()
        raw = self.routes[path]
        if raw.silent:
            self._stop.wait()
            return
        answer = raw.head + raw.body
        with contextlib.suppress(OSError):  # the client hung up: what caps provoke
            conn.sendall(answer[: raw.send] if raw.send is not None else answer)
        conn.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for conn in self._open:
            conn.close()


def raw_corpus() -> dict[str, Raw]:
    feed = rss(item("Cut off", guid="cut") * 50).encode()
    bomb = gzip_bomb(64 * 1024 * 1024)
    return {
        "/cut-mid-body": Raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(feed), feed, send=300),
        "/bomb-says-small": Raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                                b"Content-Encoding: gzip\r\nContent-Length: 1000\r\n"
                                b"Connection: close\r\n\r\n", bomb),
        "/bomb-says-huge": Raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                               b"Content-Encoding: gzip\r\nContent-Length: 99999999999\r\n"
                               b"Connection: close\r\n\r\n", bomb),
        "/silent": Raw(silent=True),
    }


# --- one run of the daemon over the whole corpus -----------------------------------------


BAD = {  # source -> a word its failure line must contain
    "trickle": "within", "bomb": "larger than", "bomb-deflate": "larger than",
    "gzip-label-plain": "compressed", "loop-a": "loop", "hop0": "more than 5 redirects",
    "to-file": "only http(s)", "to-gopher": "only http(s)", "public": "private network",
    "laughs": "entities", "xxe": "entities", "xxe-ebcdic": "refused",
    "dev-zero": "not a feed", "file-url": "not a feed", "marker-path": "not a feed",
    "empty": "not a feed", "html": "not a feed", "challenge": "not a feed",
    "login": "not a feed", "json-as-rss": "not a feed",
    "429": "429", "503": "503", "503-absurd": "503", "304": "304",
    "cut-mid-body": "transfer failed", "bomb-says-small": "", "bomb-says-huge": "larger than",
    "silent": "timed out", "deep-json": "nested too deeply",
}
NOT_A_FEED = {  # source -> (content type, first words) its "not a feed" line must name
    "html": ("text/html", "World news today"),
    "challenge": ("text/html", "Just a moment"),
    "login": ("text/html", "Please sign in"),
    "json-as-rss": ("application/rss+xml", "rate limited"),
    "dev-zero": ("application/rss+xml", "/dev/zero"),
    "file-url": ("application/rss+xml", "file:///etc/passwd"),
    "empty": ("application/rss+xml", ""),
}
GOOD = ("seed-wire", "baltic-observer")


@dataclass
class Run:
    settings: Settings
    cycles: list[CycleReport]
    states: list[dict[str, dict[str, Any]]]  # status's source entries, after each cycle
    log: list[list[logging.LogRecord]]  # warnings and errors, per cycle
    console: str
    titles: dict[str, list[str]]
    stored_text: str
    peak_growth: int | None  # bytes the process's peak RSS grew by during the run
    urls: dict[str, str] = field(default_factory=dict)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _rss_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field_name} in /proc/self/status")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("hostile")
    marker = tmp / "secret.txt"
    marker.write_text(MARKER)
    server = FeedServer()
    server.thread.start()
    raw = RawServer(raw_corpus())
    try:
        yield _run(tmp, marker, server, raw)
    finally:
        raw.close()
        server.httpd.shutdown()
        server.httpd.server_close()


def _run(tmp: Path, marker: Path, server: FeedServer, raw: RawServer) -> Run:
    server.serve("/wire.xml", (SEEDS / "feeds" / "wire.xml").read_bytes())
    server.serve("/outlet.atom", (SEEDS / "feeds" / "outlet.atom").read_bytes(),
                 content_type="application/atom+xml")
    urls = {"seed-wire": server.url("/wire.xml"), "baltic-observer": server.url("/outlet.atom")}
    for path, route in corpus(marker, server).items():
        server.routes[path] = route
        if path.startswith("/"):
            urls[path.strip("/")] = server.url(path)
    urls["public"] = f"http://{PUBLIC_HOST}/feed"
    for name in ("loop-b", "internal", *(f"hop{i}" for i in range(1, 7))):
        del urls[name]
    urls["hop1"] = server.url("/hop1")  # five redirects: allowed
    for path in raw.routes:
        urls[path.strip("/")] = raw.url(path)
    # Every source is on 127.0.0.1 and so allowed its private address; the "public"
    # one is reached by host name through a proxy and must not be led back here.
    sources = [{"name": name, "url": url, "interval": "2m"} for name, url in urls.items()]
    settings = settings_for(
        tmp, sources,
        fetch={"connect_timeout": "2s", "read_timeout": "2s", "total_timeout": "4s"},
        parse={"workers": 2, "deadline": "20s"},
        # Old enough for the seed story to alert; year 0001 and 9999 meet the arithmetic.
        defaults={"max_age": "1000d"},
    )
    out = io.StringIO()
    collect = _Collect()
    logging.getLogger("newsmon").addHandler(collect)
    clock = Clock(datetime.now(UTC))
    proxied = httpx.AsyncHTTPTransport(proxy=server.base)
    reset = _reset_peak()
    before = _rss_kb("VmHWM")
    cycles: list[CycleReport] = []
    states: list[dict[str, dict[str, Any]]] = []
    logs: list[list[logging.LogRecord]] = []

    async def go() -> None:
        channel = ConsoleChannel("console", ConsoleChannelSettings(type="console"), out)
        async with httpx.AsyncClient(mounts={f"http://{PUBLIC_HOST}": proxied}) as client:
            daemon = Daemon(settings, load_rules(settings.rules.paths),
                            Store(settings.storage.url), client, {"console": channel},
                            clock=clock)
            await daemon.start()
            try:
                for _ in range(2):
                    collect.records = []
                    cycles.append(await daemon.run_once())
                    logs.append(collect.records)
                    data = await asyncio.to_thread(snapshot, settings, clock())
                    states.append({s["name"]: s for s in data["sources"]})
                    clock.now += timedelta(minutes=1)
            finally:
                await daemon.close()

    try:
        asyncio.run(go())
    finally:
        logging.getLogger("newsmon").removeHandler(collect)
    growth = (_rss_kb("VmHWM") - before) * 1024 if reset else None
    with sqlite3.connect(tmp / "state.db") as db:
        rows = db.execute("SELECT source, title, summary, content FROM articles").fetchall()
    titles: dict[str, list[str]] = {}
    for source, title, _, _ in rows:
        titles.setdefault(source, []).append(title)
    stored = "\n".join("\n".join(row[1:]) for row in rows)
    return Run(settings, cycles, states, logs, out.getvalue(), titles, stored, growth, urls)


def _lines_about(records: list[logging.LogRecord], source: str) -> list[str]:
    lines = [r.getMessage() for r in records]
    return [line for line in lines if line.startswith(f"source {source} ")]


# --- what must hold ------------------------------------------------------------------------


def test_the_good_sources_alerts_arrive_beside_the_hostile_corpus(run: Run) -> None:
    assert GOOD_HEADLINE in run.console
    for name in GOOD:
        assert run.states[0][name]["last_error"] is None
        assert run.titles.get(name)


def test_the_daemon_completes_every_poll_of_both_cycles(run: Run) -> None:
    for cycle in run.cycles:
        assert {p.source for p in cycle.polls} == set(run.urls)


@pytest.mark.parametrize("source", sorted(BAD))
def test_each_bad_source_fails_with_one_line_naming_source_url_and_reason(
    run: Run, source: str
) -> None:
    lines = _lines_about(run.log[0], source)
    assert len(lines) == 1, lines
    assert run.urls[source] in lines[0]
    assert BAD[source] in lines[0]
    assert run.states[0][source]["consecutive_failures"] == 1
    assert run.states[0][source]["last_error"]


@pytest.mark.parametrize("source", sorted(NOT_A_FEED))
def test_not_a_feed_names_the_content_type_and_the_first_words(run: Run, source: str) -> None:
    content_type, words = NOT_A_FEED[source]
    error = run.states[0][source]["last_error"]
    assert error.startswith("not a feed")
    assert content_type in error
    assert words in error


@pytest.mark.parametrize("source", sorted(set(BAD) - {"429", "503", "503-absurd"}))
def test_the_backoff_of_a_failing_source_doubles(run: Run, source: str) -> None:
    gaps = [datetime.fromisoformat(s[source]["next_poll"])
            - datetime.fromisoformat(s[source]["last_attempt"]) for s in run.states]
    assert run.states[1][source]["consecutive_failures"] == 2
    assert gaps == [INTERVAL, 2 * INTERVAL]


def test_retry_after_in_seconds_and_as_a_date_are_honoured(run: Run) -> None:
    def wait(source: str) -> timedelta:
        state = run.states[0][source]
        return (datetime.fromisoformat(state["next_poll"])
                - datetime.fromisoformat(state["last_attempt"]))

    assert wait("429") == timedelta(hours=1)
    assert timedelta(minutes=110) < wait("503") <= timedelta(hours=2)
    assert wait("503-absurd") == timedelta(hours=6)  # the backoff's cap


def test_the_gzip_bombs_leave_memory_bounded(run: Run) -> None:
    if run.peak_growth is None:
        pytest.skip("this kernel does not let a process reset its peak RSS")
    assert run.peak_growth < 150 * 1024 * 1024


def test_no_hostile_body_puts_a_local_file_in_a_stored_article_or_alert(run: Run) -> None:
    assert MARKER not in run.stored_text
    assert MARKER not in run.console
    assert "root:x:0" not in run.stored_text
    assert "lollol" not in run.stored_text


def test_five_redirects_are_followed(run: Run) -> None:
    assert run.titles["hop1"] == ["After six hops"]


@pytest.mark.parametrize(("source", "title"), [
    ("rss091", "RSS 0.91 item"), ("rss092", "RSS 0.92 item"), ("rdf", "RDF item one"),
    ("atom03", "Atom 0.3 entry"),
])
def test_old_feed_formats_are_read(run: Run, source: str, title: str) -> None:
    assert run.titles[source] == [title]


@pytest.mark.parametrize("source", ["jsonfeed-10", "jsonfeed-11"])
def test_json_feed_items_without_id_url_or_title_are_stored(run: Run, source: str) -> None:
    assert run.states[0][source]["last_error"] is None
    assert len(run.titles[source]) == 3


@pytest.mark.parametrize(("source", "title"), [
    ("cp1251", CYRILLIC), ("cp1252", WESTERN), ("says-utf8-is-latin1", LATIN),
    ("bom-says-utf16", LATIN),
])
def test_wrong_or_missing_encodings_still_give_readable_titles(
    run: Run, source: str, title: str
) -> None:
    assert run.titles[source] == [title]


def test_invalid_bytes_spoil_only_themselves(run: Run) -> None:
    [title] = run.titles["invalid-bytes"]
    assert title.startswith(LATIN)


def test_items_without_guid_link_or_date_are_kept_and_twins_are_both_stored(run: Run) -> None:
    assert sorted(run.titles["bare-items"]) == ["No guid, link or date", "Second bare item"]
    # A guid shared by items with different links: each is its own article.
    assert sorted(run.titles["duplicate-guids"]) == ["First of twins", "Second of twins"]


def test_odd_dates_do_not_cost_the_feed(run: Run) -> None:
    assert run.states[0]["odd-dates"]["last_error"] is None
    assert len(run.titles["odd-dates"]) == 4


def test_ten_thousand_items_are_cut_at_max_items_and_the_rest_logged(run: Run) -> None:
    assert len(run.titles["ten-thousand"]) == 1000
    [line] = _lines_about(run.log[0], "ten-thousand")
    assert "9000 items beyond the cap of 1000" in line


def test_an_item_with_a_five_megabyte_attribute_is_read(run: Run) -> None:
    assert run.titles["huge-attribute"] == ["Huge attribute"]


def test_an_ebcdic_document_cannot_smuggle_entity_declarations() -> None:
    body = ('<?xml version="1.0" encoding="cp037"?><!DOCTYPE rss [<!ENTITY x "expanded">]>'
            + rss(item("a&x;b", guid="e"), declaration="")).encode("cp037")
    with pytest.raises(ParseError, match="refused"):
        parse_feed("s", "http://corpus.example/", body, "application/rss+xml")



def test_a_utf7_document_cannot_smuggle_entity_declarations() -> None:
    body = (b'<?xml version="1.0" encoding="utf-7"?><!DOCTYPE rss [+ADw-!ENTITY x "expanded"'
            b'+AD4-]>' + rss(item("a&x;b", guid="u"), declaration="").encode())
    with pytest.raises(ParseError, match="declares XML entities"):
        parse_feed("s", "http://corpus.example/", body, "application/rss+xml")
