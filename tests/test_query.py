"""The query language: parsing, printing back, and evaluation against documents.

One test (or one small group) per row of the query-language table in DESIGN.md,
then precedence, spans, errors with their offsets, and property tests.
"""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.errors import QueryError
from monitor.match.evaluate import evaluate
from monitor.match.printer import to_text
from monitor.match.query import And, Field, Near, Not, Or, Regex, Term, parse_query
from monitor.match.text import Document

DEFAULT_FIELDS = ("title", "summary", "content")


def matches(query: str, **fields: str) -> bool:
    return evaluate(parse_query(query), Document(fields), DEFAULT_FIELDS).matched


def spans(query: str, **fields: str) -> list[tuple[str, int, int, str]]:
    result = evaluate(parse_query(query), Document(fields), DEFAULT_FIELDS)
    return [(s.field, s.start, s.end, s.text) for s in result.spans]


def query_error(query: str) -> QueryError:
    with pytest.raises(QueryError) as info:
        parse_query(query)
    return info.value


def words_of(node: object) -> list[str]:
    assert isinstance(node, Term)
    return [w.text for w in node.words]


# --- whole words, case and accents ------------------------------------------------------


def test_a_term_matches_the_whole_word_only() -> None:
    assert matches("sanctions", title="EU adopts new sanctions on Russia")
    assert not matches("sanctions", title="the sanctionsbuster was caught")
    assert not matches("sanction", title="EU adopts new sanctions on Russia")
    assert not matches("fleet", title="fleets of tankers")


def test_a_term_is_case_insensitive() -> None:
    assert matches("sanctions", title="NEW SANCTIONS")
    assert matches("SANCTIONS", title="new sanctions")
    assert matches("SaNcTiOnS", content="Sanctions")


def test_a_term_is_accent_insensitive_in_both_directions() -> None:
    assert matches("Zélensky", title="zelensky speaks")
    assert matches("zelensky", title="Zélensky speaks")
    # a decomposed accent (e + U+0301) is the same letter
    assert matches("Zelensky", title="Ze\u0301lensky speaks")


def test_a_different_spelling_is_a_different_word() -> None:
    assert not matches("Zelensky", title="Volodomyr Zelenskyj spoke")
    assert not matches("Zelenskyj", title="Zelensky spoke")


def test_sharp_s_folds_to_double_s() -> None:
    assert matches("Straße", title="the STRASSE was closed")
    assert matches("strasse", title="Die Straße war gesperrt")


def test_fields_that_are_missing_or_empty_match_nothing() -> None:
    assert not matches("anything", title="", summary="")
    assert not matches("anything")


# --- wildcards --------------------------------------------------------------------------


def test_star_matches_zero_or_more_word_characters() -> None:
    assert matches("sanction*", title="one sanction")
    assert matches("sanction*", title="many sanctions")
    assert matches("sanction*", title="Russia was sanctioned")
    assert not matches("sanction*", title="a sanctimonious speech")


def test_question_mark_matches_exactly_one_word_character() -> None:
    assert matches("authori?e", title="they authorise it")
    assert matches("authori?e", title="they authorize it")
    assert not matches("authori?e", title="they authorie it")
    assert not matches("authori?e", title="they authoriise it")
    assert not matches("authori?e", title="they authorised it")


def test_wildcards_stay_inside_one_word() -> None:
    # "shadow-fleet" is two words: the wildcard stops at the hyphen
    assert spans("shadow*", title="shadow-fleet") == [("title", 0, 6, "shadow")]
    assert not matches("shadowf*", title="shadow fleet")


def test_a_wildcard_can_sit_in_the_middle_of_a_word() -> None:
    assert matches("gr*en", title="a green light")
    assert matches("gr*en", title="they gave the grn gren")
    assert not matches("gr*en", title="greeny")


@pytest.mark.parametrize("query", ["a*", "*b", "?b", "a?", "*", "?", "*?", "a*?"])
def test_wildcard_needs_two_literal_characters(query: str) -> None:
    error = query_error(query)
    assert "two literal characters" in error.message
    assert error.offset == 0


def test_wildcard_error_points_at_the_offending_word() -> None:
    error = query_error("sanctions OR x*")
    assert error.offset == 13


@pytest.mark.parametrize("query", ["ab*", "a?c", "?bc", "*ab", "a*b"])
def test_wildcards_with_two_literal_characters_are_accepted(query: str) -> None:
    node = parse_query(query)
    assert isinstance(node, Term)
    assert words_of(node) == [query]


# --- phrases ----------------------------------------------------------------------------


def test_a_phrase_matches_consecutive_words_in_order() -> None:
    assert matches('"shadow fleet"', title="Russia's shadow fleet")
    assert not matches('"shadow fleet"', title="a fleet in the shadow")
    assert not matches('"shadow fleet"', title="shadow of the fleet")


def test_punctuation_between_phrase_words_is_ignored() -> None:
    assert matches('"shadow fleet"', title="in the shadow, fleet commanders")
    assert matches('"shadow fleet"', title="the “shadow” fleet")
    assert matches('"shadow fleet"', title="shadow—fleet")


def test_a_phrase_may_hold_wildcards() -> None:
    assert matches('"long-range missile*"', title="long-range missiles were fired")
    assert matches('"shad* fleet"', title="a shadowy fleet")
    assert not matches('"shad* fleet"', title="a shadowy navy fleet")


def test_a_phrase_matches_across_the_raw_text_and_reports_its_whole_span() -> None:
    assert spans('"storm shadow"', title="UK: Storm  Shadow missiles") == [
        ("title", 4, 17, "Storm  Shadow")
    ]


# --- hyphenated and apostrophised words -------------------------------------------------


def test_a_hyphenated_word_is_the_phrase_of_its_parts() -> None:
    assert parse_query("long-range") == parse_query('"long range"')
    assert matches("long-range", title="a long-range missile")
    assert matches("long-range", title="a long range missile")
    assert matches("long-range", title="a long–range missile")
    assert not matches("long-range", title="a range that is long")


def test_an_apostrophised_word_is_the_phrase_of_its_parts() -> None:
    assert parse_query("Biden's") == parse_query('"Biden s"')
    assert matches("Biden's", title="Biden’s decision")
    assert matches("Biden's", title="Biden's decision")
    assert not matches("Biden's", title="Biden decided")


def test_the_quoted_form_of_a_hyphenated_phrase_also_matches_the_hyphen() -> None:
    assert matches('"long range"', title="a long-range missile")


# --- case-sensitive terms ---------------------------------------------------------------


def test_braces_make_a_term_case_sensitive() -> None:
    assert matches("{US}", title="US officials said")
    assert not matches("{US}", title="let us go")
    assert not matches("{US}", title="Us and them")


def test_a_case_sensitive_term_is_still_a_whole_word() -> None:
    assert not matches("{US}", title="USA and Canada")
    assert spans("{US}", title="us and US") == [("title", 7, 9, "US")]


def test_a_case_sensitive_phrase_needs_every_word_in_its_case() -> None:
    assert matches('{"EU Council"}', title="the EU Council met")
    assert not matches('{"EU Council"}', title="the eu council met")
    assert not matches('{"EU Council"}', title="the EU council met")


# --- AND, OR, NOT -----------------------------------------------------------------------


def test_and_needs_both_operands() -> None:
    assert matches("ukraine AND atacms", title="Ukraine gets ATACMS")
    assert not matches("ukraine AND atacms", title="Ukraine gets drones")
    assert not matches("ukraine AND atacms", title="ATACMS tested")


def test_adjacent_operands_mean_and() -> None:
    assert parse_query("ukraine atacms") == parse_query("ukraine AND atacms")
    assert matches("ukraine atacms", title="ATACMS", content="for Ukraine")
    assert not matches("ukraine atacms", title="Ukraine gets drones")


def test_or_needs_either_operand() -> None:
    assert matches("atacms OR taurus", title="Taurus debate")
    assert matches("atacms OR taurus", title="ATACMS debate")
    assert not matches("atacms OR taurus", title="Storm Shadow debate")


def test_not_is_absence() -> None:
    assert matches("NOT opinion sanctions", title="new sanctions")
    assert not matches("NOT opinion sanctions", title="opinion: sanctions fail")


def test_a_not_b_means_a_and_not_b() -> None:
    assert parse_query("sanctions NOT iran") == parse_query("sanctions AND NOT iran")
    assert isinstance(parse_query("sanctions NOT iran"), And)
    assert matches("sanctions NOT iran", title="Russia sanctions")
    assert not matches("sanctions NOT iran", title="Iran sanctions")


@pytest.mark.parametrize(
    "query", ["NOT opinion", "NOT a NOT b", "NOT a OR NOT b", "NOT (a OR b)", "title:(NOT a)"]
)
def test_a_query_of_negations_only_is_an_error(query: str) -> None:
    error = query_error(query)
    assert "negations only" in error.message


def test_an_or_with_one_negative_branch_is_negation_only() -> None:
    # "a OR NOT b" matches every document without b: there is no required term
    assert "negations only" in query_error("a OR NOT b").message


# --- NEAR -------------------------------------------------------------------------------


def test_near_allows_at_most_n_words_between() -> None:
    assert matches("atacms NEAR/2 russia", title="ATACMS into Russia")
    assert matches("atacms NEAR/2 russia", title="ATACMS strikes into Russia")
    assert not matches("atacms NEAR/2 russia", title="ATACMS strikes deep into Russia")


def test_near_zero_means_adjacent() -> None:
    assert matches("atacms NEAR/0 russia", title="ATACMS Russia")
    assert not matches("atacms NEAR/0 russia", title="ATACMS in Russia")


def test_near_works_in_either_order() -> None:
    assert matches("atacms NEAR/2 russia", title="Russia hit by ATACMS")
    assert not matches("atacms NEAR/1 russia", title="Russia was hit by ATACMS")


def test_near_needs_both_operands_in_the_same_field() -> None:
    assert not matches("atacms NEAR/5 russia", title="ATACMS approved", content="Russia reacts")
    assert not matches("atacms NEAR/5 russia", summary="ATACMS approved", content="Russia")
    assert matches("atacms NEAR/5 russia", title="Russia", content="ATACMS hit Russia")


def test_near_counts_the_words_of_a_phrase_operand_as_one_occurrence() -> None:
    query = '"storm shadow" NEAR/1 approved'
    assert matches(query, title="Storm Shadow use approved")
    assert matches(query, title="approved: Storm Shadow")
    assert not matches(query, title="Storm Shadow use now approved")


def test_near_operand_may_be_a_parenthesised_or() -> None:
    query = "(atacms OR taurus) NEAR/3 (approv* OR allow*)"
    assert matches(query, title="Germany allows Taurus deliveries")
    assert matches(query, title="ATACMS strikes approved")
    assert not matches(query, title="Taurus debate continues for months, nothing approved")


def test_near_f_is_ordered() -> None:
    assert matches("atacms NEAR/2f russia", title="ATACMS into Russia")
    assert not matches("atacms NEAR/2f russia", title="Russia hit by ATACMS")


def test_near_reports_the_spans_of_both_operands() -> None:
    assert spans("atacms NEAR/3 russia", title="ATACMS fired into Russia") == [
        ("title", 0, 6, "ATACMS"),
        ("title", 18, 24, "Russia"),
    ]


@pytest.mark.parametrize(
    "query",
    ["(a AND b) NEAR/2 c", "a NEAR/2 (b AND c)", "NOT a NEAR/2 b", "/re/ NEAR/2 b"],
)
def test_near_operands_must_be_terms_phrases_or_ors(query: str) -> None:
    assert "NEAR operands" in query_error(query).message


def test_chained_near_is_refused_with_a_hint() -> None:
    error = query_error("a NEAR/2 b NEAR/2 c")
    assert "NEAR operands" in error.message
    assert error.offset == 11


# --- field prefixes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "doc", "expected"),
    [
        ("title:kursk", {"title": "Kursk front"}, True),
        ("title:kursk", {"summary": "Kursk front", "content": "Kursk"}, False),
        ("summary:kursk", {"summary": "Kursk front"}, True),
        ("summary:kursk", {"title": "Kursk", "content": "Kursk"}, False),
        ("content:kursk", {"content": "in Kursk"}, True),
        ("content:kursk", {"title": "Kursk", "summary": "Kursk"}, False),
        ("text:kursk", {"summary": "in Kursk"}, True),
        ("text:kursk", {"content": "in Kursk"}, True),
        ("text:kursk", {"title": "Kursk"}, False),
        ("author:kask", {"author": "Liina Kask"}, True),
        ("author:kask", {"title": "Kask"}, False),
        ("url:observer", {"url": "http://observer.example/news/1"}, True),
        ("url:observer", {"title": "observer"}, False),
        ("source:wire", {"source": "seed-wire"}, True),
        ("source:wire", {"content": "wire"}, False),
        ("lang:en", {"lang": "en"}, True),
        ("lang:en", {"lang": "de", "title": "en"}, False),
    ],
)
def test_a_field_prefix_restricts_the_term_to_that_field(
    query: str, doc: dict[str, str], expected: bool
) -> None:
    assert evaluate(parse_query(query), Document(doc), DEFAULT_FIELDS).matched is expected


def test_without_a_prefix_a_term_looks_only_in_the_given_fields() -> None:
    doc = Document({"author": "Kursk", "url": "http://kursk.example/", "source": "kursk"})
    assert not evaluate(parse_query("kursk"), doc, DEFAULT_FIELDS).matched
    assert evaluate(parse_query("kursk"), doc, ("author",)).matched


def test_a_field_prefix_applies_to_a_parenthesised_group() -> None:
    query = "title:(opinion OR analysis)"
    assert matches(query, title="Analysis: the Kursk front")
    assert not matches(query, content="opinion and analysis")


def test_field_names_are_case_insensitive() -> None:
    assert parse_query("TITLE:kursk") == parse_query("title:kursk")


# --- precedence -------------------------------------------------------------------------


def test_field_prefix_binds_tighter_than_or() -> None:
    assert parse_query("title:a OR b") == Or((parse_query("title:a"), parse_query("b")))


def test_field_prefix_binds_tighter_than_not() -> None:
    node = parse_query("x NOT title:a")
    assert isinstance(node, And)
    assert node.children[1] == Not(Field("title", parse_query("a")))


def test_not_binds_tighter_than_and() -> None:
    assert parse_query("NOT a b") == And((Not(parse_query("a")), parse_query("b")))


def test_near_binds_tighter_than_and() -> None:
    node = parse_query("a NEAR/3 b c")
    assert isinstance(node, And)
    near, last = node.children
    assert isinstance(near, Near)
    assert (near.left, near.right, near.distance, near.ordered) == (
        parse_query("a"), parse_query("b"), 3, False
    )
    assert last == parse_query("c")


def test_near_binds_tighter_than_or() -> None:
    node = parse_query("a OR b NEAR/2f c")
    assert isinstance(node, Or)
    assert node.children[0] == parse_query("a")
    near = node.children[1]
    assert isinstance(near, Near)
    assert near.ordered is True
    assert near.distance == 2


def test_and_binds_tighter_than_or() -> None:
    assert parse_query("a b OR c") == Or((parse_query("a b"), parse_query("c")))
    assert parse_query("a OR b c") == Or((parse_query("a"), parse_query("b c")))
    assert matches("a b OR c", title="c")
    assert not matches("a (b OR c)", title="c")


def test_parentheses_override_precedence() -> None:
    assert parse_query("(a OR b) c") == And((Or((parse_query("a"), parse_query("b"))),
                                             parse_query("c")))


# --- operators are uppercase ------------------------------------------------------------


def test_lowercase_and_or_not_are_ordinary_words() -> None:
    assert parse_query("war and peace") == And(
        (parse_query("war"), parse_query("and"), parse_query("peace"))
    )
    assert matches("war and peace", title="war and peace")
    assert not matches("war and peace", title="war, then peace")
    assert not matches("war or peace", title="war")
    assert matches("not guilty", title="he is not guilty")
    assert not matches("not guilty", title="he is guilty")


# --- regular expressions ----------------------------------------------------------------


def test_a_regex_is_case_insensitive_on_the_raw_text() -> None:
    assert spans(r"/u\.s\. army/", title="The U.S. Army said") == [
        ("title", 4, 13, "U.S. Army")
    ]


def test_a_regex_sees_punctuation_that_words_do_not() -> None:
    assert matches(r"/\d+th sanctions package/", title="EU drafts 15th sanctions package")
    assert not matches(r"/\d+th sanctions package/", title="EU drafts a sanctions package")


def test_a_regex_is_re2_and_runs_in_linear_time() -> None:
    text = "a" * 20_000 + "!"
    started = time.monotonic()
    assert not matches("/(a+)+$x/", content=text)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("pattern", ["/(/", "/a(?=b)/", r"/(a)\1/"])
def test_an_invalid_or_non_re2_regex_is_a_query_error(pattern: str) -> None:
    error = query_error("kursk AND " + pattern)
    assert "regex" in error.message
    assert error.offset == 10


def test_an_empty_regex_is_a_query_error() -> None:
    assert query_error("a //").offset == 2


# --- spans ------------------------------------------------------------------------------


def test_spans_index_the_raw_field_text() -> None:
    title = "  Ukraine’s  ATACMS: Zélensky’s view"
    got = spans("atacms OR zelensky", title=title)
    assert got == [("title", 13, 19, "ATACMS"), ("title", 21, 29, "Zélensky")]
    for _, start, end, text in got:
        assert title[start:end] == text


def test_spans_of_a_decomposed_accent_cover_the_combining_mark() -> None:
    title = "Ze\u0301lensky speaks"
    assert spans("zelensky", title=title) == [("title", 0, 9, title[:9])]


def test_spans_name_the_field_they_were_found_in() -> None:
    got = spans("kursk", title="Kursk", summary="x", content="In Kursk and kursk")
    assert got == [
        ("title", 0, 5, "Kursk"),
        ("content", 3, 8, "Kursk"),
        ("content", 13, 18, "kursk"),
    ]


def test_a_negated_term_contributes_no_span() -> None:
    assert spans("kursk NOT opinion", title="Kursk front") == [("title", 0, 5, "Kursk")]


# --- errors and their offsets -----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "offset", "fragment"),
    [
        ('sanctions AND "shadow fleet', 14, "quote"),
        ("a AND (b OR c", 6, "("),
        ("a OR {US", 5, "{"),
        ("a OR US}", 7, "}"),
        ("a OR b)", 6, ")"),
        ("kursk AND titel:x", 10, "unknown field"),
        ("a NEAR/x b", 2, "NEAR"),
        ("a NEAR/ b", 2, "NEAR"),
        ("a NEAR/5g b", 2, "NEAR"),
        ("a NEAR b", 2, "NEAR"),
        ("a /unclosed", 2, "regex"),
        ("a OR", 4, "ends"),
        ("a AND ()", 6, "empty"),
        ('a ""', 2, "empty phrase"),
        ("title: a", 5, "nothing after"),
    ],
)
def test_a_query_error_points_at_the_offending_character(
    query: str, offset: int, fragment: str
) -> None:
    error = query_error(query)
    assert error.offset == offset
    assert fragment in error.message
    assert str(error).endswith(f"(at character {offset + 1})")


def test_an_unknown_field_error_lists_the_fields() -> None:
    error = query_error("titel:x")
    assert "'titel'" in error.message
    for name in ("title", "summary", "content", "text", "author", "url", "source", "lang"):
        assert name in error.message


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_an_empty_query_is_an_error(query: str) -> None:
    error = query_error(query)
    assert error.message == "empty query"
    assert error.offset == 0


@pytest.mark.parametrize(
    "query",
    [
        "(" * 5000 + "a" + ")" * 5000,
        "a NEAR/" + "9" * 5000 + " b",
    ],
    ids=["deeply-nested-parentheses", "huge-near-distance"],
)
def test_pathological_queries_are_query_errors_not_crashes(query: str) -> None:
    with contextlib.suppress(QueryError):
        parse_query(query)


@pytest.mark.parametrize("query", ["a -OR", "a .AND", "a NOT.", "a .NEAR", "a -NEARBY"])
def test_a_word_that_spells_an_operator_prints_back_as_a_word(query: str) -> None:
    tree = parse_query(query)
    assert parse_query(to_text(tree)) == tree


# --- printing back ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "sanctions",
        '"shadow fleet"',
        "long-range",
        "{US}",
        '{"EU Council"}',
        "a b OR c",
        "(a OR b) c",
        "a NOT b",
        "NOT title:(opinion OR analysis) kursk",
        "(atacms OR \"storm shadow\") NEAR/12f (authori?e* OR approv*)",
        r"/u\.s\./ OR sanction*",
        "title:summary:x",
        "((a OR b) OR c) AND (d AND e)",
    ],
)
def test_printing_a_tree_and_parsing_it_gives_the_same_tree(query: str) -> None:
    tree = parse_query(query)
    assert parse_query(to_text(tree)) == tree


def test_the_real_rule_queries_print_back_to_the_same_tree() -> None:
    query = (
        '((ATACMS OR "Storm Shadow" OR "long-range missile*") NEAR/12 '
        '(authori?e* OR approv* OR "green light*")) AND ((Russia* OR Kursk) NEAR/12 '
        "(strike* OR target*)) NOT title:(opinion OR refus*)"
    )
    tree = parse_query(query)
    assert parse_query(to_text(tree)) == tree
    assert isinstance(tree, And)


def test_a_regex_keeps_its_pattern() -> None:
    node = parse_query(r"/a\/b [0-9]+/")
    assert isinstance(node, Regex)
    assert node.pattern == r"a\/b [0-9]+"


# --- properties -------------------------------------------------------------------------

_PIECES = [
    "a", "ab", "sanction*", "authori?e", "x*", "?", "*", "long-range", "Biden's", "Zélensky",
    "Straße", "US", "us", "and", "or", "not", "AND", "OR", "NOT", "NEAR/3", "NEAR/0f", "NEAR/x",
    "NEAR", "(", ")", '"', '"shadow fleet"', "{", "}", "{US}", '{"EU Council"}', "/", "/a.c/",
    "/(/", "title:", "text:", "lang:", "bogus:", ":", "-", "'", "\\", "\t", "\n", "é", "ß", "1",
]

_query_like = st.lists(st.sampled_from(_PIECES), max_size=12).flatmap(
    lambda parts: st.sampled_from([" ".join(parts), "".join(parts)])
)
_any_query = st.one_of(st.text(max_size=40), _query_like)


@settings(max_examples=300, deadline=None)
@given(_any_query)
@example("(" * 5000 + "a" + ")" * 5000)
def test_any_string_parses_or_raises_query_error(query: str) -> None:
    offset: int | None = None
    try:
        node = parse_query(query)
    except QueryError as exc:
        offset = exc.offset
    if offset is not None:
        assert 0 <= offset <= len(query)
    else:
        assert isinstance(node, Term | Regex | Field | Not | And | Or | Near)


@settings(max_examples=300, deadline=None)
@given(_any_query)
@example("a -OR")
@example("a .NEARBY")
def test_parse_print_parse_is_the_identity(query: str) -> None:
    try:
        tree = parse_query(query)
    except QueryError:
        return
    assert parse_query(to_text(tree)) == tree


def test_an_uppercase_word_that_begins_with_near_is_a_plain_word() -> None:
    tree = parse_query("NEARBY")
    assert isinstance(tree, Term)
    assert tree.words[0].literal == "nearby"


def test_an_invalid_regex_error_is_readable_text() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("/(unclosed/")
    assert "b'" not in caught.value.message
