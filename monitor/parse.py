"""Stage *parse*: bytes of a feed -> ``ParsedFeed`` of ``FeedEntry`` records.

Formats: RSS 0.9x/1.0/2.0 and Atom through feedparser, JSON Feed 1.0/1.1 here.

feedparser is kept behind this one module and is only ever given a file-like
object holding the body we fetched: given bytes or a str that names a path or a
URL, it would open or fetch it itself (a body reading ``/dev/zero`` would read
until memory runs out). Documents that declare XML entities are refused before
any parser sees them: feedparser's lenient fallback expands a flat entity
referenced many times into hundreds of megabytes.

This stage trusts nothing it reads and cleans nothing: it only maps fields.
Cleaning text is the next stage's job (``normalise``).
"""

from __future__ import annotations

import calendar
import html
import io
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser

from monitor.errors import ParseError
from monitor.records import FeedEntry, ParsedFeed

# "<!ENTITY" in every encoding an XML parser detects on its own (a UTF-16 document
# must not slip past an ASCII-only check).
_ENTITY_DECLARATIONS = tuple(
    "<!ENTITY".encode(encoding)
    for encoding in ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)


def parse_feed(
    source: str,
    url: str,
    body: bytes,
    content_type: str | None = None,
    max_items: int = 1000,
) -> ParsedFeed:
    """Parse one fetched body; ``ParseError`` names the source and says why it is not a feed."""
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:
        raise ParseError(source, url, "not a feed: the body is empty")
    if stripped.startswith(b"{") or (content_type or "").split(";")[0].strip().endswith("json"):
        return _parse_json_feed(source, url, stripped, max_items)
    if any(pattern in body for pattern in _ENTITY_DECLARATIONS):
        raise ParseError(source, url, "refused: the document declares XML entities")
    body = _repair_declared_encoding(body)
    headers = {"content-type": content_type} if content_type else {}
    result = feedparser.parse(io.BytesIO(body), response_headers=headers)
    entries = list(result.get("entries") or [])
    if not result.get("version") and not entries:
        raise ParseError(source, url, _not_a_feed_reason(body, content_type, result))
    feed = result.get("feed") or {}
    language = _text(feed.get("language")) or None
    mapped = [_from_feedparser(entry, language) for entry in entries[:max_items]]
    return ParsedFeed(
        title=_text(feed.get("title")),
        entries=tuple(mapped),
        skipped=max(0, len(entries) - max_items),
    )


_DECLARATION = re.compile(rb"^(\s*<\?xml[^>]*?encoding=[\"'])([A-Za-z0-9._-]+)([\"'])")
_SINGLE_BYTE = {b"iso-8859-1", b"latin-1", b"latin1", b"windows-1252", b"cp1252", b"us-ascii",
                b"ascii"}


def _repair_declared_encoding(body: bytes) -> bytes:
    """A feed that says Latin-1 but is valid UTF-8 (with non-ASCII) is UTF-8.

    Publishers copy XML declarations around; valid multi-byte UTF-8 sequences almost
    never occur in real Latin-1 text, so believing the bytes avoids "Zélensky".
    """
    match = _DECLARATION.match(body)
    if not match or match.group(2).lower() not in _SINGLE_BYTE or body.isascii():
        return body
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    return match.group(1) + b"utf-8" + match.group(3) + body[match.end() :]


def _from_feedparser(entry: Mapping[str, Any], feed_language: str | None) -> FeedEntry:
    contents = entry.get("content") or []
    content = "\n".join(_html(_text(c.get("value")), c.get("type")) for c in contents
                        if isinstance(c, Mapping))
    summary = _detail_html(entry, "summary")
    if summary and summary == content:
        summary = ""
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    return FeedEntry(
        guid=_text(entry.get("id")) or None,
        link=_text(entry.get("link")) or None,
        title=_detail_html(entry, "title"),
        summary=summary,
        content=content,
        author=html.escape(_text(entry.get("author")), quote=False),
        published=(
            datetime.fromtimestamp(calendar.timegm(published), tz=UTC) if published else None
        ),
        language=feed_language,
    )


def _detail_html(entry: Mapping[str, Any], key: str) -> str:
    detail = entry.get(f"{key}_detail")
    kind = detail.get("type") if isinstance(detail, Mapping) else None
    return _html(_text(entry.get(key)), kind)


def _html(value: str, kind: object) -> str:
    """Every text field leaves this stage as HTML: plain text is escaped."""
    return html.escape(value, quote=False) if kind == "text/plain" else value


def _parse_json_feed(source: str, url: str, body: bytes, max_items: int) -> ParsedFeed:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(source, url, f"not a feed: invalid JSON ({exc})") from None
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise ParseError(source, url, "not a feed: JSON without a JSON Feed version")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError(source, url, "not a feed: JSON Feed without an items list")
    language = _text(document.get("language")) or None
    entries = [
        _from_json_item(item, language) for item in items[:max_items] if isinstance(item, dict)
    ]
    return ParsedFeed(
        title=_text(document.get("title")),
        entries=tuple(entries),
        skipped=max(0, len(items) - max_items),
    )


def _from_json_item(item: Mapping[str, Any], feed_language: str | None) -> FeedEntry:
    authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict)
                                      else [])
    author = ", ".join(_text(a.get("name")) for a in authors if isinstance(a, dict))
    content = _text(item.get("content_html")) or _html(_text(item.get("content_text")),
                                                        "text/plain")
    return FeedEntry(
        guid=_text(item.get("id")) or None,
        link=_text(item.get("url")) or _text(item.get("external_url")) or None,
        title=_html(_text(item.get("title")), "text/plain"),
        summary=_html(_text(item.get("summary")), "text/plain"),
        content=content,
        author=_html(author, "text/plain"),
        published=_iso_datetime(item.get("date_published") or item.get("date_modified")),
        language=_text(item.get("language")) or feed_language,
    )


def _iso_datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _not_a_feed_reason(body: bytes, content_type: str | None, result: Mapping[str, Any]) -> str:
    words = " ".join(re.sub(rb"<[^>]*>", b" ", body[:2000]).decode("utf-8", "replace").split())
    kind = f"content type {content_type}" if content_type else "no content type"
    problem = result.get("bozo_exception")
    detail = f"; parser said: {problem}" if problem else ""
    return f"not a feed ({kind}); it begins: {words[:80]!r}{detail}"
