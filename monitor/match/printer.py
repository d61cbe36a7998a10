"""A query tree printed back as query text that parses to the same tree.

Used by tests (parse -> print -> parse is stable) and wherever a rule's query is
shown normalised. Pure.
"""

from __future__ import annotations

from monitor.match.query import And, Field, Near, Node, Not, Or, Regex, Term

_LEVEL = {Or: 0, And: 1, Near: 2, Not: 3, Field: 4, Term: 5, Regex: 5}


def to_text(node: Node) -> str:
    """Print a tree as a query that parses back to the same tree."""
    if isinstance(node, Term):
        inner = " ".join(w.text for w in node.words)
        if node.quoted or len(node.words) > 1 or _looks_like_operator(inner):
            inner = f'"{inner}"'
        return "{" + inner + "}" if node.case_sensitive else inner
    if isinstance(node, Regex):
        return f"/{node.pattern}/"
    if isinstance(node, Field):
        return f"{node.name}:{_wrap(node.child, 4)}"
    if isinstance(node, Not):
        return f"NOT {_wrap(node.child, 3)}"
    if isinstance(node, Near):
        op = f"NEAR/{node.distance}{'f' if node.ordered else ''}"
        return f"{_wrap(node.left, 3)} {op} {_wrap(node.right, 3)}"
    if isinstance(node, And):
        return " AND ".join(_wrap(c, 2) for c in node.children)
    return " OR ".join(_wrap(c, 1) for c in node.children)


def _looks_like_operator(word: str) -> bool:
    return word in ("AND", "OR", "NOT", "NEAR") or word.startswith("NEAR/")


def _wrap(node: Node, level: int) -> str:
    text = to_text(node)
    return f"({text})" if _LEVEL[type(node)] < level else text
