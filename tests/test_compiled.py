"""The compiled matcher gives exactly what the query interpreter gives, and shares terms.

``Matcher.match`` runs compiled rule programs (``monitor.match.compiled``);
``evaluate_rule`` interprets the query trees and stays the reference (``--explain``,
``match_naive``). These tests hold the two together on generated queries and texts,
and pin the text shortcuts the compiled path leans on (word offsets, wildcard lookup).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.match.compiled import Run, TermTable, compile_rule
from monitor.match.matcher import Matcher, evaluate_rule
from monitor.match.query import parse_query
from monitor.match.text import WORD, Document, FieldText
from monitor.records import Article
from monitor.rules.load import load_rules
from monitor.rules.model import Rule, RuleSet

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = ["Kyiv", "kyiv", "Straße", "strasse", "long", "range", "missiles", "missile",
              "ATACMS", "atacms", "Zélensky", "sanctions", "sanction", "EU", "us", "strike"]
SEPARATORS = [" ", " ", " ", ", ", "-", "’", ". ", "  ", "\n", "/"]


def _text(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(VOCABULARY), max_size=25))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(words), max_size=len(words)))
    lead = draw(st.sampled_from(["", " ", "«", "-"]))
    return lead + "".join(w + s for w, s in zip(words, seps, strict=True))


@st.composite
def documents(draw: st.DrawFn) -> dict[str, str]:
    return {"title": _text(draw), "summary": _text(draw), "content": _text(draw)}


def _leaf(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(VOCABULARY))
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return f'"{word} {draw(st.sampled_from(VOCABULARY))}"'
    if kind == 1 and len(word) >= 3:
        return word[:2] + "*"
    if kind == 2 and len(word) >= 4:
        return word[:2] + "?" + word[3:]
    if kind == 3:
        return "{" + word + "}"
    if kind == 4:
        return f"title:{word}"
    return word


@st.composite
def queries(draw: st.DrawFn, depth: int = 0) -> str:
    if depth >= 2 or draw(st.booleans()):
        return _leaf(draw)
    shape = draw(st.integers(0, 3))
    left = draw(queries(depth + 1))
    right = draw(queries(depth + 1))
    if shape == 0:
        return f"({left} AND {right})"
    if shape == 1:
        return f"({left} OR {right})"
    if shape == 2:
        return f"({left} AND NOT {right})"
    near = draw(st.sampled_from(["NEAR/0", "NEAR/2", "NEAR/3f"]))
    return f"({_leaf(draw)} {near} ({_leaf(draw)} OR {_leaf(draw)}))"


def _rule(query: str, **more: object) -> Rule:
    return Rule(id="r", title="r", origin=Path("r.yaml"), query=parse_query(query), **more)  # type: ignore[arg-type]


def _interpreted(rule: Rule, fields: dict[str, str]) -> object:
    outcome = evaluate_rule(rule, Document(fields))
    return outcome.spans if outcome.matched else None


@settings(max_examples=300, deadline=None)
@given(queries(), documents())
def test_compiled_programs_give_the_interpreters_spans(query: str, fields: dict[str, str]) -> None:
    rule = _rule(query)
    table = TermTable()
    program = compile_rule(rule, table)
    got = program(Run(Document(fields), table))
    assert got == _interpreted(rule, fields), query


@settings(max_examples=100, deadline=None)
@given(queries(), queries(), queries(), documents())
def test_compiled_all_any_none_agree_with_the_interpreter(
    first: str, second: str, third: str, fields: dict[str, str]
) -> None:
    rule = Rule(id="r", title="r", origin=Path("r.yaml"), query=parse_query(first),
                all=(parse_query(second),), any=(parse_query(third), parse_query(second)),
                none=(parse_query("title:atacms"),))
    table = TermTable()
    got = compile_rule(rule, table)(Run(Document(fields), table))
    assert got == _interpreted(rule, fields)


def test_the_shipped_rules_compiled_agree_on_every_example() -> None:
    rules = load_rules([ROOT / "rules"]).rules
    assert rules
    for rule in rules:
        for example in (*rule.examples_match, *rule.examples_no_match):
            table = TermTable()
            got = compile_rule(rule, table)(Run(Document(dict(example.fields)), table))
            assert got == _interpreted(rule, dict(example.fields)), rule.id


def test_a_term_many_rules_share_is_one_slot_looked_up_once_per_article() -> None:
    rules = RuleSet(tuple(
        Rule(id=f"r{n}", title="r", origin=Path("r.yaml"),
             query=parse_query(f'(sanctions OR "long range") AND word{n}'))
        for n in range(50)
    ))
    matcher = Matcher(rules)
    assert len(matcher._terms) == 2 + 50  # the shared OR-block once, each subject once
    doc = Document({"title": "New sanctions on long-range strikes", "content": "word7 word9"})
    run = Run(doc, matcher._terms)
    for program in matcher._programs:
        program(run)
    assert len(run._found) == 52
    article = Article(source="s", identity="i", guid=None, url=None, title="New sanctions",
                      summary="", content="word7 and word9", author="", published=None,
                      fetched=datetime(2026, 11, 26, tzinfo=UTC), language="en")
    assert [h.rule_id for h in matcher.match(article)] == ["r7", "r9"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" -,.'\n\tabcXYZ019_", max_size=80))
def test_ascii_word_offsets_are_those_of_the_word_pattern(raw: str) -> None:
    text = FieldText(raw)
    spans = [m.span() for m in WORD.finditer(raw)]
    assert [text.span(i, i) for i in range(len(spans))] == spans


@settings(max_examples=200, deadline=None)
@given(documents(), st.sampled_from(["mi*", "mi?sile", "st*", "ky*", "sa*ns", "at*s", "*ange"]))
def test_a_wildcard_finds_the_same_words_by_its_start_as_by_a_scan(
    fields: dict[str, str], pattern: str
) -> None:
    term = parse_query(pattern)
    word = term.words[0]  # type: ignore[union-attr]
    assert word.wildcard is not None
    by_start = Document(fields).matching_words(word.wildcard, word.start)
    by_scan = Document(fields).matching_words(word.wildcard)
    assert by_start == by_scan
