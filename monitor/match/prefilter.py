"""Stage *match*, prefilter: a candidate rule that cannot match, refused from the
article's word set before its query tree runs.

The presearch indexes one clause of a rule and checks a few more against the
anchors it knows; a candidate can still fail conditions decidable from the
article's folded words (``Document.words``): an OR-block none of whose terms is in
the article although the anchor is, a phrase one of whose words is missing, a
wildcard with its literal start in the article but no word it matches in full.
``compile_rule`` reads off the query tree a necessary condition in two parts:

- *word clauses*, each a set of folded words one of which must be present: a
  literal word is one clause; AND and NEAR keep every operand's clauses; an OR of
  conjunctions becomes one clause per choice of a clause from each branch (at most
  ``MAX_EXPANDED``). The presearch checks them in C, like its own clauses.
- *tests* for what needs more than membership: an ASCII wildcard (not
  ``{case-sensitive}``) must match one of the words in full
  (``Document.matching_words``); an OR with such a term, or too large to expand,
  is tested as a whole.

``field:x`` is tested as x (the words are those of every field); NOT, ``/regex/``
and case-sensitive wildcards add no condition, and an OR with such a branch none.
A rule's condition covers its ``query``, each ``all`` query and the OR of its
``any`` queries. Every part is a necessary condition — the same whole-document
word tests exact evaluation starts with — so a refused rule could not have
matched; a rule with nothing to test is never refused.

Must not: decide a match, or refuse a rule that could match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from monitor.match.query import And, Field, Near, Node, Not, Regex, Term
from monitor.match.text import Document, fold
from monitor.rules.model import Rule

_NONE: frozenset[str] = frozenset()
# A test of one node against a document and its folded words (``None``: nothing to test).
Test = Callable[[set[str], Document], bool]


def _word_anchor(word_text: str) -> str | None:
    """The folded piece of a literal word that must be among the document's words."""
    pieces = word_text.split()  # a few compatibility characters fold to a space
    return pieces[0] if pieces else None


def _term_test(term: Term) -> tuple[frozenset[str], tuple[re.Pattern[str], ...]]:
    """The folded words a term needs and its wildcards that must match a word in full."""
    literals: set[str] = set()
    wildcards: list[re.Pattern[str]] = []
    for word in term.words:
        if word.literal is not None:
            anchor = _word_anchor(fold(word.literal) if term.case_sensitive else word.literal)
            if anchor is not None:
                literals.add(anchor)
        elif not term.case_sensitive and word.wildcard is not None:
            wildcards.append(word.wildcard)
    return frozenset(literals), tuple(wildcards)


def _all(tests: Sequence[Test]) -> Test | None:
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda words, doc: all(test(words, doc) for test in tests)


def compile_node(node: Node) -> Test | None:
    """A necessary condition of ``node`` over a document's folded words."""
    if isinstance(node, Term):
        literals, wildcards = _term_test(node)
        if not wildcards:
            if not literals:
                return None
            if len(literals) == 1:
                (single,) = literals
                return lambda words, doc: single in words
            return lambda words, doc: literals <= words
        return lambda words, doc: literals <= words and all(
            doc.matching_words(w) != frozenset() for w in wildcards)
    if isinstance(node, Field):
        return compile_node(node.child)
    if isinstance(node, Not | Regex):
        return None
    if isinstance(node, Near):
        return _all([t for t in (compile_node(node.left), compile_node(node.right)) if t])
    if isinstance(node, And):
        return _all([t for t in map(compile_node, node.children) if t is not None])
    return _any(node.children)


def _any(branches: Sequence[Node]) -> Test | None:
    """Some branch's test: ``None`` when a branch has none (it may match anyway). Terms
    are tested in one function over plain data (far less memory than a closure each)."""
    single: set[str] = set()
    terms: list[tuple[frozenset[str], tuple[re.Pattern[str], ...]]] = []
    others: list[Test] = []
    for branch in branches:
        unwrapped = branch.child if isinstance(branch, Field) else branch
        if isinstance(unwrapped, Term):
            literals, wildcards = _term_test(unwrapped)
            if len(literals) == 1 and not wildcards:
                single |= literals
            elif literals or wildcards:
                terms.append((literals, wildcards))
            else:
                return None
            continue
        test = compile_node(branch)
        if test is None:
            return None
        others.append(test)
    words_of, plain = frozenset(single), tuple(terms)

    def some_branch(words: set[str], doc: Document) -> bool:
        if not words.isdisjoint(words_of):
            return True
        for literals, wildcards in plain:
            if literals <= words and all(doc.matching_words(w) != _NONE for w in wildcards):
                return True
        return any(test(words, doc) for test in others)

    return some_branch


# An OR of conjunctions becomes at most this many word clauses (one word from each
# branch per clause); a larger product is tested by the node's ``Test`` instead.
MAX_EXPANDED = 16
WordClauses = list[frozenset[str]]


def split(node: Node) -> tuple[WordClauses, list[Test]]:
    """``node``'s necessary condition as word clauses (each holds when one of its words is
    among the document's words: checked in C by the presearch) and the tests of the
    parts that need more than word membership (wildcards matched in full)."""
    if isinstance(node, Term):
        literals, wildcards = _term_test(node)
        if wildcards:
            test = compile_node(node)
            return [], [test] if test is not None else []
        return [frozenset((w,)) for w in sorted(literals)], []
    if isinstance(node, Field):
        return split(node.child)
    if isinstance(node, Not | Regex):
        return [], []
    children = (node.left, node.right) if isinstance(node, Near) else node.children
    if isinstance(node, And | Near):
        clauses: WordClauses = []
        tests: list[Test] = []
        for child in children:
            more, residual = split(child)
            clauses += more
            tests += residual
        return clauses, tests
    return _split_any(children)


def _split_any(branches: Sequence[Node]) -> tuple[WordClauses, list[Test]]:
    expanded: WordClauses = [frozenset()]
    for branch in branches:
        clauses, residual = split(branch)
        if not clauses and not residual:
            return [], []  # a branch with no condition: the OR may always hold
        if residual or len(expanded) * len(clauses) > MAX_EXPANDED:
            test = _any(branches)
            return [], [test] if test is not None else []
        expanded = [chosen | clause for chosen in expanded for clause in clauses]
    return list(dict.fromkeys(expanded)), []


def compile_rule(rule: Rule) -> tuple[WordClauses, Test | None]:
    """A necessary condition of ``rule``: word clauses that must all hold, and a test of
    the rest (``None``: nothing more to test)."""
    clauses: WordClauses = []
    tests: list[Test] = []
    for node in (*((rule.query,) if rule.query else ()), *rule.all):
        more, residual = split(node)
        clauses += more
        tests += residual
    if rule.any:
        more, residual = _split_any(rule.any)
        clauses += more
        tests += residual
    return list(dict.fromkeys(clauses)), _all(tests)
