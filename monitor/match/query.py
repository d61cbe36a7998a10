"""The query language: text -> syntax tree, and back.

Grammar (precedence, tightest first: field prefix, NOT, NEAR, AND, OR)::

    query    := or_expr EOF
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := near ( ["AND"] near | "NOT" near )*       a b = a AND b; a NOT b = a AND NOT b
    near     := unary ("NEAR/n" | "NEAR/nf") unary | unary
    unary    := "NOT" unary | primary
    primary  := FIELD ":" primary | "(" or_expr ")"
              | WORD | "PHRASE" | {WORD} | {"PHRASE"} | /REGEX/

Operators are uppercase; ``and``/``or``/``not`` are ordinary words. A word with
inner punctuation (``long-range``, ``Biden's``) is the phrase of its parts.
Every error is a ``QueryError`` with the offset of the offending character.

The tree is plain data (frozen dataclasses); ``printer.to_text`` prints it back so
that parse -> print -> parse gives the same tree. Evaluation lives in ``evaluate``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypeAlias

import re2

from monitor.errors import QueryError
from monitor.match.text import FIELD_ALIASES, FIELDS, exact, fold

QUERY_FIELDS = (*FIELDS, *FIELD_ALIASES)
_WILDCARD_WORD = re.compile(r"[\w*?\u0300-\u036f]+")


@dataclass(frozen=True, slots=True)
class WordPattern:
    """One word of a term: a literal, or a wildcard pattern (``sanction*``, ``authori?e``)."""

    text: str  # as written, for printing
    literal: str | None  # folded (or exact) word when there is no wildcard
    wildcard: re.Pattern[str] | None = field(default=None, compare=False)

    def matches(self, word: str) -> bool:
        if self.literal is not None:
            return word == self.literal
        assert self.wildcard is not None
        return self.wildcard.fullmatch(word) is not None


@dataclass(frozen=True, slots=True)
class Term:
    """A word or a phrase (consecutive words); ``case_sensitive`` for ``{...}``."""

    words: tuple[WordPattern, ...]
    case_sensitive: bool = False
    quoted: bool = field(default=False, compare=False)  # printing only
    offset: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Regex:
    pattern: str
    compiled: object = field(compare=False, repr=False)
    offset: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    child: Node
    offset: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    child: Node
    offset: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Near:
    left: Node
    right: Node
    distance: int
    ordered: bool
    offset: int = field(default=0, compare=False)


Node: TypeAlias = Term | Regex | Field | Not | And | Or | Near


# --- lexer -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # WORD PHRASE CASE REGEX FIELD LPAREN RPAREN AND OR NOT NEAR EOF
    text: str
    offset: int
    distance: int = 0
    ordered: bool = False


_NEAR = re.compile(r"NEAR/(\d+)(f?)")
MAX_NEAR = 1000
MAX_DEPTH = 64
_BREAK = set(' \t\r\n()"{}')


def _tokenise(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
        elif c == "(":
            tokens.append(_Token("LPAREN", c, i))
            i += 1
        elif c == ")":
            tokens.append(_Token("RPAREN", c, i))
            i += 1
        elif c == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise QueryError("unclosed quote", i)
            tokens.append(_Token("PHRASE", query[i + 1 : end], i))
            i = end + 1
        elif c == "{":
            end = query.find("}", i + 1)
            if end < 0:
                raise QueryError("unclosed {", i)
            tokens.append(_Token("CASE", query[i + 1 : end], i))
            i = end + 1
        elif c == "}":
            raise QueryError("} without {", i)
        elif c == "/" and (not tokens or tokens[-1].kind != "WORD" or query[i - 1].isspace()):
            j = i + 1
            while j < n and query[j] != "/":
                j += 2 if query[j] == "\\" else 1
            if j >= n:
                raise QueryError("unclosed /regex/", i)
            tokens.append(_Token("REGEX", query[i + 1 : j], i))
            i = j + 1
        else:
            j = i
            while j < n and query[j] not in _BREAK:
                if query[j] == ":":
                    break
                j += 1
            text = query[i:j]
            if j < n and query[j] == ":":
                if text.lower() not in QUERY_FIELDS:
                    raise QueryError(
                        f"unknown field {text!r} (fields: {', '.join(QUERY_FIELDS)})", i
                    )
                if j + 1 >= n or query[j + 1].isspace():
                    raise QueryError(f"nothing after {text}:", j)
                tokens.append(_Token("FIELD", text.lower(), i))
                i = j + 1
                continue
            tokens.append(_operator_or_word(text, i))
            i = j
    tokens.append(_Token("EOF", "", n))
    return tokens


def _operator_or_word(text: str, offset: int) -> _Token:
    if text in ("AND", "OR", "NOT"):
        return _Token(text, text, offset)
    if text == "NEAR" or text.startswith("NEAR/"):
        m = _NEAR.fullmatch(text)
        if not m:
            raise QueryError(f"malformed {text!r}: write NEAR/5 or NEAR/5f", offset)
        if len(m.group(1)) > 4 or int(m.group(1)) > MAX_NEAR:
            raise QueryError(f"NEAR distance at most {MAX_NEAR} words", offset)
        return _Token("NEAR", text, offset, distance=int(m.group(1)), ordered=bool(m.group(2)))
    return _Token("WORD", text, offset)


# --- parser ----------------------------------------------------------------------------

class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _tokenise(query)
        self.pos = 0
        self.depth = 0

    def deeper(self, offset: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"query nested too deeply (more than {MAX_DEPTH} levels)", offset)

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise QueryError("empty query", 0)
        node = self.or_expr()
        token = self.peek()
        if token.kind == "RPAREN":
            raise QueryError(") without (", token.offset)
        if token.kind != "EOF":
            raise QueryError(f"unexpected {token.text!r}", token.offset)
        return node

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while self.peek().kind == "OR":
            self.take()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self) -> Node:
        children = [self.near()]
        while self.peek().kind in ("AND", "NOT", "WORD", "PHRASE", "CASE", "REGEX", "FIELD",
                                   "LPAREN"):
            if self.peek().kind == "AND":
                self.take()
            children.append(self.near())
        return children[0] if len(children) == 1 else And(tuple(children))

    def near(self) -> Node:
        left = self.unary()
        token = self.peek()
        if token.kind != "NEAR":
            return left
        self.take()
        right = self.unary()
        for side in (left, right):
            _check_near_operand(side, token.offset)
        if self.peek().kind == "NEAR":
            raise QueryError(
                "NEAR operands are terms, phrases or parenthesised ORs of them: "
                "put a chained NEAR's pairs in parentheses and join them with AND",
                self.peek().offset,
            )
        return Near(left, right, token.distance, token.ordered, token.offset)

    def unary(self) -> Node:
        token = self.peek()
        if token.kind == "NOT":
            self.take()
            self.deeper(token.offset)
            node = Not(self.unary(), token.offset)
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "FIELD":
            self.deeper(token.offset)
            field_node = Field(token.text, self.primary(), token.offset)
            self.depth -= 1
            return field_node
        if token.kind == "LPAREN":
            if self.peek().kind == "RPAREN":
                raise QueryError("empty parentheses", token.offset)
            self.deeper(token.offset)
            node = self.or_expr()
            self.depth -= 1
            closing = self.take()
            if closing.kind != "RPAREN":
                raise QueryError("( without )", token.offset)
            return node
        if token.kind == "WORD":
            return _term(token.text, token.offset, case_sensitive=False, quoted=False)
        if token.kind == "PHRASE":
            return _term(token.text, token.offset, case_sensitive=False, quoted=True)
        if token.kind == "CASE":
            inner = token.text.strip()
            quoted = inner.startswith('"') and inner.endswith('"') and len(inner) >= 2
            return _term(inner.strip('"'), token.offset, case_sensitive=True, quoted=quoted)
        if token.kind == "REGEX":
            return _regex(token.text, token.offset)
        if token.kind == "EOF":
            raise QueryError("the query ends where a term was expected", token.offset)
        if token.kind == "RPAREN":
            raise QueryError(") where a term was expected", token.offset)
        raise QueryError(f"{token.text} where a term was expected", token.offset)


def _check_near_operand(node: Node, offset: int) -> None:
    if isinstance(node, Term):
        return
    if isinstance(node, Field):
        _check_near_operand(node.child, offset)
        return
    if isinstance(node, Or):
        for child in node.children:
            _check_near_operand(child, offset)
        return
    raise QueryError("NEAR operands are terms, phrases or parenthesised ORs of them", offset)


def _term(text: str, offset: int, *, case_sensitive: bool, quoted: bool) -> Term:
    parts = _WILDCARD_WORD.findall(text)
    if not parts:
        what = "phrase" if quoted else "term"
        raise QueryError(f"empty {what}: {text!r} has no word characters", offset)
    words = tuple(_word_pattern(p, offset, case_sensitive) for p in parts)
    return Term(words, case_sensitive=case_sensitive, quoted=quoted, offset=offset)


def _word_pattern(text: str, offset: int, case_sensitive: bool) -> WordPattern:
    form = exact if case_sensitive else fold
    if "*" not in text and "?" not in text:
        return WordPattern(text, form(text))
    literal_count = sum(1 for c in text if c not in "*?")
    if literal_count < 2:
        raise QueryError(
            f"wildcard {text!r} needs at least two literal characters (it would match too much)",
            offset,
        )
    pieces = re.split(r"([*?])", text)
    regex = "".join(
        r"\w*" if p == "*" else r"\w" if p == "?" else re.escape(form(p)) for p in pieces if p
    )
    return WordPattern(text, None, re.compile(regex))


def _regex(pattern: str, offset: int) -> Regex:
    if not pattern:
        raise QueryError("empty /regex/", offset)
    try:
        compiled = re2.compile("(?i)" + pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise QueryError(f"invalid regex /{pattern}/: {reason}", offset) from None
    return Regex(pattern, compiled, offset)


def parse_query(query: str) -> Node:
    """Parse a query; raises ``QueryError`` with the offset of the problem."""
    node = _Parser(query).parse()
    if not has_positive(node):
        raise QueryError(
            "a query of negations only matches almost everything: add a positive term", 0
        )
    return node


def has_positive(node: Node) -> bool:
    """True when the query requires some term to be present (not only absences)."""
    if isinstance(node, Term | Regex | Near):
        return True
    if isinstance(node, Field):
        return has_positive(node.child)
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(has_positive(c) for c in node.children)
    return all(has_positive(c) for c in node.children)
