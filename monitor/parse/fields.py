"""Small field conversions shared by every feed format's mapping. Pure."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

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
