"""What a feed's bytes say about their own encoding, and repairs where they lie.

Pure functions on the fetched body, applied before any parser sees it:
``settle_encoding`` (a byte order mark, or valid UTF-8 under a single-byte
declaration: the body becomes UTF-8 and says so), ``recover_undeclared`` (bytes that
are not UTF-8 and say nothing else: stray invalid bytes in UTF-8, or undeclared
windows-1251), ``declared_encoding`` (for the entity check, which must look at the
text in the encoding a parser would use).
"""

from __future__ import annotations

import functools
import re

DECLARATION = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])([A-Za-z0-9._-]+)([\"'])")
_UTF8 = ("utf-8", "utf8")
# UTF-32 first: its little-endian mark begins with UTF-16's.
_BYTE_ORDER_MARKS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_HIGH_BYTES = bytes(range(0x80, 0x100))
# "<?xm" in EBCDIC: how an XML parser recognises an EBCDIC document (XML 1.0, appendix F).
EBCDIC_START = b"\x4c\x6f\xa7\x94"
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)[\"']?", re.IGNORECASE)
# Three or more bytes of windows-1251's letter range in a row: Cyrillic words. Western
# text in windows-1252 has its accented letters (same byte range) one at a time.
_CYRILLIC_RUN = re.compile(rb"[\xc0-\xff\xa8\xb8]{3,}")
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")


def declared_encoding(body: bytes) -> str | None:
    """The encoding named in the body's XML declaration (ASCII-compatible bodies)."""
    match = DECLARATION.match(body)
    return match.group(2).decode("ascii").lower() if match else None


def http_charset(content_type: str | None) -> str | None:
    """The charset named in a Content-Type header."""
    match = _CHARSET.search(content_type or "")
    return match.group(1).lower().replace("_", "-") if match else None


def settle_encoding(body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """The body and content type, both saying UTF-8, where the bytes decide the encoding
    against the declarations; otherwise both unchanged.

    A byte order mark decides before the XML declaration and the HTTP charset (XML 1.0
    appendix F; WHATWG's encoding sniffing agrees). Without one, valid UTF-8 with
    multi-byte sequences under a declaration of a single-byte encoding (windows-1251,
    Latin-1, ...) is UTF-8: publishers copy declarations around, and such sequences
    practically never occur in real single-byte text, so believing the bytes avoids
    "ZÃ©lensky". The whole body must be valid UTF-8: windows-1252 text has a few
    UTF-8 lookalikes of its own. Saying so in both declarations makes every reader
    agree: lxml follows the XML declaration, feedparser the HTTP charset, and the
    entity check the declaration.
    """
    utf8 = _utf8_by_byte_order_mark(body)
    if utf8 is None:
        if not _utf8_under_single_byte_declaration(body, content_type):
            return body, content_type
        utf8 = body
    match = DECLARATION.match(utf8)
    if match and match.group(2).lower() not in (b"utf-8", b"utf8"):
        utf8 = match.group(1) + b"utf-8" + match.group(3) + utf8[match.end() :]
    return utf8, _CHARSET.sub("charset=utf-8", content_type) if content_type else None


def _utf8_by_byte_order_mark(body: bytes) -> bytes | None:
    """The body in UTF-8 without its byte order mark; None without one. Bytes the mark's
    encoding cannot read become U+FFFD: the mark still decides."""
    for mark, encoding in _BYTE_ORDER_MARKS:
        if body.startswith(mark):
            return body[len(mark) :].decode(encoding, "replace").encode("utf-8")
    return None


def _utf8_under_single_byte_declaration(body: bytes, content_type: str | None) -> bool:
    declared = {declared_encoding(body), http_charset(content_type)} - {None, *_UTF8}
    if not declared or body.isascii():
        return False
    if not all(_reads_each_high_byte_alone(name) for name in declared if name):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _reads_each_high_byte_alone(encoding: str) -> bool:
    """Whether an encoding reads every byte above 0x7f on its own, as one character or
    an error: single-byte encodings, and 7-bit ones (UTF-7, ISO-2022) that have no such
    bytes at all. Not multi-byte ones (Shift_JIS, GBK, UTF-16), whose pairs of high bytes
    can look like UTF-8 too: whether to believe the bytes there is not settled here."""
    try:
        return len(_HIGH_BYTES.decode(encoding, "replace")) == len(_HIGH_BYTES)
    # An encoding Python does not know, or no text encoding ("idna", "undefined").
    except (LookupError, UnicodeError):
        return False


def encoding_is_known(body: bytes) -> bool:
    """The fast parser reads bytes as UTF-8 unless told otherwise; feedparser sniffs.

    So the fast path takes a body (byte order marks settled) that declares a non-UTF-8
    encoding or is valid UTF-8; the rest (undeclared windows-1252, ...) goes to
    feedparser, whose encoding detection reads it correctly.
    """
    match = DECLARATION.match(body)
    if match and match.group(2).lower() not in (b"utf-8", b"utf8"):
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def recover_undeclared(body: bytes, content_type: str | None) -> bytes:
    """A body that is not valid UTF-8 and declares nothing else (or wrongly UTF-8),
    as UTF-8 where its bytes tell what it is; otherwise unchanged.

    Mostly valid UTF-8 with a few stray bytes is UTF-8 (the stray bytes become U+FFFD:
    read as windows-1252 instead, every other non-ASCII letter would turn to
    mojibake). Mostly: more valid sequences than stray bytes, since windows-1252
    text has its own lookalikes ("ß“" is valid UTF-8) beside its stray bytes. Runs
    of windows-1251 letters are Cyrillic. The rest is left to
    feedparser, which reads it as windows-1252. A charset in the HTTP header is
    feedparser's to honour, so such a body is left alone too.
    """
    if http_charset(content_type) not in (None, *_UTF8):
        return body
    text = body.decode("utf-8", "replace")
    stray = text.count("\ufffd")
    multibyte = sum(1 for char in text if char > "\x7f") - stray
    if multibyte > stray:
        return text.encode("utf-8")
    runs = sum(len(run) for run in _CYRILLIC_RUN.findall(body))
    if runs * 2 > len(_HIGH_BYTE.findall(body)):
        return body.decode("cp1251", "replace").encode("utf-8")
    return body
