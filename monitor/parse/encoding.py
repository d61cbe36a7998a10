"""What a feed's bytes say about their own encoding, and repairs where they lie.

Pure functions on the fetched body, applied before any parser sees it:
``repair_declared_encoding`` (a Latin-1 declaration on valid UTF-8),
``recover_undeclared`` (bytes that are not UTF-8 and say nothing else: stray invalid
bytes in UTF-8, or undeclared windows-1251), ``declared_encoding`` (for the entity
check, which must look at the text in the encoding a parser would use).
"""

from __future__ import annotations

import re

DECLARATION = re.compile(rb"^(\s*<\?xml[^>]*?encoding=[\"'])([A-Za-z0-9._-]+)([\"'])")
_SINGLE_BYTE = {b"iso-8859-1", b"latin-1", b"latin1", b"windows-1252", b"cp1252", b"us-ascii",
                b"ascii"}
_UTF8 = (b"utf-8", b"utf8")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
# "<?xm" in EBCDIC: how an XML parser recognises an EBCDIC document (XML 1.0, appendix F).
EBCDIC_START = b"\x4c\x6f\xa7\x94"
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.IGNORECASE)
# Three or more bytes of windows-1251's letter range in a row: Cyrillic words. Western
# text in windows-1252 has its accented letters (same byte range) one at a time.
_CYRILLIC_RUN = re.compile(rb"[\xc0-\xff\xa8\xb8]{3,}")
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")


def declared_encoding(body: bytes) -> str | None:
    """The encoding named in the body's XML declaration (ASCII-compatible bodies)."""
    match = DECLARATION.match(body)
    return match.group(2).decode("ascii").lower() if match else None


def repair_declared_encoding(body: bytes) -> bytes:
    """A feed that says Latin-1 but is valid UTF-8 (with non-ASCII) is UTF-8.

    Publishers copy XML declarations around; valid multi-byte UTF-8 sequences almost
    never occur in real Latin-1 text, so believing the bytes avoids "ZÃ©lensky".
    """
    match = DECLARATION.match(body)
    if not match or match.group(2).lower() not in _SINGLE_BYTE or body.isascii():
        return body
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    return match.group(1) + b"utf-8" + match.group(3) + body[match.end() :]


def encoding_is_known(body: bytes) -> bool:
    """The fast parser reads bytes as UTF-8 unless told otherwise; feedparser sniffs.

    So the fast path takes a body that declares a non-UTF-8 encoding, starts with a
    byte order mark, or is valid UTF-8; the rest (undeclared windows-1252, ...) goes
    to feedparser, whose encoding detection reads it correctly.
    """
    if body.startswith(_BOMS):
        return True
    match = DECLARATION.match(body)
    if match and match.group(2).lower() not in _UTF8:
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
    charset = _CHARSET.search(content_type or "")
    if charset and charset.group(1).lower().replace("_", "-") not in ("utf-8", "utf8"):
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
