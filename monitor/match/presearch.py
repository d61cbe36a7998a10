"""Stage *match*, presearch: the few rules that could match an article, found in one pass.

Every rule is reduced to *clauses*: necessary conditions on the article's folded
words. A clause is a set of *anchors* (a folded word, or the folded start of a
word) and holds when at least one of them occurs; an article can match the rule
only if every clause holds. They are read off the query tree:

    term / phrase     one clause per word that has an anchor: a literal word (its
                      folded form, for ``{Case}`` terms too), or a wildcard word's
                      literal start of two or more characters
    AND, NEAR         the clauses of every operand
    OR                one clause: the union of each branch's best clause (none if
                      some branch has none)
    field:x           the clauses of x (all fields are searched)
    NOT, /regex/      no clause

A rule's clauses are those of its ``query`` and of each ``all`` query, plus the
union of its ``any`` queries. The cheapest clause (rarest anchors, by a length and
stop-word estimate) indexes the rule; up to ``MAX_CHECKS`` others are checked for
each candidate before exact evaluation. The candidates left then pass the rule's
prefilter (``prefilter``: its whole tree tested on the article's words: every
term of a required OR-block, every word of a phrase, wildcards matched in full).
Rules without any clause are candidates for every article their prefilter allows
(correct, only slower).

Each anchor has a key: the folded word itself, or ``PREFIX_MARK`` and the word
start. The index maps keys to rules. For an article, the set of its folded words
(``Document.words``: one byte translation for ASCII text) intersected with the
known words gives the word anchors present, in C-level set operations with no
Python code per word. Word starts are resolved per distinct word, once: the first
time a word is seen, the starts it begins with are looked up and remembered
(at most ``MAX_LEARNED`` words, then the memory starts over), so a news stream's
vocabulary is learned and later articles pay only for their new words. An
Aho-Corasick automaton over all anchors and slicing every word at every start
length were measured and are slower (benchmarks/README.md).

Must not: decide a match (``evaluate`` does that, for the candidates), or ever
drop a rule that could match: every clause is a necessary condition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat

from monitor.match.prefilter import Test, compile_rule
from monitor.match.query import And, Field, Near, Node, Not, Regex, Term, WordPattern
from monitor.match.text import Document, fold
from monitor.rules.model import Rule

MAX_CHECKS = 4
MAX_LEARNED = 200_000
PREFIX_MARK = "\x00"  # no folded word holds it
_STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "he",
    "her", "his", "i", "if", "in", "into", "is", "it", "its", "no", "not", "of", "on", "or",
    "our", "she", "so", "than", "that", "the", "their", "them", "then", "there", "these",
    "they", "this", "to", "was", "we", "were", "what", "when", "which", "who", "will", "with",
    "would", "you",
})


@dataclass(frozen=True, slots=True, order=True)
class Anchor:
    """A folded word (``prefix=False``) or the start of one that must occur among a
    document's folded words."""

    text: str
    prefix: bool = False

    @property
    def key(self) -> str:
        return PREFIX_MARK + self.text if self.prefix else self.text


Clause = frozenset[Anchor]


def anchor_cost(anchor: Anchor) -> float:
    """A rough share of articles that contain the anchor: short and common words are
    frequent, a word start more so than the word."""
    if not anchor.prefix and anchor.text in _STOP_WORDS:
        return 1.0
    share: float = 4.0 / float(max(len(anchor.text), 1)) ** 2.5
    return min(1.0, share * 3 if anchor.prefix else share)


def clause_cost(clause: Clause) -> float:
    return min(1.0, sum(anchor_cost(a) for a in clause))


def _cheapest(clauses: Iterable[Clause]) -> Clause:
    return min(clauses, key=lambda c: (clause_cost(c), len(c), sorted(c)))


def word_anchor(word: WordPattern, case_sensitive: bool) -> Anchor | None:
    """The anchor of one word of a term: any word that matches it has this folded form
    (or starts with it). ``None`` when the word has no usable literal start."""
    if word.literal is not None:
        return _anchor(fold(word.literal) if case_sensitive else word.literal, prefix=False)
    start = word.text[: min(i for i in (word.text.find("*"), word.text.find("?")) if i >= 0)]
    # A case-sensitive pattern matches the exact (NFKC) form; its folded form keeps an
    # ASCII start (no ASCII letter composes with what follows it), other starts may not.
    if case_sensitive and not start.isascii():
        return None
    return _anchor(fold(start), prefix=True)


def _anchor(folded: str, prefix: bool) -> Anchor | None:
    """The anchor for "a folded word is (or starts with) ``folded``", as the presearch sees
    words: split at white space (a few compatibility characters fold to a space)."""
    pieces = folded.split()
    if not pieces:
        return None
    if prefix and len(pieces) == 1 and not folded[-1].isspace():
        return Anchor(pieces[0], prefix=True) if len(pieces[0]) >= 2 else None
    return Anchor(pieces[0])  # a whole piece: followed by white space, or the whole word


def necessary(node: Node) -> list[Clause]:
    """Clauses that every document matching ``node`` satisfies ([]: none known)."""
    if isinstance(node, Term):
        anchors = (word_anchor(w, node.case_sensitive) for w in node.words)
        return [frozenset((a,)) for a in dict.fromkeys(anchors) if a is not None]
    if isinstance(node, Field):
        return necessary(node.child)
    if isinstance(node, Regex | Not):
        return []
    if isinstance(node, Near):
        return necessary(node.left) + necessary(node.right)
    if isinstance(node, And):
        return [clause for child in node.children for clause in necessary(child)]
    return _union_of_best(node.children)


def _union_of_best(branches: Iterable[Node]) -> list[Clause]:
    union: set[Anchor] = set()
    for branch in branches:
        clauses = necessary(branch)
        if not clauses:
            return []
        union |= _cheapest(clauses)
    return [frozenset(union)]


def rule_clauses(rule: Rule) -> list[Clause]:
    """Every known necessary condition of a rule, cheapest first, without repeats."""
    clauses: list[Clause] = []
    for node in (*((rule.query,) if rule.query is not None else ()), *rule.all):
        clauses.extend(necessary(node))
    if rule.any:
        clauses.extend(_union_of_best(rule.any))
    unique = dict.fromkeys(clauses)
    return sorted(unique, key=lambda c: (clause_cost(c), len(c), sorted(c)))


class Presearch:
    """The anchors of all rules, indexed; ``candidates`` of a document in one pass.

    Rule numbers are positions in the sequence given to the constructor.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        postings: dict[str, list[int]] = {}
        anchors: set[Anchor] = set()
        always: list[int] = []
        checks: dict[int, tuple[frozenset[str], ...]] = {}
        tests: dict[int, Test] = {}
        words: set[str] = set()  # of the prefilter's word clauses
        for number, rule in enumerate(rules):
            word_clauses, test = compile_rule(rule)
            if test is not None:
                tests[number] = test
            words.update(*word_clauses)
            clauses = rule_clauses(rule)
            if not clauses:
                always.append(number)
                if word_clauses:
                    checks[number] = tuple(word_clauses)
                continue
            for anchor in clauses[0]:
                postings.setdefault(anchor.key, []).append(number)
            checked = [frozenset(a.key for a in c) for c in clauses[1 : 1 + MAX_CHECKS]]
            checked += [c for c in word_clauses if c not in checked]
            if checked:
                checks[number] = tuple(checked)
            anchors.update(*clauses[: 1 + MAX_CHECKS])
        self.anchors = tuple(sorted(anchors))
        self.always = tuple(always)
        self._postings = {key: tuple(numbers) for key, numbers in postings.items()}
        self._checks = checks
        self._tests = tests
        self._words = frozenset(a.text for a in anchors if not a.prefix) | words
        self._starts = frozenset(a.key for a in anchors if a.prefix)
        self._lengths = tuple(sorted({len(a.text) for a in anchors if a.prefix}))
        self._learned: dict[str, tuple[str, ...]] = {}  # word -> keys of the starts it has
        self._seen: set[str] = set()

    def present(self, words: set[str]) -> set[str]:
        """The keys of the anchors that occur among ``words``."""
        present = words & self._words
        if self._lengths:
            new = words - self._seen
            if new:
                if len(self._seen) + len(new) > MAX_LEARNED:  # start over, with these words
                    self._seen.clear()
                    self._learned.clear()
                    new = words
                self._learn(new)
            starts = self._learned.keys() & words
            if starts:
                present.update(*map(self._learned.__getitem__, starts))
        return present

    def _learn(self, new: set[str]) -> None:
        lengths, starts = self._lengths, self._starts
        for word in new:
            keys = [key for n in lengths
                    if len(word) >= n and (key := PREFIX_MARK + word[:n]) in starts]
            if keys:
                self._learned[word] = tuple(keys)
        self._seen |= new

    def candidates(self, doc: Document) -> list[int]:
        """Numbers of the rules that could match ``doc``, ascending."""
        present = self.present(doc.words())
        indexed: set[int] = set().union(*map(self._postings.get, present, repeat(())))
        checks, disjoint, none = self._checks.get, present.isdisjoint, ()
        numbers = [n for n in indexed if not any(map(disjoint, checks(n, none)))]
        numbers.extend(n for n in self.always if not any(map(disjoint, checks(n, none))))
        words, tests = doc.words(), self._tests
        numbers = [n for n in numbers if (test := tests.get(n)) is None or test(words, doc)]
        numbers.sort()
        return numbers
