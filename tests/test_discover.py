"""Finding the feed a web page names."""

from __future__ import annotations

import pytest

from monitor.parse.discover import discover_feed_url


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (b'<link rel="alternate" type="application/rss+xml" href="/rss">', "https://s.example/rss"),
        (b'<LINK REL="Alternate" TYPE="application/atom+xml" HREF="atom.xml">',
         "https://s.example/news/atom.xml"),
        (b'<link rel="alternate" type="application/feed+json" href="https://f.example/j">',
         "https://f.example/j"),
        (b'<link rel="alternate" type="application/atom+xml" href="/a">'
         b'<link rel="alternate" type="application/rss+xml" href="/r">', "https://s.example/r"),
        (b'<link rel="stylesheet" type="text/css" href="/s.css">', None),
        (b'<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">', None),
        (b"<html><body>no head at all", None),
    ],
    ids=["rss-relative", "atom-upper-case", "json-feed", "rss-preferred", "no-feed",
         "javascript-url", "broken-html"],
)
def test_the_page_s_feed_link_is_found(html: bytes, expected: str | None) -> None:
    assert discover_feed_url(html, "https://s.example/news/") == expected
