"""The presearch: which anchors each rule gets, and that it never loses a match.

The properties at the end are the contract: for random rule sets and random
articles (accents, ligatures, odd Unicode) the presearch ``Matcher.match`` returns
exactly the hits of ``Matcher.match_naive``, and the optimised word index gives
exactly the spans of a plain word-by-word evaluator kept here as a reference.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.match.evaluate import evaluate
from monitor.match.matcher import Matcher
from monitor.match.presearch import Anchor, Presearch, necessary, rule_clauses
from monitor.match.query import And, Field, Near, Node, Not, Or, Regex, Term, parse_query
from monitor.match.text import WORD, Document, exact, expand_field, fold, folded_words
from monitor.records import Article, Span
from monitor.rules.load import load_rules
from monitor.rules.model import Origin, Rule, RuleSet

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = Origin(Path("test.yaml"), 1, 1)
FETCHED = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)


def rule(rule_id: str = "r", query: str | None = "sanctions", *, all: tuple[str, ...] = (),
         any: tuple[str, ...] = (), none: tuple[str, ...] = (), **options: Any) -> Rule:
    return Rule(id=rule_id, title=rule_id, origin=ORIGIN,
                query=parse_query(query) if query is not None else None,
                all=tuple(map(parse_query, all)), any=tuple(map(parse_query, any)),
                none=tuple(map(parse_query, none)), **options)


def article(title: str = "", *, content: str = "", source: str = "wire",
            language: str | None = None, **fields: str) -> Article:
    return Article(source=source, identity=f"{source}:{title}", guid=None, url=fields.get("url"),
                   title=title, summary=fields.get("summary", ""), content=content,
                   author=fields.get("author", ""), published=None, fetched=FETCHED,
                   language=language)


def clauses(query: str) -> list[set[str]]:
    """A query's clauses, each as a set of ``word`` / ``start*`` strings."""
    return [{a.text + ("*" if a.prefix else "") for a in c} for c in necessary(parse_query(query))]


# --- anchors of each kind of node --------------------------------------------------------


def test_a_term_is_anchored_by_its_folded_word() -> None:
    assert clauses("Zélensky") == [{"zelensky"}]
    assert clauses("Straße") == [{"strasse"}]


def test_a_case_sensitive_term_is_anchored_by_its_folded_form_too() -> None:
    assert clauses("{US}") == [{"us"}]
    assert clauses('{"EU Council"}') == [{"eu"}, {"council"}]


def test_a_wildcard_is_anchored_by_its_literal_start_of_two_characters_or_more() -> None:
    assert clauses("sanction*") == [{"sanction*"}]
    assert clauses("authori?e") == [{"authori*"}]
    assert clauses("Straß*") == [{"strass*"}]
    assert clauses("ru*") == [{"ru*"}]


def test_a_word_that_folds_to_pieces_is_anchored_by_a_whole_piece() -> None:
    # U+FE70 (an Arabic vowel sign) folds to a space: "ab\ufe70cd" folds to "ab cd"
    assert clauses("ab\ufe70cd") == [{"ab"}]
    assert clauses("ab\ufe70c*") == [{"ab"}]


@pytest.mark.parametrize("query", ["*ank", "?ank*", "a*b", "a?c", "/sanctions/"])
def test_a_word_without_a_literal_start_and_a_regex_have_no_anchor(query: str) -> None:
    assert clauses(query) == []


def test_every_word_of_a_phrase_is_a_necessary_clause() -> None:
    assert clauses('"shadow fleet"') == [{"shadow"}, {"fleet"}]
    assert clauses('"?hadow fleet*"') == [{"fleet*"}]


def test_and_and_near_keep_the_clauses_of_every_operand() -> None:
    assert clauses("russia sanctions NOT iran") == [{"russia"}, {"sanctions"}]
    assert clauses("atacms NEAR/3 (approv* OR allow*)") == [{"atacms"}, {"approv*", "allow*"}]


def test_or_is_the_union_of_each_branchs_best_clause() -> None:
    assert clauses('atacms OR "storm shadow" OR taurus') == [{"atacms", "shadow", "taurus"}]


@pytest.mark.parametrize(
    "query", ["atacms OR /taurus/", "atacms OR *urus", "a OR (b OR title:/c/)"]
)
def test_or_with_a_branch_without_anchor_has_none(query: str) -> None:
    assert clauses(query) == []


def test_a_negation_inside_an_or_branch_leaves_the_branchs_positive_clause() -> None:
    assert clauses("a OR (b NOT c) OR d") == [{"a", "b", "d"}]


def test_not_contributes_nothing_and_a_field_prefix_keeps_its_childs_clauses() -> None:
    assert clauses("title:kursk NOT content:opinion") == [{"kursk"}]


def test_a_rule_counts_its_query_its_all_queries_and_the_union_of_its_any_queries() -> None:
    got = rule_clauses(rule(query="kursk", all=("troops",), any=("korea*", "pyongyang")))
    assert {frozenset(a.text for a in c) for c in got} == {
        frozenset({"kursk"}), frozenset({"troops"}), frozenset({"korea", "pyongyang"})}


def test_the_rarest_clause_comes_first() -> None:
    got = rule_clauses(rule(query="the AND of AND kursk"))
    assert next(iter(got[0])) == Anchor("kursk")


def test_rules_without_anchors_are_evaluated_for_every_article_their_words_allow() -> None:
    presearch = Presearch([rule("a", "kursk"), rule("b", "/kursk/"), rule("c", "*ursk")])
    assert presearch.always == (1, 2)
    # The regex rule has no word test; the wildcard's needs a word it matches in full.
    assert presearch.candidates(Document({"title": "nothing here"})) == [1]
    assert presearch.candidates(Document({"title": "Kursk"})) == [0, 1, 2]


def test_a_candidate_must_satisfy_every_checked_clause() -> None:
    presearch = Presearch([rule("a", "kursk AND troops AND korea*")])
    assert presearch.candidates(Document({"title": "Kursk troops"})) == []
    assert presearch.candidates(Document({"content": "Korean troops in Kursk"})) == [0]


def test_word_starts_are_learned_once_per_distinct_word() -> None:
    presearch = Presearch([rule("a", "sanction*"), rule("b", "sanctions NEAR/2 iran*")])
    assert presearch.candidates(Document({"title": "Sanctioned Iranian banks"})) == [0]
    assert presearch.candidates(Document({"title": "Iran sanctions"})) == [0, 1]
    assert presearch.candidates(Document({"title": "sanctions on Iran"})) == [0, 1]
    assert presearch.candidates(Document({"title": "tariffs on Iran"})) == []


# --- the matcher with its presearch ------------------------------------------------------


def test_the_matcher_finds_a_rule_through_a_prefix_anchor() -> None:
    hits = Matcher(RuleSet((rule("a", "sanction*"),))).match(article("Russia SANCTIONED"))
    assert [(h.rule_id, h.spans) for h in hits] == [("a", (Span("title", 7, 17, "SANCTIONED"),))]


def test_the_presearch_still_honours_sources_languages_and_disabled_rules() -> None:
    rules = RuleSet((rule("a"), rule("b", sources=("seed-*",)), rule("c", languages=("de",)),
                     rule("d", enabled=False)))
    matcher = Matcher(rules)
    assert [h.rule_id for h in matcher.match(article("sanctions"))] == ["a"]
    assert [h.rule_id for h in matcher.match(article("sanctions", source="seed-wire",
                                                     language="de"))] == ["a", "b", "c"]


def test_the_memory_of_word_starts_starts_over_without_losing_a_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("monitor.match.presearch.MAX_LEARNED", 3)
    presearch = Presearch([rule("a", "sanction*")])
    assert presearch.candidates(Document({"title": "sanctioned"})) == [0]
    # three new words overflow the memory: it starts over with every word of this title
    assert presearch.candidates(Document({"title": "sanctioned one two three"})) == [0]
    assert presearch.candidates(Document({"title": "one two three"})) == []


def test_hits_come_in_rule_order_whatever_the_anchors() -> None:
    rules = RuleSet((rule("z", "tariffs"), rule("y", "/sanc/"), rule("x", "russia")))
    hits = Matcher(rules).match(article("Russia sanctions", content="tariffs"))
    assert [h.rule_id for h in hits] == ["z", "y", "x"]


def test_the_shipped_rules_find_the_same_hits_with_and_without_the_presearch() -> None:
    matcher = Matcher(load_rules([ROOT / "rules"]))
    lines = (ROOT / "seeds" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    hits = 0
    for line in filter(str.strip, lines):
        data = json.loads(line)
        item = article(data.get("title", ""), content=data.get("content", ""),
                       summary=data.get("summary", ""), source=data.get("source", ""),
                       language=data.get("language"))
        got = [(h.rule_id, h.spans) for h in matcher.match(item)]
        assert got == [(h.rule_id, h.spans) for h in matcher.match_naive(item)]
        hits += len(got)
    assert hits == 13  # seeds/expected.md: 4 + 4 + 5


# --- Unicode facts the fast paths rely on -------------------------------------------------


def _word_characters() -> Iterator[str]:
    for code in range(sys.maxunicode + 1):
        if not 0xD800 <= code <= 0xDFFF and WORD.fullmatch(chr(code)):
            yield chr(code)


def test_no_folded_or_exact_word_holds_the_wildcard_scans_separator() -> None:
    for c in _word_characters():
        assert "\x00" not in fold.__wrapped__(c) + exact.__wrapped__(c), hex(ord(c))


def test_no_ascii_character_composes_with_a_following_starter() -> None:
    # so the folded form of a word keeps a case-sensitive wildcard's ASCII start
    for code in range(sys.maxunicode + 1):
        decomposition = unicodedata.decomposition(chr(code))
        if decomposition and not decomposition.startswith("<"):
            parts = [chr(int(p, 16)) for p in decomposition.split()]
            assert not (len(parts) == 2 and parts[0].isascii()
                        and unicodedata.combining(parts[1]) == 0), hex(code)


# --- properties --------------------------------------------------------------------------

TRICKY = ["alpha", "ALPHA", "Alpha", "ａｌｐｈａ", "beta", "bëta", "gamma", "delta", "Zélensky",
          "ZE\u0301LENSKY", "zelenskyj", "Straße", "STRASSE", "US", "us", "EU", "Council", "½",
          "1", "ﬁnal", "final", "İstanbul", "istanbul", "ab\ufe70cd", "x\u0483y", "long",
          "range", "the", "Σίσυφος", "ΣΊΣΥΦΟΣ", "naïve", "ab", "abc"]
SEPARATORS = [" ", " ", " ", ", ", "-", "–", "’s ", "\n", ": ", " (", ") ", "\u0301"]

texts = st.lists(st.tuples(st.sampled_from(TRICKY), st.sampled_from(SEPARATORS)),
                 max_size=30).map(lambda pairs: "".join(w + s for w, s in pairs))
LEAVES = ["alpha", "beta", "gamma", "delta", "zelensky", "Straße", "{US}", "{Al*}", "{Σί*}",
          '{"EU Council"}', "us", "alp*", "be?a", "*mma", "?elta", "zel*", "stra*", "İs*",
          '"gamma delta"', "gam?a",
          '"alpha beta"', "long-range", '"be* gamma"', "½", "final", "ab", "ab*", "naive",
          "/al.ha/", "ａｌｐｈａ", "σισυφος", "x", "y", "cd", "the"]
FIELD_PREFIXES = ["", "", "", "title:", "text:", "content:", "author:"]
leaves = st.builds(lambda f, w: f + w, st.sampled_from(FIELD_PREFIXES), st.sampled_from(LEAVES))
ors = st.lists(leaves, min_size=1, max_size=3).map(lambda xs: "(" + " OR ".join(xs) + ")")
near_operands = st.one_of(leaves.filter(lambda q: "/" not in q), ors.filter(lambda q: "/" not in q))
nears = st.builds(lambda a, n, f, b: f"{a} NEAR/{n}{f} {b}", near_operands,
                  st.integers(0, 3), st.sampled_from(["", "f"]), near_operands)
positives = st.one_of(leaves, ors, nears)
queries = st.builds(
    lambda ps, op, negs: f" {op} ".join(ps) + "".join(f" NOT {n}" for n in negs),
    st.lists(positives, min_size=1, max_size=3), st.sampled_from(["AND", "OR", "OR"]),
    st.lists(leaves, max_size=2))


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    rules = []
    for number in range(draw(st.integers(1, 6))):
        query = draw(st.one_of(st.none(), queries)) if number % 2 else draw(queries)
        any_ = draw(st.lists(queries, max_size=2, min_size=0 if query else 1))
        rules.append(rule(
            f"r{number}", query, all=tuple(draw(st.lists(leaves, max_size=1))),
            any=tuple(any_), none=tuple(draw(st.lists(leaves, max_size=1))),
            fields=draw(st.sampled_from([("title", "summary", "content"), ("title",)])),
            sources=draw(st.sampled_from([("*",), ("*",), ("*",), ("seed-*",)])),
            languages=draw(st.sampled_from([(), (), (), ("en",)])),
            enabled=draw(st.sampled_from([True, True, True, False]))))
    return RuleSet(tuple(rules))


articles = st.builds(
    lambda title, summary, content, author, source, language: article(
        title, summary=summary, content=content, author=author, source=source, language=language),
    texts, texts, texts, texts, st.sampled_from(["wire", "seed-wire"]),
    st.sampled_from([None, "en"]))


@settings(max_examples=400, deadline=None)
@given(rule_sets(), st.lists(articles, min_size=1, max_size=3))
def test_the_presearch_matcher_returns_exactly_the_hits_of_evaluating_every_rule(
    rules: RuleSet, batch: list[Article]
) -> None:
    matcher = Matcher(rules)
    for item in batch:
        got = [(h.rule_id, h.spans) for h in matcher.match(item)]
        assert got == [(h.rule_id, h.spans) for h in matcher.match_naive(item)]


@settings(max_examples=300, deadline=None)
@given(texts)
def test_the_presearch_words_hold_every_piece_of_every_folded_word(text: str) -> None:
    words = set(folded_words(text).split())
    for word in WORD.findall(text):
        assert set(fold(word).split()) <= words


@pytest.mark.parametrize("repeat", [1, 100], ids=["few-accents", "many-accents"])
def test_the_presearch_words_of_accented_text_are_its_folded_words(repeat: int) -> None:
    text = "Zélensky’s “shadow” fleet: Straße—naïve ﬁnal? ½ x\u0483y. " * repeat
    assert set(folded_words(text).split()) >= {
        "zelensky", "s", "shadow", "fleet", "strasse", "naive", "final", "1⁄2", "x", "y"}


def _reference_occurrences(term: Term, doc: Document,
                           fields: tuple[str, ...]) -> Iterator[tuple[str, int, int]]:
    """Word by word, as the matcher first did: every word folded, every position tried."""
    for name in fields:
        raw = doc.field(name).raw
        found = list(WORD.finditer(raw))
        forms = [exact(m.group()) if term.case_sensitive else fold(m.group()) for m in found]
        for i in range(len(forms) - len(term.words) + 1):
            if all(w.matches(forms[i + j]) for j, w in enumerate(term.words)):
                yield name, i, i + len(term.words) - 1


def _reference(node: Node, doc: Document, fields: tuple[str, ...]) -> list[Span] | None:
    def span(name: str, first: int, last: int) -> Span:
        raw = doc.field(name).raw
        found = list(WORD.finditer(raw))
        start, end = found[first].start(), found[last].end()
        return Span(name, start, end, raw[start:end])

    if isinstance(node, Term):
        spans = [span(*o) for o in _reference_occurrences(node, doc, fields)]
        return spans or None
    if isinstance(node, Regex):
        spans = [Span(n, m.start(), m.end(), m.group()) for n in fields
                 for m in node.compiled.finditer(doc.field(n).raw)  # type: ignore[attr-defined]
                 if m.end() > m.start()]
        return spans or None
    if isinstance(node, Field):
        return _reference(node.child, doc, expand_field(node.name))
    if isinstance(node, Not):
        return None if _reference(node.child, doc, fields) is not None else []
    if isinstance(node, Near):
        def operand(n: Node, f: tuple[str, ...]) -> list[tuple[str, int, int]]:
            if isinstance(n, Field):
                return operand(n.child, expand_field(n.name))
            if isinstance(n, Or):
                return [o for c in n.children for o in operand(c, f)]
            assert isinstance(n, Term)
            return list(_reference_occurrences(n, doc, f))

        pairs = {x for a in operand(node.left, fields) for b in operand(node.right, fields)
                 if a[0] == b[0] and (0 <= b[1] - a[2] - 1 <= node.distance or (
                     not node.ordered and 0 <= a[1] - b[2] - 1 <= node.distance))
                 for x in (a, b)}
        return [span(*o) for o in sorted(pairs)] or None
    results = [_reference(c, doc, fields) for c in node.children]
    if isinstance(node, And) and any(r is None for r in results):
        return None
    matched = [s for r in results if r is not None for s in r]
    return matched if any(r is not None for r in results) else None


@settings(max_examples=400, deadline=None)
@given(queries, texts, texts)
def test_evaluation_gives_the_spans_of_a_plain_word_by_word_evaluator(
    query: str, title: str, content: str
) -> None:
    doc = Document({"title": title, "content": content})
    result = evaluate(parse_query(query), doc, ("title", "summary", "content"))
    expected = _reference(parse_query(query), doc, ("title", "summary", "content"))
    assert result.matched is (expected is not None)
    assert list(result.spans) == (expected or [])


@settings(max_examples=200, deadline=None)
@given(texts)
def test_a_fields_words_are_those_of_the_plain_tokeniser(text: str) -> None:
    expected = [(m.start(), m.end(), exact(m.group()), fold(m.group()))
                for m in WORD.finditer(text)]
    assert [(w.start, w.end, w.exact, w.folded) for w in Document({"title": text}).field(
        "title").words] == expected
