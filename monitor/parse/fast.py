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

from monitor.parse.fields import (
    as_html,
    guid_and_link,
    is_relative,
    iso_datetime,
    link_base,
    newest,
    text,
)
from monitor.records import FeedEntry, ParsedFeed


def parse_fast(body: bytes, max_items: int, feed_url: str | None = None) -> ParsedFeed:
    """Parse a well-formed feed; ``ValueError`` (with its reason) for anything else.
    Relative item links resolve against ``feed_url`` (``fields.link_base``)."""
    root = _check_well_formed(body)
    result = fastfeedparser.parse(body, include_tags=False, include_media=False,
                                  include_enclosures=False)
    raw = list(result.get("entries") or [])
    feed = result.get("feed") or {}
    language = text(feed.get("language")) or _declared_language(body)
    base = link_base(feed_url, text(feed.get("link")))
    undated = (_guids_of_undated_items(root) if any(map(_may_be_dated_by_guid, raw))
               else frozenset())

    def mapped(entry: Mapping[str, Any]) -> FeedEntry:
        return _entry(entry, language, base, undated)

    entries = newest(raw, max_items, lambda entry: mapped(entry).published)
    if b"xml:base" in body and any(is_relative(text(e.get("link"))) for e in entries):
        # fastfeedparser ignores xml:base; feedparser applies it.
        raise ValueError("relative item links under xml:base")
    return ParsedFeed(
        title=text(feed.get("title")),
        entries=tuple(map(mapped, entries)),
        skipped=max(0, len(raw) - max_items),
    )


_STRICT = etree.XMLParser(recover=False, resolve_entities=False, no_network=True,
                          load_dtd=False, huge_tree=False)


def _check_well_formed(body: bytes) -> etree._Element:
    """fastfeedparser reads broken XML in lxml's recover mode and silently drops text
    (``Tom & Jerry`` becomes ``Tom  Jerry``; ``Broken <br> tag`` becomes ``Broken``).
    Only well-formed documents take the fast path; feedparser reads the rest whole."""
    try:
        return etree.fromstring(body, _STRICT)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None


# The elements fastfeedparser reads an RSS item's publication time from: pubDate, Atom's
# published, dcterms:issued, dc:date (in any namespace).
_PUBLICATION_ELEMENTS = ("{*}pubDate", "{*}pubdate", "{*}published", "{*}issued", "{*}date")


def _guids_of_undated_items(root: etree._Element) -> frozenset[str]:
    """The guids of RSS items without a publication time element.

    fastfeedparser dates such an item by its guid when the guid reads as a date to
    its lenient date parser (guid ``7`` becomes the 7th of this month, ``may`` May
    26): the item would look days old and never alert. Its entries do not say where
    a date came from, so the document says which items have none. A guid shared by a
    dated item is left alone. (lxml finds the named elements itself: looking at every
    child of every item from Python cost a quarter of the parse.)"""
    guids = [guid for guid in root.iter("{*}guid") if guid.text and not guid.text.isspace()]
    if not guids:  # Atom, and RSS without guids: nothing to look for
        return frozenset()
    dated_items = {element.getparent() for element in root.iter(*_PUBLICATION_ELEMENTS)
                   if element.text and not element.text.isspace()}
    dated: set[str] = set()
    undated: set[str] = set()
    for guid in guids:
        (dated if guid.getparent() in dated_items else undated).add((guid.text or "").strip())
    return frozenset(undated - dated)


_LANGUAGE = re.compile(rb"<(?:dc:)?language>\s*([A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*)\s*<")


def _declared_language(body: bytes) -> str | None:
    """The channel's <language> (RSS) or <dc:language> (RSS 1.0), which fastfeedparser skips."""
    head = body[: body.find(b"<item")] if b"<item" in body else body[:65536]
    match = _LANGUAGE.search(head)
    return match.group(1).decode("ascii").lower() if match else None


def _may_be_dated_by_guid(entry: Mapping[str, Any]) -> bool:
    """fastfeedparser reads a date from a guid only when the guid is no http(s) URL."""
    guid = text(entry.get("id"))
    return bool(entry.get("published")) and not guid.startswith(("http://", "https://"))


_TYPES = {"text": "text/plain", "html": "text/html", "xhtml": "application/xhtml+xml"}


def _entry(entry: Mapping[str, Any], feed_language: str | None, base: str | None,
           undated_guids: frozenset[str]) -> FeedEntry:
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
    given_guid = text(entry.get("id")).strip()
    guid, link = guid_and_link(given_guid or None, text(entry.get("link")) or None, base)
    # An undated item's "published" may be its guid read as a date: only its updated
    # time, if it has one, is a date the feed gave.
    published = (entry.get("updated") if given_guid in undated_guids
                 else entry.get("published") or entry.get("updated"))
    return FeedEntry(
        guid=guid,
        link=link,
        title=as_html(text(entry.get("title")), None),
        summary=summary,
        content=content,
        author=as_html(text(entry.get("author")), "text/plain"),
        published=iso_datetime(published),
        language=feed_language,
    )
