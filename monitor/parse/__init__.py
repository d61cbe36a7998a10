"""Stage *parse*: bytes of a feed -> ``ParsedFeed`` of ``FeedEntry`` records.

Formats: RSS 0.9x/1.0/2.0 and Atom (``fast``: fastfeedparser for well-formed
feeds; ``classic``: feedparser for the broken-but-readable rest), JSON Feed
(``jsonfeed``). Before any parser sees a body it is refused if it declares XML
entities (in any encoding a parser would detect), and a declaration of Latin-1
on a body that is valid UTF-8 is corrected.

This stage trusts nothing it reads and cleans nothing: every text field leaves
it as HTML (plain text escaped) for ``normalise`` to turn into text. A body that
is not a feed (empty, HTML, a login page) is a ``ParseError`` saying so, with the
content type and the first words.
"""

from __future__ import annotations

import re

from monitor.errors import ParseError
from monitor.parse.classic import parse_with_feedparser
from monitor.parse.fast import parse_fast
from monitor.parse.jsonfeed import parse_json_feed
from monitor.records import ParsedFeed

# "<!ENTITY" in every encoding an XML parser detects on its own (a UTF-16 document
# must not slip past an ASCII-only check).
_ENTITY_DECLARATIONS = tuple(
    "<!ENTITY".encode(encoding)
    for encoding in ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)
_DECLARATION = re.compile(rb"^(\s*<\?xml[^>]*?encoding=[\"'])([A-Za-z0-9._-]+)([\"'])")
_SINGLE_BYTE = {b"iso-8859-1", b"latin-1", b"latin1", b"windows-1252", b"cp1252", b"us-ascii",
                b"ascii"}


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
        return parse_json_feed(source, url, stripped, max_items)
    if any(pattern in body for pattern in _ENTITY_DECLARATIONS):
        raise ParseError(source, url, "refused: the document declares XML entities")
    body = _repair_declared_encoding(body)
    fast_reason = "fast parser skipped: undeclared encoding that is not UTF-8"
    if _encoding_is_known(body):
        try:
            return parse_fast(body, max_items)
        except ValueError as exc:
            fast_reason = str(exc)
        except Exception as exc:  # lxml can raise its own errors on odd input
            fast_reason = f"{type(exc).__name__}: {exc}"
    parsed = parse_with_feedparser(body, content_type, max_items)
    if isinstance(parsed, ParsedFeed):
        return parsed
    raise ParseError(source, url, _not_a_feed(body, content_type, fast_reason, parsed))


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


def _encoding_is_known(body: bytes) -> bool:
    """The fast parser reads bytes as UTF-8 unless told otherwise; feedparser sniffs.

    So the fast path takes a body that declares a non-UTF-8 encoding, starts with a
    byte order mark, or is valid UTF-8; the rest (undeclared windows-1252, ...) goes
    to feedparser, whose encoding detection reads it correctly.
    """
    if body.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return True
    match = _DECLARATION.match(body)
    if match and match.group(2).lower() not in (b"utf-8", b"utf8"):
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _not_a_feed(body: bytes, content_type: str | None, fast: str, classic: str) -> str:
    words = " ".join(re.sub(rb"<[^>]*>", b" ", body[:2000]).decode("utf-8", "replace").split())
    kind = f"content type {content_type}" if content_type else "no content type"
    return f"not a feed ({kind}); it begins: {words[:80]!r}; {fast}; {classic}"


__all__ = ["parse_feed"]
