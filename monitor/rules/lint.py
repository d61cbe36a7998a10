"""Likely mistakes in a query that parses: warnings for `rules check`, never errors.

Pure: walks a query tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from monitor.match.query import Node, Term

# Short acronyms that, written in lowercase, are also ordinary words.
AMBIGUOUS_ACRONYMS = frozenset({"us", "un", "it", "who", "am", "pm", "eu", "uk"})


def likely_mistakes(tree: Node) -> Iterator[tuple[int, str]]:
    """(offset in the query, message) for each likely mistake."""
    for term in _terms(tree):
        if (len(term.words) == 1 and not term.case_sensitive
                and term.words[0].literal in AMBIGUOUS_ACRONYMS):
            word = term.words[0].text
            yield term.offset, (f"{word!r} also matches the ordinary word; write"
                                f" {{{word.upper()}}} for the acronym")


def _terms(node: object) -> Iterable[Term]:
    if isinstance(node, Term):
        yield node
        return
    for child in getattr(node, "children", ()):
        yield from _terms(child)
    for attr in ("child", "left", "right"):
        if hasattr(node, attr):
            yield from _terms(getattr(node, attr))
