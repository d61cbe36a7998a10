"""Feed discovery: the feed a web page names in ``<link rel="alternate" type="...">``.

Users often paste a site's address instead of its feed's. The page says where its
feed is; the first RSS, Atom or JSON Feed link wins. Pure: reads the bytes it is
given, fetches nothing.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json",
              "application/json")


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link":
            return
        values = {k.lower(): (v or "") for k, v in attrs}
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").lower().split(";")[0].strip()
        if "alternate" in rels and kind in FEED_TYPES and values.get("href"):
            self.found.append((FEED_TYPES.index(kind), values["href"].strip()))


def discover_feed_url(body: bytes, page_url: str) -> str | None:
    """The absolute http(s) URL of the feed the page links to, or ``None``."""
    finder = _LinkFinder()
    finder.feed(body[:512 * 1024].decode("utf-8", "replace"))
    finder.close()
    for _, href in sorted(finder.found, key=lambda item: item[0]):
        url = urljoin(page_url, href)
        if urlsplit(url).scheme in ("http", "https") and url != page_url:
            return url
    return None
