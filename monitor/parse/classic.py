"""RSS/Atom through feedparser: the lenient path for feeds the fast parser refuses.

feedparser is only ever given a file-like object holding the body we fetched:
given bytes or a str that names a path or a URL, it would open or fetch it itself
(a body reading ``/dev/zero`` would read until memory runs out). The caller has
already refused documents that declare XML entities (feedparser's lenient
fallback expands a flat entity referenced many times into hundreds of megabytes).
"""

from __future__ import annotations

import calendar
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser

from monitor.parse.fields import (
    as_html,
    guid_and_link,
    is_web_url,
    link_base,
    newest,
    text,
)
from monitor.records import FeedEntry, ParsedFeed


def parse_with_feedparser(body: bytes, content_type: str | None, max_items: int,
                          feed_url: str | None = None) -> ParsedFeed | str:
    """The feed, or the reason it is not one. Relative item links resolve against
    ``feed_url`` (``fields.link_base``), here rather than by feedparser: told the feed's
    URL, it would resolve guids too (guid ``rel`` becoming ``http://host/feeds/rel``),
    and an article's identity would depend on the parser. feedparser applies xml:base."""
    headers = {"content-type": content_type} if content_type else {}
    try:
        result = feedparser.parse(io.BytesIO(body), response_headers=headers)
    except UnicodeError as exc:  # a declared codec that refuses to decode ("undefined")
        return f"parser said: {exc}"
    entries = list(result.get("entries") or [])
    if not result.get("version") and not entries:
        problem = result.get("bozo_exception")
        return f"parser said: {problem}" if problem else "no feed elements"
    feed = result.get("feed") or {}
    language = text(feed.get("language")).lower() or None
    base = link_base(feed_url, text(feed.get("link")))
    return ParsedFeed(
        title=text(feed.get("title")),
        entries=tuple(_entry(entry, language, base) for entry in newest(
            entries, max_items, lambda entry: _entry(entry, language, base).published)),
        skipped=max(0, len(entries) - max_items),
    )


def _entry(entry: Mapping[str, Any], feed_language: str | None, base: str | None) -> FeedEntry:
    contents = entry.get("content") or []
    content = "\n".join(as_html(text(c.get("value")), c.get("type")) for c in contents
                        if isinstance(c, Mapping))
    summary = _detail_html(entry, "summary")
    if summary and summary == content:
        summary = ""
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    link = text(entry.get("link")) or None
    if not entry.get("links") and link == entry.get("id") and not is_web_url(link or ""):
        # feedparser takes the guid of an item without a link element for its link (RSS
        # calls a guid a permalink unless told otherwise); fastfeedparser only a guid
        # that is a URL: "may" or "7" is no link to resolve.
        link = None
    guid, link = guid_and_link(text(entry.get("id")) or None, link, base)
    return FeedEntry(
        guid=guid,
        link=link,
        title=_detail_html(entry, "title"),
        summary=summary,
        content=content,
        author=as_html(text(entry.get("author")), "text/plain"),
        published=(
            datetime.fromtimestamp(calendar.timegm(published), tz=UTC) if published else None
        ),
        language=feed_language,
    )


def _detail_html(entry: Mapping[str, Any], key: str) -> str:
    detail = entry.get(f"{key}_detail")
    kind = detail.get("type") if isinstance(detail, Mapping) else None
    return as_html(text(entry.get(key)), kind)


