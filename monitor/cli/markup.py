"""Markup removed from a `rules test` JSON Lines field, with the way back to the raw text.

Articles given as JSON Lines are matched as a reader sees them, like feed text
(tags removed, entities decoded, script and style dropped), but DESIGN.md's
`--json` spans index the raw field text: the string in the input line. So the
plain text keeps, for each of its characters, the raw characters it came from.
Block tags separate words as in ``normalise.html_to_text``; inline tags do not
(``sanc<b>tion</b>s`` is one word).

Pure functions; no I/O.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from monitor.normalise import BLOCK_TAGS, INVISIBLE_TAGS, MARKUP_HINT

_INVISIBLE = "|".join(sorted(INVISIBLE_TAGS))
# A comment, tag or declaration ends with its '>' (a quoted attribute value may hold
# one); without it, it is text, as the HTML parser of feed text reads it: "a<b then"
# is words, not a tag running to the end of the field.
_TOKEN = re.compile(
    r"<!--.*?-->"                                                 # a comment
    rf"|<(?P<hidden>{_INVISIBLE})\b.*?(?:</(?P=hidden)\s*>|\Z)"   # an element nobody sees
    r"|</?(?P<tag>[a-zA-Z][a-zA-Z0-9]*)(?:[^>\"']|\"[^\"]*\"|'[^']*')*>"  # a tag
    r"|<[!?][^>]*>"                                               # a declaration
    r"|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);",     # an entity
    re.DOTALL | re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class PlainText:
    """Text with markup removed; ``origin[i]`` is the raw (start, end) of character ``i``."""

    raw: str
    text: str
    origin: tuple[tuple[int, int], ...] | None  # None: the text is the raw text

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """The raw offsets of the plain-text characters ``start:end``."""
        if self.origin is None:
            return start, end
        if end <= start:  # an empty match (a regex may make one) stays empty
            at = self.origin[start][0] if start < len(self.origin) else len(self.raw)
            return at, at
        return self.origin[start][0], self.origin[end - 1][1]


def without_markup(raw: str) -> PlainText:
    if not MARKUP_HINT.search(raw):
        return PlainText(raw, raw, None)
    pieces: list[str] = []
    origin: list[tuple[int, int]] = []

    def keep(text: str, start: int, end: int, one_to_one: bool) -> None:
        pieces.append(text)
        if one_to_one:
            origin.extend((i, i + 1) for i in range(start, end))
        else:
            origin.extend((start, end) for _ in text)

    at = 0
    for token in _TOKEN.finditer(raw):
        keep(raw[at:token.start()], at, token.start(), True)
        at = token.end()
        if token.group().startswith("&"):
            keep(html.unescape(token.group()), token.start(), token.end(), False)
        elif (token.group("tag") or "").lower() in BLOCK_TAGS or token.group("hidden"):
            keep(" ", token.start(), token.end(), False)  # separates words, as a paragraph does
    keep(raw[at:], at, len(raw), True)
    return PlainText(raw, "".join(pieces), tuple(origin))
