"""Text as the matcher sees it: words with their positions in the raw field text.

A field's raw text is split into words (runs of letters, digits and combining
marks; every other character separates words, so ``long-range`` is the two words
``long range`` and ``Ukraine’s`` is ``ukraine s``). Each word keeps its span in
the raw text (for highlighting and ``rules test --json``), an *exact* form
(Unicode NFKC, for ``{case-sensitive}`` terms) and a *folded* form (NFKC,
case-folded, accents stripped: ``Zélensky`` -> ``zelensky``, ``Straße`` -> ``strasse``).

Pure functions; no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

# \w plus combining marks, so a decomposed "é" (e + U+0301) stays one word.
WORD = re.compile(r"[\w\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


@lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """Case- and accent-insensitive form of a word."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", word).casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


def exact(word: str) -> str:
    """Case-sensitive form of a word (compatibility characters unified, nothing else)."""
    return unicodedata.normalize("NFKC", word)


def split_words(text: str) -> list[str]:
    """The words of a piece of text, as they stand (used for query words too)."""
    return WORD.findall(text)


@dataclass(frozen=True, slots=True)
class Word:
    start: int
    end: int
    exact: str
    folded: str


@dataclass(slots=True)
class FieldText:
    """One field of a document: its raw text and, built on first use, its words."""

    raw: str
    _words: list[Word] | None = field(default=None, repr=False)
    _by_folded: dict[str, list[int]] | None = field(default=None, repr=False)

    @property
    def words(self) -> list[Word]:
        if self._words is None:
            self._words = [
                Word(m.start(), m.end(), exact(m.group()), fold(m.group()))
                for m in WORD.finditer(self.raw)
            ]
        return self._words

    @property
    def positions(self) -> dict[str, list[int]]:
        """Folded word -> the indexes of its occurrences in ``words``."""
        if self._by_folded is None:
            index: dict[str, list[int]] = {}
            for i, word in enumerate(self.words):
                index.setdefault(word.folded, []).append(i)
            self._by_folded = index
        return self._by_folded


# The fields a query can name, and what ``text`` stands for.
FIELDS = ("title", "summary", "content", "author", "url", "source", "lang")
FIELD_ALIASES = {"text": ("summary", "content")}
DEFAULT_FIELDS = ("title", "summary", "content")


def expand_field(name: str) -> tuple[str, ...]:
    return FIELD_ALIASES.get(name, (name,))


class Document:
    """The matchable fields of one article; words are built lazily, once per field."""

    __slots__ = ("fields",)

    def __init__(self, values: dict[str, str]) -> None:
        self.fields = {name: FieldText(values.get(name, "") or "") for name in FIELDS}

    def field(self, name: str) -> FieldText:
        return self.fields[name]
