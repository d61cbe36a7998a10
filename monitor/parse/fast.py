"""RSS/Atom through fastfeedparser (lxml): the fast path for well-formed feeds.

About 35 times faster than feedparser here, and safe on the hostile inputs
measured (no entity expansion, no external entity or file read). It raises
``ValueError`` with a reason for what it cannot take; the caller then tries
feedparser, which recovers some broken-but-readable feeds. Its result is a
plain dict with its own key names: this module is the one place that maps it.
The mapping must give the same ``FeedEntry`` records as ``classic`` for the same
feed (a test holds both to it), or an article's identity would depend on which
parser happened to read it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import fastfeedparser
from lxml import etree

from monitor.parse.fields import as_html, iso_datetime, text
from monitor.records import FeedEntry, ParsedFeed


def parse_fast(body: bytes, max_items: int) -> ParsedFeed:
    """Parse a well-formed feed; ``ValueError`` (with its reason) for anything else."""
    _check_well_formed(body)
    result = fastfeedparser.parse(body, include_tags=False, include_media=False,
                                  include_enclosures=False)
    entries = list(result.get("entries") or [])
    feed = result.get("feed") or {}
    language = text(feed.get("language")) or _declared_language(body)
    return ParsedFeed(
        title=text(feed.get("title")),
        entries=tuple(_entry(e, language) for e in entries[:max_items]),
        skipped=max(0, len(entries) - max_items),
    )


_STRICT = etree.XMLParser(recover=False, resolve_entities=False, no_network=True,
                          load_dtd=False, huge_tree=False)


def _check_well_formed(body: bytes) -> None:
    """fastfeedparser reads broken XML in lxml's recover mode and silently drops text
    (``Tom & Jerry`` becomes ``Tom  Jerry``; ``Broken <br> tag`` becomes ``Broken``).
    Only well-formed documents take the fast path; feedparser reads the rest whole."""
    try:
        etree.fromstring(body, _STRICT)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None


_LANGUAGE = re.compile(rb"<(?:dc:)?language>\s*([A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*)\s*<")


def _declared_language(body: bytes) -> str | None:
    """The channel's <language> (RSS) or <dc:language> (RSS 1.0), which fastfeedparser skips."""
    head = body[: body.find(b"<item")] if b"<item" in body else body[:65536]
    match = _LANGUAGE.search(head)
    return match.group(1).decode("ascii").lower() if match else None


_TYPES = {"text": "text/plain", "html": "text/html", "xhtml": "application/xhtml+xml"}


def _entry(entry: Mapping[str, Any], feed_language: str | None) -> FeedEntry:
    description = text(entry.get("description"))
    # fastfeedparser repeats the description as content when an item has none;
    # feedparser does not: drop the copy so both give the same article.
    contents = [c for c in entry.get("content") or []
                if isinstance(c, Mapping) and text(c.get("value")).strip() != description.strip()]
    content = "\n".join(
        as_html(text(c.get("value")), _TYPES.get(text(c.get("type")), c.get("type")))
        for c in contents
    )
    summary = as_html(description, None)
    return FeedEntry(
        guid=text(entry.get("id")) or None,
        link=text(entry.get("link")) or None,
        title=as_html(text(entry.get("title")), None),
        summary=summary,
        content=content,
        author=as_html(text(entry.get("author")), "text/plain"),
        published=iso_datetime(entry.get("published") or entry.get("updated")),
        language=feed_language,
    )
