"""Small field conversions shared by every feed format's mapping. Pure."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

T = TypeVar("T")

# Tags that mark a text as HTML (feedparser's idea of "looks like HTML", narrowed).
_HTML_TAG = re.compile(
    r"</?(?:a|abbr|acronym|b|big|blockquote|br|cite|code|del|div|em|font|h[1-6]|hr|i|img|ins|"
    r"li|ol|p|pre|q|s|small|span|strike|strong|sub|sup|table|td|th|tr|u|ul)\b[^>]*>",
    re.IGNORECASE,
)
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")


def text(value: object) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def as_html(value: str, kind: object) -> str:
    """Every text field leaves the parse stage as HTML: plain text is escaped.

    ``kind`` is the format's declared type ("text/plain", "text", "html", ...);
    ``None`` means unknown: then the text is HTML only if it looks like HTML.
    """
    if kind in ("text/plain", "text"):
        return html.escape(value, quote=False)
    if kind is None and not looks_like_html(value):
        return html.escape(value, quote=False)
    return value


def looks_like_html(value: str) -> bool:
    return bool(_HTML_TAG.search(value) or _ENTITY.search(value))


def iso_datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def link_base(feed_url: str | None, feed_link: str) -> str | None:
    """What an item's relative link is resolved against: the URL the feed was read from
    (after redirects) when that is http(s); else the link the feed gives for itself (a
    feed read from a file); else nothing, and a relative link is left out."""
    for candidate in (feed_url or "", feed_link.strip()):
        if is_web_url(candidate):
            return candidate
    return None


def is_web_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def is_relative(link: str) -> bool:
    """A link without a scheme (``/news/1``, ``story``, ``//host/x``) needs a base."""
    if link.startswith(("http://", "https://")):  # nearly every link: no need to split it
        return False
    try:
        return not urlsplit(link.strip()).scheme
    except ValueError:  # "http://[::1": no URL at all, and canonical_url says so
        return False


def guid_and_link(guid: str | None, link: str | None,
                  base: str | None) -> tuple[str | None, str | None]:
    """An item's guid and its link made absolute (``link_base``); a relative link with no
    base is left out. A guid that is the link as written follows it: fastfeedparser
    fills a missing guid in from the link where feedparser leaves it empty, and
    ``normalise`` drops a guid that is just the link, so both parsers agree."""
    if not link or not link.strip():
        return guid, None
    absolute: str | None = link
    if is_relative(link):
        absolute = urljoin(base, link.strip()) if base else None
    return (absolute if guid == link else guid), absolute


def newest(entries: Sequence[T], max_items: int,
           published: Callable[[T], datetime | None]) -> Sequence[T]:
    """At most ``max_items`` of a feed's entries: its newest. Feeds list their newest
    entry first, and the first ones are kept; but some list the oldest first, and
    keeping their first entries would keep the same old ones for ever and never show a
    new one. Such a feed is known by its last entry being dated later than its first:
    its last entries are kept. Only two entries are dated, and only for a feed over
    the cap."""
    if len(entries) <= max_items:
        return entries
    first, last = published(entries[0]), published(entries[-1])
    if first is not None and last is not None and last > first:
        return entries[len(entries) - max_items:]
    return entries[:max_items]
