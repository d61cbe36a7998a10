"""Text as the matcher sees it: words with their positions in the raw field text.

A field's raw text is split into words (runs of letters, digits and combining
marks; every other character separates words, so ``long-range`` is the two words
``long range`` and ``Ukraine’s`` is ``ukraine s``). Each word keeps its span in
the raw text (for highlighting and ``rules test --json``), an *exact* form
(Unicode NFKC, for ``{case-sensitive}`` terms) and a *folded* form (NFKC,
case-folded, accents stripped: ``Zélensky`` -> ``zelensky``, ``Straße`` -> ``strasse``).

Speed matters here (every candidate rule of every article looks words up), so a
field keeps its words as plain lists of strings, built on first use, and answers
"where does this word occur" from a per-word cache. Pure ASCII text (most news)
takes a fast path: one byte-translation lower-cases it and blanks every non-word
character, which gives exactly the words and folded forms that ``WORD`` and
``fold`` would. Character offsets are worked out only when a span is reported.
A ``Document`` also keeps the set of all its folded words (``Document.words``):
the presearch reads it, and evaluation uses it to skip terms absent everywhere.

Pure functions and per-document caches; no I/O, nothing shared between documents
except the memoised ``fold``.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

# \w plus combining marks, so a decomposed "é" (e + U+0301) stays one word.
WORD = re.compile(r"[\w\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")

# On ASCII text WORD is [A-Za-z0-9_] and fold() is lower(): byte tables that blank
# every other character (and lower-case, for the folded form) split words exactly.
_ASCII_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_FOLD_ASCII = bytes(
    (c | 0x20 if 65 <= c <= 90 else c) if c in _ASCII_WORD_BYTES else 0x20 for c in range(256)
)
_BLANK_ASCII = bytes(c if c in _ASCII_WORD_BYTES else 0x20 for c in range(256))
_MARK_ASCII = bytes(c if c in _ASCII_WORD_BYTES or c == 0x3F else 0x20 for c in range(256))
_MAX_RUNS = 64  # beyond this many non-ASCII characters, fold word by word
# Separates words when distinct words are joined for a wildcard scan: no folded or
# exact form of a word contains it, and no wildcard pattern matches it.
_SEP = "\x00"


@lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """Case- and accent-insensitive form of a word."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", word).casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


@lru_cache(maxsize=65536)
def exact(word: str) -> str:
    """Case-sensitive form of a word (compatibility characters unified, nothing else)."""
    return unicodedata.normalize("NFKC", word)


def split_words(text: str) -> list[str]:
    """The words of a piece of text, as they stand (used for query words too)."""
    return WORD.findall(text)


def folded_words(raw: str) -> str:
    """The folded forms of the words of ``raw`` separated by white space, for the presearch.

    Every white-space-separated piece of ``fold(w)``, for every word ``w`` of ``raw``,
    is a piece of the result (a folded form may hold a space: a few compatibility
    characters fold to one); the result may hold a few more pieces. ASCII text costs
    one byte translation. Other text gets the same translation, with each non-ASCII
    character blanked, plus the folded words of each run of characters that holds a
    non-ASCII one (a word with an accent lies inside such a run); text with many
    such runs is folded word by word.
    """
    if raw.isascii():
        return raw.encode("ascii").translate(_FOLD_ASCII).decode("ascii")
    marked = raw.replace("?", " ").encode("ascii", "replace")  # "?": a non-ASCII character
    if marked.count(b"?") > _MAX_RUNS:
        return " ".join(set(map(fold, set(WORD.findall(raw)))))
    runs = marked.translate(_MARK_ASCII)  # word characters and "?" kept, the rest blanked
    words: list[str] = []
    at = runs.find(b"?")
    while at >= 0:
        start = runs.rfind(b" ", 0, at) + 1
        end = runs.find(b" ", at)
        end = len(runs) if end < 0 else end
        words.extend(WORD.findall(raw, start, end))
        at = runs.find(b"?", end)
    ascii_words = marked.translate(_FOLD_ASCII).decode("ascii")
    return ascii_words + " " + " ".join(set(map(fold, words)))


@dataclass(frozen=True, slots=True)
class Word:
    start: int
    end: int
    exact: str
    folded: str


@lru_cache(maxsize=65536)
def required_piece(pattern: str) -> str:
    """The longest run of plain word characters in a wildcard pattern's regex, with the
    word separator before it when it starts the pattern: every word the pattern matches
    in full holds it, so text of ``_SEP``-joined words without it has no such word."""
    pieces = pattern.replace("\\w*", "\\").replace("\\w", "\\").split("\\")
    if not all(piece.isalnum() or not piece for piece in pieces):
        return ""  # a character re.escape marked: compared as written, not worth it
    first, longest = pieces[0], max(pieces, key=len)
    return _SEP + first if first and len(first) == len(longest) else longest


@lru_cache(maxsize=4096)
def _scanner(pattern: str, flags: int) -> re.Pattern[str]:
    """A wildcard word pattern, to be found among words joined by ``_SEP``."""
    return re.compile(f"{_SEP}({pattern})(?={_SEP})", flags)


def _indexes_of(words: list[str], word: str) -> list[int]:
    found: list[int] = []
    index = words.index
    i = -1
    try:
        while True:
            i = index(word, i + 1)
            found.append(i)
    except ValueError:
        return found


class FieldText:
    """One field of a document: its raw text and, built on first use, its words."""

    __slots__ = ("_ascii", "_bounds", "_distinct", "_exact", "_folded", "_found", "_joined",
                 "_offsets", "_padded", "_raw_words", "raw")

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self._ascii = raw.isascii()
        self._raw_words: list[str] | None = None
        self._folded: list[str] | None = None
        self._exact: list[str] | None = None
        self._bounds: tuple[list[int], list[int]] | None = None
        self._joined: dict[bool, str] = {}
        self._found: dict[tuple[str, bool], list[int]] = {}
        self._distinct: frozenset[str] | None = None
        self._padded: str | None = None
        self._offsets: dict[str, list[int]] = {}

    def __repr__(self) -> str:
        return f"FieldText({self.raw!r})"

    def _words_as_written(self) -> list[str]:
        if self._raw_words is None:
            self._raw_words = WORD.findall(self.raw)
        return self._raw_words

    @property
    def folded(self) -> list[str]:
        """The folded form of every word, in order."""
        if self._folded is None:
            if self._ascii:
                self._folded = folded_words(self.raw).split()
            else:
                self._folded = list(map(fold, self._words_as_written()))
        return self._folded

    @property
    def exact(self) -> list[str]:
        """The exact (NFKC) form of every word, in order."""
        if self._exact is None:
            if self._ascii:
                blanked = self.raw.encode("ascii").translate(_BLANK_ASCII)
                self._exact = blanked.decode("ascii").split()
            else:
                self._exact = list(map(exact, self._words_as_written()))
        return self._exact

    def forms(self, case_sensitive: bool) -> list[str]:
        return self.exact if case_sensitive else self.folded

    @property
    def ascii(self) -> bool:
        return self._ascii

    def indexes(self, word: str, case_sensitive: bool) -> list[int]:
        """Indexes (ascending) of the words whose folded (or exact) form is ``word``."""
        key = (word, case_sensitive)
        found = self._found.get(key)
        if found is None:
            if not case_sensitive:
                if self._distinct is None:
                    self._distinct = frozenset(self.folded)
                if word not in self._distinct:
                    self._found[key] = found = []
                    return found
            found = self._found[key] = _indexes_of(self.forms(case_sensitive), word)
        return found

    def indexes_of_any(self, words: Iterable[str]) -> list[int]:
        """Indexes (ascending) of the words whose folded form is one of ``words``."""
        found = [self.indexes(w, False) for w in words]
        return sorted(chain.from_iterable(found)) if len(found) > 1 else found[0] if found else []

    def matching_indexes(self, pattern: re.Pattern[str], case_sensitive: bool) -> list[int]:
        """Indexes (ascending) of the words whose form ``pattern`` matches in full."""
        joined = self._joined.get(case_sensitive)
        if joined is None:
            joined = _SEP + _SEP.join(self.forms(case_sensitive)) + _SEP
            self._joined[case_sensitive] = joined
        matched = set(_scanner(pattern.pattern, pattern.flags).findall(joined))
        if not matched:
            return []
        if len(matched) == 1:
            return self.indexes(matched.pop(), case_sensitive)
        return sorted(chain.from_iterable(self.indexes(w, case_sensitive) for w in matched))

    def span(self, first: int, last: int) -> tuple[int, int]:
        """Character offsets in ``raw`` from the start of word ``first`` to the end of ``last``."""
        if self._ascii:
            return self._ascii_start(first), self._ascii_start(last) + len(self.folded[last])
        if self._bounds is None:
            self._bounds = self._word_bounds()
        starts, ends = self._bounds
        return starts[first], ends[last]

    def _ascii_start(self, i: int) -> int:
        """Where word ``i`` starts in ASCII text, without locating every word: it is the
        n-th occurrence of its folded form, found with ``str.find`` in the folded text
        (same offsets as the raw text: ASCII folding keeps every character in place)."""
        word = self.folded[i]
        offsets = self._offsets.get(word)
        if offsets is None:
            if self._padded is None:
                self._padded = f" {folded_words(self.raw)} "
            padded, needle = self._padded, f" {word} "
            offsets = []
            at = padded.find(needle)
            while at >= 0:
                offsets.append(at)  # the space before the word: its raw offset
                at = padded.find(needle, at + 1)
            self._offsets[word] = offsets
        return offsets[bisect_left(self.indexes(word, False), i)]

    def _word_bounds(self) -> tuple[list[int], list[int]]:
        if not self._ascii:
            spans = [m.span() for m in WORD.finditer(self.raw)]
            return [s for s, _ in spans], [e for _, e in spans]
        # ASCII: the blanked text has the raw text's offsets; walk its space-split parts
        # (an empty part is one more separator).
        starts: list[int] = []
        ends: list[int] = []
        position = 0
        for part in self.raw.encode("ascii").translate(_BLANK_ASCII).split(b" "):
            if part:
                starts.append(position)
                position += len(part)
                ends.append(position)
                position += 1
            else:
                position += 1
        return starts, ends

    @property
    def words(self) -> list[Word]:
        """Every word with its span and both forms (for callers that want the whole list)."""
        starts, ends = self._bounds = self._bounds or self._word_bounds()
        forms = zip(starts, ends, self.exact, self.folded, strict=True)
        return [Word(s, e, x, f) for s, e, x, f in forms]

    @property
    def positions(self) -> dict[str, list[int]]:
        """Folded word -> the indexes of its occurrences in ``words``."""
        index: dict[str, list[int]] = {}
        for i, word in enumerate(self.folded):
            index.setdefault(word, []).append(i)
        return index


# The fields a query can name, and what ``text`` stands for.
FIELDS = ("title", "summary", "content", "author", "url", "source", "lang")
FIELD_ALIASES = {"text": ("summary", "content")}
DEFAULT_FIELDS = ("title", "summary", "content")


def expand_field(name: str) -> tuple[str, ...]:
    return FIELD_ALIASES.get(name, (name,))


class Document:
    """The matchable fields of one article; words are built lazily, once per field."""

    __slots__ = ("_joined", "_matching", "_words", "fields")

    def __init__(self, values: dict[str, str]) -> None:
        self.fields = {name: FieldText(values.get(name, "") or "") for name in FIELDS}
        self._words: set[str] | None = None
        self._joined: str | None = None
        self._matching: dict[str, frozenset[str]] = {}

    def field(self, name: str) -> FieldText:
        return self.fields[name]

    def words(self) -> set[str]:
        """Every piece of the folded form of every word of every field (built on first
        use): the presearch's view, and a quick "absent from the whole document" test."""
        if self._words is None:
            pieces: list[list[str]] = []
            for text in self.fields.values():
                if text.raw:
                    pieces.append(text.folded if text.ascii else folded_words(text.raw).split())
            self._words = set(chain.from_iterable(pieces))
        return self._words

    def matching_words(self, pattern: re.Pattern[str]) -> frozenset[str] | None:
        """The distinct folded words of the document that an ASCII wildcard ``pattern``
        matches in full (``None`` for other patterns: they are looked for field by field)."""
        if not pattern.pattern.isascii():
            return None
        found = self._matching.get(pattern.pattern)
        if found is None:
            if self._joined is None:
                self._joined = _SEP + _SEP.join(self.words()) + _SEP
            if required_piece(pattern.pattern) not in self._joined:  # one C-level search
                found = frozenset()
            else:
                scanner = _scanner(pattern.pattern, pattern.flags)
                found = frozenset(scanner.findall(self._joined))
            self._matching[pattern.pattern] = found
        return found
