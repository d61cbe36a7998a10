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

from monitor.parse.fields import as_html, text
from monitor.records import FeedEntry, ParsedFeed


def parse_with_feedparser(body: bytes, content_type: str | None,
                          max_items: int) -> ParsedFeed | str:
    """The feed, or the reason it is not one."""
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
    return ParsedFeed(
        title=text(feed.get("title")),
        entries=tuple(_entry(entry, language) for entry in entries[:max_items]),
        skipped=max(0, len(entries) - max_items),
    )


def _entry(entry: Mapping[str, Any], feed_language: str | None) -> FeedEntry:
    contents = entry.get("content") or []
    content = "\n".join(as_html(text(c.get("value")), c.get("type")) for c in contents
                        if isinstance(c, Mapping))
    summary = _detail_html(entry, "summary")
    if summary and summary == content:
        summary = ""
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    return FeedEntry(
        guid=text(entry.get("id")) or None,
        link=text(entry.get("link")) or None,
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


