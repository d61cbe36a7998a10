"""The prefilter: a candidate rule is rejected from the article's words only when it
cannot match (the exactness property over random rules and articles is in
test_presearch.py: ``Matcher.match`` equals ``Matcher.match_naive``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.match.prefilter import compile_rule
from monitor.match.presearch import Presearch
from monitor.match.query import parse_query
from monitor.match.text import Document
from monitor.rules.model import Origin, Rule

ORIGIN = Origin(Path("test.yaml"), 1, 1)


def rule(query: str | None, *, all: tuple[str, ...] = (), any: tuple[str, ...] = ()) -> Rule:
    return Rule(id="r", title="r", origin=ORIGIN,
                query=parse_query(query) if query is not None else None,
                all=tuple(map(parse_query, all)), any=tuple(map(parse_query, any)))


def passes(rule_: Rule, text: str) -> bool:
    clauses, test = compile_rule(rule_)
    doc = Document({"content": text})
    words = doc.words()
    return all(not words.isdisjoint(c) for c in clauses) and (test is None or test(words, doc))


def candidates(rule_: Rule, text: str) -> list[int]:
    return Presearch([rule_]).candidates(Document({"content": text}))


def test_a_rule_whose_mandatory_or_block_has_no_term_in_the_article_is_no_candidate() -> None:
    # "kursk" anchors the rule and the presearch's anchors of the OR-block ("armed" or
    # "forces", "authori*") are in the text, but no term of the block is.
    query = 'kursk AND (troops OR "armed forces" OR authori?e)'
    assert candidates(rule(query), "Kursk: the authorities' armed forcefully guards.") == []
    assert candidates(rule(query), "Kursk: troops.") == [0]
    assert candidates(rule(query), "Kursk: armed forces.") == [0]
    assert candidates(rule(query), "Kursk: to authorise.") == [0]


def test_a_phrase_needs_every_word_and_a_wildcard_a_word_it_matches_in_full() -> None:
    assert not passes(rule('"shadow fleet" AND tanker'), "a shadow over the tanker")
    assert passes(rule('"shadow fleet" AND tanker'), "fleet of tankers, tanker in shadow")
    assert not passes(rule("sanction* AND russia"), "sanctuary in Russia")
    assert passes(rule("sanct?ary AND russia"), "sanctuary in Russia")
    assert not passes(rule("sanct?ary AND russia"), "sanctuaries in Russia")


def test_near_needs_both_operands_and_a_field_prefix_its_child() -> None:
    assert not passes(rule("title:putin NEAR/3 (talks OR summit)"), "Putin spoke")
    assert passes(rule("title:putin NEAR/3 (talks OR summit)"), "summit talk by Putin")


def test_negations_and_regexes_are_never_rejected_by_the_prefilter() -> None:
    assert compile_rule(rule("/kursk/")) == ([], None)
    assert compile_rule(rule("(kursk OR NOT troops) AND /k.rsk/ NOT korea")) == ([], None)
    # A branch without a test makes its OR pass; the rest of the rule is still tested.
    assert passes(rule("(kursk OR /k.rsk/) AND troops"), "troops")
    assert not passes(rule("(kursk OR /k.rsk/) AND troops"), "kursk")
    assert candidates(rule("/kursk/"), "nothing here") == [0]


def test_all_must_pass_and_any_needs_one_query_that_passes() -> None:
    with_lists = rule("kursk", all=("troops",), any=("drone*", '"air defence"'))
    assert not passes(with_lists, "kursk drones")
    assert not passes(with_lists, "kursk troops air")
    assert passes(with_lists, "kursk troops drones")
    assert passes(with_lists, "kursk troops air defence")


@pytest.mark.parametrize(("query", "text"), [
    ("{NATO} AND summit", "Nato summit"),  # folded form present: evaluation decides
    ("Straße AND {Zélensky*}", "STRASSE Zelensky"),
    ("{Al*} AND x", "Alpha x"),  # a case-sensitive wildcard is not tested on folded words
    ('"½" AND x', "½ x"),
])
def test_case_sensitive_and_compatibility_words_pass_when_their_folded_form_is_present(
    query: str, text: str
) -> None:
    assert passes(rule(query), text)


def test_an_or_of_phrases_becomes_word_clauses_one_word_from_each_branch() -> None:
    clauses, test = compile_rule(rule('kursk AND (troops OR "armed forces")'))
    assert test is None
    assert sorted(map(sorted, clauses)) == [
        ["armed", "troops"], ["forces", "troops"], ["kursk"]]


def test_an_or_too_large_to_expand_or_with_a_wildcard_is_tested_as_a_whole() -> None:
    phrases = " OR ".join(f'"a{n} b{n}"' for n in range(5))  # 32 clauses: too many
    clauses, test = compile_rule(rule(f"kursk AND ({phrases})"))
    assert clauses == [frozenset({"kursk"})]
    assert test is not None
    assert passes(rule(f"kursk AND ({phrases})"), "kursk a3 b3")
    assert not passes(rule(f"kursk AND ({phrases})"), "kursk a3 b4")
    clauses, test = compile_rule(rule("kursk AND (troops OR drone*)"))
    assert clauses == [frozenset({"kursk"})]
    assert test is not None
