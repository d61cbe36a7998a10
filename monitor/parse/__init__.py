"""Stage *parse*: bytes of a feed -> ``ParsedFeed`` of ``FeedEntry`` records.

Formats: RSS 0.9x/1.0/2.0 and Atom (``fast``: fastfeedparser for well-formed
feeds; ``classic``: feedparser for the broken-but-readable rest), JSON Feed
(``jsonfeed``). Before any parser sees a body it is refused if it declares XML
entities (in any encoding a parser would detect, or the one it declares) or is
EBCDIC, and its encoding is settled first (a byte order mark decides; valid UTF-8
under a single-byte declaration is UTF-8) and repaired where its bytes declare
nothing (``encoding``): the entity check and both parsers read the same text.

This stage trusts nothing it reads and cleans nothing: every text field leaves
it as HTML (plain text escaped) for ``normalise`` to turn into text. Item links
leave it absolute (``fields.guid_and_link``); an item's date comes from its date
elements only (never from its guid), else it has none. A body that
is not a feed (empty, HTML, a login page) is a ``ParseError`` saying so, with the
content type and the first words.
"""

from __future__ import annotations

import re

from monitor.errors import ParseError
from monitor.parse.classic import parse_with_feedparser
from monitor.parse.encoding import (
    EBCDIC_START,
    declared_encoding,
    encoding_is_known,
    recover_undeclared,
    settle_encoding,
)
from monitor.parse.fast import parse_fast
from monitor.parse.jsonfeed import parse_json_feed
from monitor.records import ParsedFeed

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
    final_url: str | None = None,
) -> ParsedFeed:
    """Parse one fetched body; ``ParseError`` names the source and says why it is not a feed.

    Relative item links are made absolute against ``final_url`` (where the body came
    from after redirects; ``url`` when not given), or, when that is no http(s) URL (a
    feed read from a file), against the link the feed gives for itself.
    """
    feed_url = final_url or url
    # The header as received names the content type in messages; parsers get the settled one.
    body, settled_content_type = settle_encoding(body, content_type)
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:
        kind = f" (content type {content_type})" if content_type else ""
        raise ParseError(source, url, f"not a feed: the body is empty{kind}")
    if stripped.startswith(b"{") or (content_type or "").split(";")[0].strip().endswith("json"):
        try:
            return parse_json_feed(stripped, max_items, feed_url)
        except ValueError as exc:
            raise ParseError(source, url, _not_a_feed(stripped, content_type, str(exc))) from None
    if body.startswith(EBCDIC_START):
        raise ParseError(source, url, "refused: an EBCDIC-encoded document")
    if _declares_entities(body):
        raise ParseError(source, url, "refused: the document declares XML entities")
    known = encoding_is_known(body)
    if not known:  # rare: asked again only of a body recovery has changed
        recovered = recover_undeclared(body, content_type)
        known = recovered is not body and encoding_is_known(recovered)
        body = recovered
    fast_reason = "fast parser skipped: undeclared encoding that is not UTF-8"
    if known:
        try:
            return parse_fast(body, max_items, feed_url)
        except ValueError as exc:
            fast_reason = str(exc)
        except Exception as exc:  # lxml can raise its own errors on odd input
            fast_reason = f"{type(exc).__name__}: {exc}"
    parsed = parse_with_feedparser(body, settled_content_type, max_items, feed_url)
    if isinstance(parsed, ParsedFeed):
        return parsed
    raise ParseError(source, url, _not_a_feed(body, content_type, fast_reason, parsed))


def _declares_entities(body: bytes) -> bool:
    """Whether the body declares XML entities, read as a parser would read it: in the
    encodings parsers detect from the first bytes, and in the encoding it declares
    (a UTF-7 body can spell ``<`` as ``+ADw-``)."""
    if any(pattern in body for pattern in _ENTITY_DECLARATIONS):
        return True
    encoding = declared_encoding(body)
    if encoding is None or encoding in ("utf-8", "utf8"):
        return False
    try:
        return "<!ENTITY" in body.decode(encoding, "replace")
    # An encoding Python does not know, or one that is no text encoding a document can
    # be in ("idna", "undefined" refuse to decode "with replacement"): no parser here
    # reads it either.
    except (LookupError, UnicodeError):
        return False


def _not_a_feed(body: bytes, content_type: str | None, *reasons: str) -> str:
    words = " ".join(re.sub(rb"<[^>]*>", b" ", body[:2000]).decode("utf-8", "replace").split())
    kind = f"content type {content_type}" if content_type else "no content type"
    return f"not a feed ({kind}); it begins: {words[:80]!r}; {'; '.join(reasons)}"


__all__ = ["parse_feed"]
