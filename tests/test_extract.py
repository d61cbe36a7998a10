"""Reading an article page: its main text without the page around it, and the canonical
link it names when that link can be believed."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from monitor.config import FetchSettings
from monitor.extract import extract_page, same_site
from monitor.fetch import PAGE_TYPES, Fetcher
from monitor.fulltext import PageReader
from monitor.records import Article
from monitor.workers import WorkerPool
from tests.conftest import REPO, FeedServer

PAGES = Path(__file__).parent / "fixtures" / "pages"
PAGE_URL = "http://seedwire.example/world/2024/11/18/eu-15th-sanctions-package-shadow-fleet"


def page(head: str, body: str = "<p>Short.</p>") -> bytes:
    return f"<html><head>{head}</head><body><article>{body}</article></body></html>".encode()


def test_the_main_text_leaves_out_navigation_sidebars_and_comments() -> None:
    text = extract_page((PAGES / "eu-sanctions-shadow-fleet.html").read_bytes(), PAGE_URL).text
    assert text.startswith("EU drafts 15th sanctions package aimed at Russia’s shadow fleet\n")
    assert "A senior EU diplomat said before the weekend" in text
    for boilerplate in ("Most read", "baltic_sailor", "Get the Europe briefing", "Live:",
                        "Terms of use", "We use cookies"):
        assert boilerplate not in text


def test_a_page_in_windows_1252_reads_as_text() -> None:
    text = extract_page((PAGES / "kursk-north-korean-troops.html").read_bytes(),
                        "http://observer.example/news/europe/x").text
    assert "training at ranges in Russia’s Far East" in text
    assert "Kursk region – roughly the size of a small county –" in text
    assert "tallinn_reader" not in text
    assert "Flat to let" not in text


def test_the_canonical_link_is_normalised_like_every_link() -> None:
    canonical = extract_page((PAGES / "eu-sanctions-shadow-fleet.html").read_bytes(),
                             PAGE_URL + "?ref=rss").canonical
    assert canonical == PAGE_URL  # utm_source dropped


@pytest.mark.parametrize(("link", "why"), [
    ('<link rel="canonical" href="/world/story">', "relative"),
    ('<link rel="canonical" href="//seedwire.example/world/story">', "scheme-less"),
    ('<link rel="canonical" href="javascript:alert(1)">', "not http(s)"),
    ('<link rel="canonical" href="http://seedwire.example/">', "the site's home page"),
    ('<link rel="canonical" href="https://other-outlet.example/world/story">', "another site"),
    ('<link rel="alternate" href="http://seedwire.example/world/story">', "not canonical"),
])
def test_a_canonical_link_that_cannot_be_believed_is_ignored(link: str, why: str) -> None:
    assert extract_page(page(link), PAGE_URL).canonical is None, why


def test_a_canonical_link_on_the_sites_other_hosts_is_believed() -> None:
    link = '<link rel="Canonical" href="https://www.seedwire.example/world/story#top">'
    assert extract_page(page(link), "http://amp.seedwire.example/amp/story").canonical == (
        "https://www.seedwire.example/world/story")
    assert same_site("http://news.seedwire.example/a", "https://seedwire.example/b")
    assert not same_site("http://seedwire.example.evil.example/a", "http://seedwire.example/")


def test_bytes_that_are_not_a_page_give_no_text() -> None:
    assert extract_page(b"", PAGE_URL).text == ""
    assert extract_page(b"%PDF-1.7\x00\x01\x02", PAGE_URL).text == ""


def test_an_extraction_past_the_deadline_keeps_the_feed_text(
    feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = feed_server.serve("/story", (PAGES / "eu-sanctions-shadow-fleet.html").read_bytes(),
                            content_type="text/html")
    article = Article(source="wire", identity="i1", guid="g1", url=url, title="EU ministers",
                      summary="Borrell chairs.", content="", author="", published=None,
                      fetched=datetime(2024, 11, 18, tzinfo=UTC), language="en")

    async def go() -> list[Article]:
        async with WorkerPool(1) as pool, httpx.AsyncClient() as client:
            # No extraction finishes within a millisecond, this one included.
            reader = PageReader(Fetcher(client, FetchSettings(), PAGE_TYPES), pool,
                                deadline=0.001, max_pages=10)
            return await reader.read("wire", [article], allow_private=True)

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(go()) == [article]
    assert (f"source wire: article page {url}: extracting its text took too long"
            " (stopped after 0.001s); the article keeps its feed text") in caplog.text


def test_the_daemons_own_process_does_not_load_trafilatura() -> None:
    # Extraction runs in worker processes; the daemon only names the function.
    check = "import sys, monitor.daemon; sys.exit('trafilatura' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], cwd=REPO).returncode == 0
