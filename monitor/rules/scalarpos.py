"""Where a character of a YAML string scalar's value was written in its file.

A query error has an offset into the scalar's *value*; the author needs the line
and column in the *file*. Plain, single-quoted and block scalars hold their value
as a subsequence of their source (folding turns line breaks and indentation into
spaces), so a greedy alignment finds every character. A double-quoted scalar does
not: ``\\u00e9`` is six source characters for one value character, and ``\\n`` is a
line break written as two. For those the raw source is decoded the way PyYAML's
scanner decodes it, remembering where each value character came from.

Knows YAML source text and positions; nothing about rules.
"""

from __future__ import annotations

from monitor.rules.yamlsource import Pos, YamlDocument, YScalar

# The one-character escapes of YAML 1.1 double-quoted scalars, as PyYAML reads them.
_ESCAPES = {
    "0": "\0", "a": "\x07", "b": "\x08", "t": "\t", "\t": "\t", "n": "\n", "v": "\x0b",
    "f": "\x0c", "r": "\r", "e": "\x1b", " ": " ", '"': '"', "\\": "\\", "/": "/",
    "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029",
}
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}
_BREAKS = "\r\n\x85\u2028\u2029"
_BLANKS = " \t"


def scalar_offset_position(document: YamlDocument, scalar: YScalar, offset: int) -> Pos:
    """The file position of character ``offset`` of a string scalar's value.

    An offset at (or past) the end of the value is the position just after its last
    character (the closing quote of a quoted scalar). Where the source cannot be
    mapped exactly, the answer is the scalar's own start, so an error is never
    placed somewhere it was not written.
    """
    if scalar.style == '"':
        index = _double_quoted_index(document.text, scalar, offset)
    else:
        index = _aligned_index(document.text, scalar, offset)
    return scalar.pos if index is None else index_to_pos(document.text, index)


def index_to_pos(text: str, index: int) -> Pos:
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return Pos(line, col, index)


def _aligned_index(source: str, scalar: YScalar, offset: int) -> int | None:
    """Align the value greedily with its source, which holds it as a subsequence."""
    value = scalar.value if isinstance(scalar.value, str) else str(scalar.value)
    i = scalar.pos.index
    if scalar.style == "'":
        i += 1
    elif scalar.style in ("|", ">"):
        newline = source.find("\n", i)
        i = newline + 1 if newline >= 0 else i
    limit = scalar.end.index
    for k in range(min(offset, len(value))):
        c = value[k]
        j = i
        while j < limit and source[j] != c and not (c.isspace() and source[j].isspace()):
            j += 1
        if j >= limit:
            return None
        i = j + 1
        if c.isspace():
            while i < limit and source[i].isspace() and (k + 1 >= len(value)
                                                        or not value[k + 1].isspace()):
                i += 1
    return i


def _double_quoted_index(source: str, scalar: YScalar, offset: int) -> int | None:
    value = scalar.value if isinstance(scalar.value, str) else str(scalar.value)
    closing = scalar.end.index - 1
    if source[closing:closing + 1] != '"':
        return None
    decoded = _decode_double_quoted(source, scalar.pos.index + 1, closing)
    if decoded is None or "".join(c for c, _ in decoded) != value:
        return None
    return decoded[offset][1] if offset < len(decoded) else closing


def _decode_double_quoted(source: str, start: int, end: int) -> list[tuple[str, int]] | None:
    """Each value character of ``source[start:end]`` with the index it was written at.

    Follows PyYAML's scanner: escapes (``\\"``, ``\\\\``, ``\\n``, ``\\xXX``, ``\\uXXXX``,
    ``\\UXXXXXXXX``, ...), an escaped line break joining lines, and folding: blanks
    before a line break are dropped, one break between lines becomes a space, and
    each further (empty) line one line break. Folded characters are placed at the
    break they stand for, an escape at its backslash. ``None`` if the text is not
    what the scanner would have accepted.
    """
    out: list[tuple[str, int]] = []
    i = start
    while i < end:
        c = source[i]
        if c == "\\":
            nxt = source[i + 1] if i + 1 < end else ""
            if nxt in _ESCAPES:
                out.append((_ESCAPES[nxt], i))
                i += 2
            elif nxt in _HEX_DIGITS:
                digits = source[i + 2:i + 2 + _HEX_DIGITS[nxt]]
                if len(digits) != _HEX_DIGITS[nxt] or not _is_hex(digits):
                    return None
                out.append((chr(int(digits, 16)), i))
                i += 2 + len(digits)
            elif nxt and nxt in _BREAKS:
                i, breaks = _line_breaks(source, _after_break(source, i + 1), end)
                out.extend(breaks)
            else:
                return None
        elif c in _BLANKS or c in _BREAKS:
            blank = i
            while i < end and source[i] in _BLANKS:
                i += 1
            if i < end and source[i] in _BREAKS:
                first = source[i]
                at = i
                i, breaks = _line_breaks(source, _after_break(source, i), end)
                if first in "\u2028\u2029":
                    out.append((first, at))
                elif not breaks:
                    out.append((" ", at))
                out.extend(breaks)
            else:
                out.extend((source[k], k) for k in range(blank, i))
        else:
            out.append((c, i))
            i += 1
    return out


def _line_breaks(source: str, i: int, end: int) -> tuple[int, list[tuple[str, int]]]:
    """Skip indentation and empty lines from ``i``; each empty line is one break."""
    breaks: list[tuple[str, int]] = []
    while True:
        while i < end and source[i] in _BLANKS:
            i += 1
        if i < end and source[i] in _BREAKS:
            breaks.append(("\n" if source[i] in "\r\n\x85" else source[i], i))
            i = _after_break(source, i)
        else:
            return i, breaks


def _after_break(source: str, i: int) -> int:
    return i + 2 if source.startswith("\r\n", i) else i + 1


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)
