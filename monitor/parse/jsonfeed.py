"""JSON Feed 1.0/1.1 -> ``ParsedFeed``. Pure; ``ValueError`` says why a body is not one
(the caller reports it as "not a feed", with the content type and the first words)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from monitor.parse.fields import (
    as_html,
    guid_and_link,
    iso_datetime,
    link_base,
    newest,
    text,
)
from monitor.records import FeedEntry, ParsedFeed


def parse_json_feed(body: bytes, max_items: int, feed_url: str | None = None) -> ParsedFeed:
    """Relative item URLs resolve against ``feed_url`` (``fields.link_base``; the feed's
    own link is its ``home_page_url``)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"invalid JSON ({exc})") from None
    except RecursionError:  # "[[[[…": the decoder recurses once per level
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise ValueError("JSON without a JSON Feed version")
    items = document.get("items")
    if not isinstance(items, list):
        raise ValueError("JSON Feed without an items list")
    language = text(document.get("language")) or None
    base = link_base(feed_url, text(document.get("home_page_url")))
    def published(item: object) -> datetime | None:
        return _entry(item, language, base).published if isinstance(item, dict) else None

    entries = [_entry(item, language, base) for item in newest(items, max_items, published)
               if isinstance(item, dict)]
    return ParsedFeed(
        title=text(document.get("title")),
        entries=tuple(entries),
        skipped=max(0, len(items) - max_items),
    )


def _entry(item: Mapping[str, Any], feed_language: str | None, base: str | None) -> FeedEntry:
    authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict)
                                      else [])
    author = ", ".join(text(a.get("name")) for a in authors if isinstance(a, dict))
    content = text(item.get("content_html")) or as_html(text(item.get("content_text")),
                                                        "text/plain")
    guid, link = guid_and_link(text(item.get("id")) or None,
                               text(item.get("url")) or text(item.get("external_url")) or None,
                               base)
    return FeedEntry(
        guid=guid,
        link=link,
        title=as_html(text(item.get("title")), "text/plain"),
        summary=as_html(text(item.get("summary")), "text/plain"),
        content=content,
        author=as_html(author, "text/plain"),
        published=iso_datetime(item.get("date_published") or item.get("date_modified")),
        language=text(item.get("language")) or feed_language,
    )
