"""DESIGN's promise: a bad source costs that source an error line and a backoff,
never the daemon and never the other sources. Every bad case is served by a real
HTTP server next to a good source whose alerts must still arrive."""

from __future__ import annotations

import gzip
import io
import logging
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Settings, resolve_paths
from monitor.store import Store
from tests.conftest import RULES, SEEDS, FeedServer, run_cycles

SEED_HEADLINE = "Biden authorises Ukraine to strike Russia with US long-range missiles"

ENTITY_BOMB = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "' + b"A" * 1000 + b'">]>'
               b"<rss version='2.0'><channel><title>t</title><item><title>"
               + b"&a;" * 5000 + b"</title></item></channel></rss>")
XXE = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b"<rss version='2.0'><channel><title>t</title><item><title>&x;</title>"
       b"<guid>x</guid></item></channel></rss>")
MANY_ITEMS = (b"<rss version='2.0'><channel><title>t</title>"
              + b"".join(b"<item><title>item %d</title><guid>g%d</guid></item>" % (i, i)
                         for i in range(10_000))
              + b"</channel></rss>")
HUGE_ATTRIBUTES = (b"<rss version='2.0'><channel><title>t</title><item><title "
                   + b" ".join(b'a%d="x"' % i for i in range(20_000)) + b">t</title>"
                   b"</item></channel></rss>")


def serve_bad_sources(server: FeedServer) -> dict[str, str]:
    server.serve("/loop-a", b"", status=302, headers={"Location": "/loop-b"})
    server.serve("/loop-b", b"", status=302, headers={"Location": "/loop-a"})
    return {
        "server-error": server.serve("/500", b"oops", status=500),
        "html-page": server.serve("/html", b"<html><body><h1>Sign in</h1></body></html>",
                                  content_type="text/html"),
        "malformed": server.serve("/bad.xml", b"<rss><channel><item><title>x</titl"),
        "gzip-bomb": server.serve("/bomb", gzip.compress(b"\0" * (64 * 1024 * 1024)),
                                  headers={"Content-Encoding": "gzip"}),
        "entity-bomb": server.serve("/entities", ENTITY_BOMB),
        "xxe": server.serve("/xxe", XXE),
        "redirect-loop": server.url("/loop-a"),
        "ten-thousand-items": server.serve("/many", MANY_ITEMS),
        "huge-attributes": server.serve("/attrs", HUGE_ATTRIBUTES),
        "trickle": server.serve("/slow", b"<rss version='2.0'>" + b" " * 100, chunk_delay=0.5),
        "empty": server.serve("/empty", b""),
        "missing": server.url("/nothing-here"),
    }


def test_bad_sources_cost_only_themselves(
    tmp_path: Path, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    bad = serve_bad_sources(feed_server)
    good = feed_server.serve("/wire.xml", (SEEDS / "feeds" / "wire.xml").read_bytes())
    sources: list[dict[str, Any]] = [{"name": n, "url": u} for n, u in bad.items()]
    sources.append({"name": "seed-wire", "url": good})
    settings = resolve_paths(Settings(
        storage={"url": f"sqlite:///{tmp_path / 'state.db'}"},  # type: ignore[arg-type]
        rules={"paths": [str(RULES)]},  # type: ignore[arg-type]
        defaults={"max_age": "off"},  # type: ignore[arg-type]
        fetch={"max_bytes": 4 * 1024 * 1024, "total_timeout": "3s",  # type: ignore[arg-type]
               "max_items": 500},
        sources=sources,  # type: ignore[arg-type]
    ), tmp_path)
    out = io.StringIO()
    with caplog.at_level(logging.INFO):
        (report,) = run_cycles(settings, out)
    polls = {p.source: p for p in report.polls}
    assert SEED_HEADLINE in out.getvalue()
    assert polls["seed-wire"].error is None
    failed = {name for name, p in polls.items() if p.error}
    # Truncated XML is read as far as it goes (feedparser recovers it); the rest fail.
    assert failed == set(bad) - {"ten-thousand-items", "huge-attributes", "malformed"}
    assert polls["ten-thousand-items"].items == 500  # capped; the rest logged as skipped
    assert "9500 items beyond the cap of 500 were skipped" in caplog.text
    for name in failed:  # one line naming the source and its URL
        assert any(f"source {name} ({bad[name]})" in r.getMessage() for r in caplog.records)
    assert "root:x" not in out.getvalue() + caplog.text  # /etc/passwd never read
    reasons = {name: polls[name].error or "" for name in failed}
    assert "not a feed" in reasons["html-page"]
    assert "not a feed" in reasons["empty"]
    assert "declares XML entities" in reasons["entity-bomb"]
    assert "declares XML entities" in reasons["xxe"]
    assert "larger than" in reasons["gzip-bomb"]
    assert "redirect loop" in reasons["redirect-loop"]
    assert "within 3s" in reasons["trickle"]
    assert "HTTP 404" in reasons["missing"]
    store = Store(settings.storage.url).open()
    states = {s.name: s for s in store.source_states()}
    store.close()
    for name in failed:
        assert states[name].consecutive_failures == 1
        assert states[name].next_poll_at is not None
