"""Rule files -> rules: every key, every error at its file, line and column.

Every YAML file is written into ``tmp_path`` by the test that reads it, so the
line and column numbers asserted here can be checked by looking at the test.
"""

from __future__ import annotations

import dataclasses
import tempfile
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.durations import Rate as Throttle
from monitor.errors import RuleSetError
from monitor.match.query import parse_query
from monitor.rules.load import collect_rules, load_rules, rule_files
from monitor.rules.model import Dedupe, Rule
from monitor.rules.scalarpos import scalar_offset_position
from monitor.rules.yamlsource import YMap, YScalar, YSeq, read_yaml
from monitor.severity import Severity

MINIMAL = """\
id: sanctions
title: Sanctions
query: sanctions
examples:
  match: [new sanctions]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_one(path: Path) -> Rule:
    rules, errors, _ = collect_rules([path])
    assert [str(e) for e in errors] == []
    assert len(rules) == 1
    return rules[0]


def errors_of(*paths: Path) -> list[str]:
    return [str(e) for e in collect_rules(paths)[1]]


def warnings_of(*paths: Path) -> list[str]:
    return [str(w) for w in collect_rules(paths)[2]]


# --- valid files ------------------------------------------------------------------------


def test_a_file_with_one_rule_loads_it_with_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "one.yaml", MINIMAL)
    rule = load_one(path)
    assert rule.id == "sanctions"
    assert rule.title == "Sanctions"
    assert rule.query == parse_query("sanctions")
    assert rule.severity is Severity.MEDIUM
    assert rule.fields == ("title", "summary", "content")
    assert rule.sources == ("*",)
    assert rule.exclude_sources == ()
    assert rule.languages == ()
    assert rule.notify == ()
    assert rule.dedupe == Dedupe("story", timedelta(hours=72))
    assert rule.throttle is None
    assert rule.enabled is True
    assert (rule.origin.path, rule.origin.line, rule.origin.col) == (path, 1, 1)


def test_a_rules_list_loads_every_rule_with_its_own_origin(tmp_path: Path) -> None:
    path = write(tmp_path, "many.yaml", """\
        rules:
          - id: first
            title: First
            query: alpha
            examples: {match: [alpha]}
          - id: second
            title: Second
            query: beta
            examples: {match: [beta]}
        """)
    rules, errors, warnings = collect_rules([path])
    assert errors == []
    assert warnings == []
    assert [r.id for r in rules] == ["first", "second"]
    assert [(r.origin.line, r.origin.col) for r in rules] == [(2, 5), (6, 5)]


def test_every_rule_key_is_read_into_the_rule(tmp_path: Path) -> None:
    path = write(tmp_path, "full.yaml", """\
        id: full_rule-1
        title: "  Every key  "
        description: >
          A rule that sets
          every key.
        severity: HIGH
        query: sanctions
        all: [russia]
        any: ["package", "round"]
        none: ["title:opinion"]
        fields: [title, text]
        sources: ["wire-*", "observer"]
        exclude_sources: ["wire-test"]
        languages: [EN, de]
        notify: [desk-slack, desk-email]
        dedupe: {scope: article, window: 2h}
        throttle: 20/1h
        enabled: false
        tags: [russia, sanctions]
        examples:
          match:
            - new sanctions package on Russia
            - {title: Russia, content: a new round of sanctions}
          no_match: [sanctions relief]
        """)
    rule = load_one(path)
    assert rule.id == "full_rule-1"
    assert rule.title == "Every key"
    assert rule.description == "A rule that sets every key."
    assert rule.severity is Severity.HIGH
    assert rule.query == parse_query("sanctions")
    assert rule.all == (parse_query("russia"),)
    assert rule.any == (parse_query("package"), parse_query("round"))
    assert rule.none == (parse_query("title:opinion"),)
    assert rule.fields == ("title", "summary", "content")
    assert rule.sources == ("wire-*", "observer")
    assert rule.exclude_sources == ("wire-test",)
    assert rule.languages == ("en", "de")
    assert rule.notify == ("desk-slack", "desk-email")
    assert rule.notify_origin is not None
    assert (rule.notify_origin.line, rule.notify_origin.col) == (15, 9)
    assert rule.dedupe == Dedupe("article", timedelta(hours=2))
    assert rule.throttle == Throttle(20, timedelta(hours=1))
    assert rule.enabled is False
    assert rule.tags == ("russia", "sanctions")
    assert [e.fields for e in rule.examples_match] == [
        (("title", "new sanctions package on Russia"),
         ("content", "new sanctions package on Russia")),
        (("title", "Russia"), ("content", "a new round of sanctions")),
    ]
    assert [e.fields for e in rule.examples_no_match] == [
        (("title", "sanctions relief"), ("content", "sanctions relief"))
    ]
    assert [(e.origin.line, e.origin.col) for e in rule.examples_match] == [(22, 7), (23, 7)]


def test_a_rule_with_only_an_any_list_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path, "any.yaml", """\
        id: any-only
        title: Any only
        any: [atacms, taurus]
        examples: {match: [taurus]}
        """)
    assert load_one(path).any == (parse_query("atacms"), parse_query("taurus"))


def test_a_folder_is_read_recursively_in_name_order(tmp_path: Path) -> None:
    write(tmp_path, "rules/b.yaml", MINIMAL.replace("id: sanctions", "id: b"))
    write(tmp_path, "rules/a.yml", MINIMAL.replace("id: sanctions", "id: a"))
    write(tmp_path, "rules/sub/c.yaml", MINIMAL.replace("id: sanctions", "id: c"))
    write(tmp_path, "rules/notes.txt", "not a rule")
    files = rule_files([tmp_path / "rules"])
    assert [p.relative_to(tmp_path / "rules").as_posix() for p in files] == [
        "a.yml", "b.yaml", "sub/c.yaml"
    ]
    assert [r.id for r in load_rules([tmp_path / "rules"]).rules] == ["a", "b", "c"]


# --- the error line format ----------------------------------------------------------------


def test_an_unknown_key_suggests_the_closest_one(tmp_path: Path) -> None:
    path = write(tmp_path, "typo.yaml", """\
        id: typo
        title: Typo
        qeury: sanctions
        """)
    assert errors_of(path) == [f"{path}:3:1: error: unknown key 'qeury': did you mean 'query'?"]


def test_an_unknown_key_without_a_close_match_has_no_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "odd.yaml", MINIMAL + "colour: blue\n")
    assert errors_of(path) == [f"{path}:6:1: error: unknown key 'colour'"]


def test_load_rules_raises_one_error_holding_every_problem(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", """\
        id: Bad
        title: 3
        query: sanctions
        """)
    worse = write(tmp_path, "worse.yaml", "id: worse\n")
    with pytest.raises(RuleSetError) as caught:
        load_rules([bad, worse])
    assert str(caught.value).splitlines() == [
        f"{bad}:1:5: error: invalid id 'Bad': use lowercase letters, digits, - and _,"
        " starting with a letter or digit",
        f"{bad}:2:8: error: title: expected a non-empty string, got the number 3",
        f"{worse}:1:1: error: missing required key 'title'",
    ]
    assert all(e.severity == "error" for e in caught.value.errors)


def test_a_file_with_an_error_contributes_no_rule_but_others_still_load(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", MINIMAL)
    bad = write(tmp_path, "bad.yaml", """\
        rules:
          - id: fine
            title: Fine
            query: fine
          - id: broken
            title: Broken
            query: "x*"
        """)
    rules, errors, _ = collect_rules([good, bad])
    assert [r.id for r in rules] == ["sanctions"]
    assert len(errors) == 1
    assert errors[0].path == str(bad)


# --- required keys and ids ------------------------------------------------------------------


def test_a_missing_id_is_reported_at_the_rule(tmp_path: Path) -> None:
    path = write(tmp_path, "noid.yaml", """\
        rules:
          - title: No id
            query: sanctions
        """)
    assert errors_of(path) == [f"{path}:2:5: error: missing required key 'id'"]


def test_a_missing_title_is_reported_at_the_rule(tmp_path: Path) -> None:
    path = write(tmp_path, "notitle.yaml", "id: no-title\nquery: sanctions\n")
    assert errors_of(path) == [f"{path}:1:1: error: missing required key 'title'"]


def test_an_empty_title_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.yaml", 'id: empty\ntitle: "  "\nquery: sanctions\n')
    assert errors_of(path) == [
        f"{path}:2:8: error: title: expected a non-empty string, got '  '"
    ]


@pytest.mark.parametrize("bad_id", ["Upper", "-dash-first", "_under", "has space", "dot.ted",
                                    "é"])
def test_an_id_outside_the_allowed_alphabet_is_an_error(tmp_path: Path, bad_id: str) -> None:
    path = write(tmp_path, "id.yaml", f'title: T\nquery: q\nid: "{bad_id}"\n')
    errors = errors_of(path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:3:5: error: invalid id {bad_id!r}")


@pytest.mark.parametrize("good_id", ["a", "0day", "long-range_strike-2"])
def test_ids_of_lowercase_letters_digits_dashes_and_underscores_are_valid(
    tmp_path: Path, good_id: str
) -> None:
    path = write(tmp_path, "id.yaml", MINIMAL.replace("id: sanctions", f"id: {good_id}"))
    assert load_one(path).id == good_id


def test_an_id_used_in_two_files_names_both_places(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", MINIMAL)
    second = write(tmp_path, "b.yaml", "# the same id again\n" + MINIMAL)
    rules, errors, _ = collect_rules([first, second])
    assert [r.origin.path for r in rules] == [first]
    assert [str(e) for e in errors] == [
        f"{second}:2:5: error: duplicate rule id 'sanctions' (also at {first}:1:5)"
    ]


def test_an_id_used_twice_in_one_rules_list_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "twice.yaml", """\
        rules:
          - {id: same, title: One, query: one}
          - {id: same, title: Two, query: two}
        """)
    assert errors_of(path) == [
        f"{path}:3:10: error: duplicate rule id 'same' (also at {path}:2:10)"
    ]


# --- YAML traps ---------------------------------------------------------------------------


def test_a_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "dupkey.yaml", """\
        id: dup
        title: First
        query: sanctions
        title: Second
        """)
    assert errors_of(path) == [f"{path}:4:1: error: duplicate key 'title' (first at line 2)"]


def test_an_alias_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "alias.yaml", """\
        id: alias
        title: &t Alias
        query: *t
        """)
    assert errors_of(path) == [
        f"{path}:3:8: error: invalid YAML: aliases (*name) are not allowed in rule files"
    ]


@pytest.mark.timeout(5)
def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 12):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    lines.append("id: bomb\ntitle: Bomb\nquery: lol")
    path = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    errors = errors_of(path)
    assert len(errors) == 1
    assert "aliases (*name) are not allowed" in errors[0]
    assert errors[0].startswith(f"{path}:2:")


def test_a_merge_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "merge.yaml", MINIMAL + "<<: {severity: high}\n")
    assert errors_of(path) == [f"{path}:6:1: error: merge keys (<<) are not allowed"]


def test_a_file_over_one_mebibyte_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, "huge.yaml", MINIMAL + "#" * (1024 * 1024) + "\n")
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:1:1: error: file too large (")


def test_no_in_a_languages_list_stays_the_string_no(tmp_path: Path) -> None:
    path = write(tmp_path, "norway.yaml", MINIMAL + "languages: [no, on, off, yes, n]\n")
    assert load_one(path).languages == ("no", "on", "off", "yes", "n")


def test_the_yaml_reader_resolves_only_yaml_1_2_booleans(tmp_path: Path) -> None:
    path = write(tmp_path, "scalars.yaml", "a: [no, yes, on, true, False, 010, 1.5, ~, '1']\n")
    root = read_yaml(path).root
    assert isinstance(root, YMap)
    seq = root.items["a"][1]
    assert isinstance(seq, YSeq)
    values = [item.value for item in seq.items if isinstance(item, YScalar)]
    assert values == ["no", "yes", "on", True, False, 10, 1.5, None, "1"]


def test_enabled_yes_is_not_a_boolean_and_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "yes.yaml", MINIMAL + "enabled: yes\n")
    assert errors_of(path) == [f"{path}:6:10: error: enabled: expected true or false, got 'yes'"]


def test_enabled_false_loads_a_disabled_rule(tmp_path: Path) -> None:
    path = write(tmp_path, "off.yaml", MINIMAL + "enabled: false\n")
    assert load_one(path).enabled is False


def test_invalid_yaml_syntax_is_reported_with_its_position(tmp_path: Path) -> None:
    path = write(tmp_path, "syntax.yaml", 'id: x\ntitle: "unclosed\n')
    errors = errors_of(path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:")
    assert ": error: invalid YAML: " in errors[0]


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.yaml", "# nothing here\n")
    assert errors_of(path) == [
        f"{path}:1:1: error: empty file: expected a rule or a 'rules:' list"
    ]


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert errors_of(path) == [f"{path}:1:1: error: no such file or folder"]


# --- wrong types at the value's position --------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("title: 3", "6:8: error: title: expected a non-empty string, got the number 3"),
        ("severity: urgent",
         "6:11: error: severity: 'urgent' is not one of info, low, medium, high, critical"),
        ("query: [a, b]", "6:8: error: query: expected a query string, got a list"),
        ("none: [{a: b}]", "6:8: error: none[0]: expected a query string, got a mapping"),
        ("sources: {a: b}", "6:10: error: sources: expected a list of strings, got a mapping"),
        ("tags: [ok, true]", "6:12: error: tags[1]: expected a string, got the boolean true"
                             " (quote it: YAML reads some words as booleans or numbers)"),
        ("languages: [en, 1]", "6:17: error: languages[1]: expected a string, got the number 1"
                               " (quote it: YAML reads some words as booleans or numbers)"),
        ("fields: [title, body]",
         "6:17: error: fields[1]: unknown field 'body'"
         " (one of title, summary, content, author, url, source, lang, text)"),
        ("examples: [a]",
         "6:11: error: examples: expected a mapping with 'match' and 'no_match' lists"),
        ("enabled: 1", "6:10: error: enabled: expected true or false, got the number 1"),
    ],
)
def test_a_wrong_type_is_reported_at_the_values_line_and_column(
    tmp_path: Path, line: str, message: str
) -> None:
    key = line.split(":")[0]
    # MINIMAL without the key under test: the line under test is always line 6
    lines = ["id: types", "title: Types", "query: sanctions", "examples: {match: [x]}"]
    lines = [ln for ln in lines if not ln.startswith(key + ":")]
    base = "\n".join(lines + ["#"] * (5 - len(lines))) + "\n"
    path = write(tmp_path, "types.yaml", base + line + "\n")
    assert f"{path}:{message}" in errors_of(path)


def test_example_mappings_accept_only_article_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "ex.yaml", """\
        id: ex
        title: Ex
        query: sanctions
        examples:
          match:
            - {headline: sanctions}
          maybe: [x]
        """)
    assert errors_of(path) == [
        f"{path}:7:3: error: examples: unknown key 'maybe' (use 'match' and 'no_match')",
        f"{path}:6:18: error: examples.match[0]: unknown field 'headline'"
        " (one of title, summary, content, author, url, source, lang)",
    ]


# --- query errors, at the file position of the offending character ------------------------


def test_a_query_error_in_a_folded_block_is_reported_at_its_file_position(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "folded.yaml", """\
        id: folded-query
        title: Folded query
        query: >
          (ATACMS OR "Storm Shadow")
          NEAR/12
          (authori?e* OR approv* OR x*)
        """)
    # line 6 is `  (authori?e* OR approv* OR x*)`: the `x` is in column 29
    assert errors_of(path) == [
        f"{path}:6:29: error: query: wildcard 'x*' needs at least two literal characters"
        " (it would match too much)"
    ]


def test_an_unclosed_quote_in_a_folded_block_points_at_the_quote(tmp_path: Path) -> None:
    path = write(tmp_path, "quote.yaml", """\
        id: unclosed
        title: Unclosed

        query: >
          sanctions NEAR/8
          (Russia OR "Moscow)
        """)
    # line 6 is `  (Russia OR "Moscow)`: the quote is in column 14
    assert errors_of(path) == [f"{path}:6:14: error: query: unclosed quote"]


def test_a_query_error_in_a_literal_block_is_reported_at_its_file_position(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "literal.yaml", """\
        id: literal
        title: Literal
        query: |
          sanctions
            AND titel:russia
        """)
    # line 5 is `    AND titel:russia`: the field name starts in column 9
    errors = errors_of(path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:5:9: error: query: unknown field 'titel'")


def test_a_query_error_in_a_plain_multiline_scalar_is_reported_at_its_position(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "plain.yaml", "id: plain\ntitle: Plain\nquery: sanctions AND\n  x*\n")
    assert errors_of(path) == [
        f"{path}:4:3: error: query: wildcard 'x*' needs at least two literal characters"
        " (it would match too much)"
    ]


def test_a_query_error_in_a_quoted_scalar_counts_escapes(tmp_path: Path) -> None:
    path = write(tmp_path, "quoted.yaml", """\
        id: quoted
        title: Quoted
        query: "\\"shadow fleet\\" AND x*"
        all: ['Biden''s x*']
        """)
    # line 3: `query: "\"shadow fleet\" AND x*"`: the `x` is in column 30;
    # line 4: `all: ['Biden''s x*']`: the `x` is in column 17
    assert errors_of(path) == [
        f"{path}:3:30: error: query: wildcard 'x*' needs at least two literal characters"
        " (it would match too much)",
        f"{path}:4:17: error: all[0]: wildcard 'x*' needs at least two literal characters"
        " (it would match too much)",
    ]


def test_a_query_error_after_hex_and_line_break_escapes_is_at_its_character(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "escapes.yaml", """\
        id: escapes
        title: Escapes
        query: "caf\\u00e9 AND \\x41\\U0001F680 AND\\tsanctions\\n AND (russia"
        """)
    # line 3: `query: "caf\u00e9 AND \x41\U0001F680 AND\tsanctions\n AND (russia"`:
    # the "(" is in column 59, after escapes six, four, ten, two and two characters long
    assert errors_of(path) == [f"{path}:3:59: error: query: ( without )"]


def test_a_query_error_in_a_folded_double_quoted_scalar_is_on_its_own_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "folded-quoted.yaml"
    path.write_text('id: folded-quoted\ntitle: Folded quoted\n'
                    'query: "sanctions\\u0020AND   \n'
                    '  \\"shadow fleet\\"\n'
                    '\n'
                    '    AND \\\n'
                    '  (russia"\n', encoding="utf-8")
    # the first break folds to a space (its trailing blanks dropped), the empty line to a
    # line break, the escaped break to nothing: line 7 is `  (russia"`, the "(" in column 3
    assert errors_of(path) == [f"{path}:7:3: error: query: ( without )"]


def test_a_double_quoted_scalar_that_cannot_be_mapped_points_at_its_quote(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "q.yaml", 'query: "caf\\u00e9 AND (russia"\n')
    document = read_yaml(path)
    assert isinstance(document.root, YMap)
    scalar = document.root.items["query"][1]
    assert isinstance(scalar, YScalar)
    where = scalar_offset_position(document, scalar, 9)
    assert (where.line, where.col) == (1, 23)
    # a value the source does not decode to (never made by YAML itself) is not guessed at
    altered = dataclasses.replace(scalar, value="cafe AND (russia")
    assert scalar_offset_position(document, altered, 9) == scalar.pos


_DOUBLE_QUOTED_PIECES = ["sanctions", " ", "  ", "\t", '\\"', "\\\\", "\\n", "\\t", "\\x41",
                         "\\u00e9", "\\U0001F680", "\\/", "\\_", "\n", "\n\n", "\n  ",
                         " \n   \n ", "\\\n", "\\\n  ", "é", "'", ":", "#"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_DOUBLE_QUOTED_PIECES), min_size=1, max_size=10),
       st.integers(min_value=0, max_value=40))
def test_every_character_of_a_double_quoted_scalar_maps_to_where_it_was_written(
    pieces: list[str], offset: int,
) -> None:
    source = 'query: "' + "".join(pieces) + '"\n'
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "q.yaml"
        path.write_text(source, encoding="utf-8")
        document = read_yaml(path)
    assert isinstance(document.root, YMap)
    scalar = document.root.items["query"][1]
    assert isinstance(scalar, YScalar)
    assert isinstance(scalar.value, str)
    where = scalar_offset_position(document, scalar, offset)
    assert where != scalar.pos  # mapped, not fallen back to the opening quote
    written = source[where.index]
    if offset >= len(scalar.value):
        assert where.index == scalar.end.index - 1  # the closing quote
    elif written not in "\\ \t\n":  # escapes and folds sit at their backslash or break
        assert written == scalar.value[offset]


def test_a_query_error_in_a_none_list_names_its_index(tmp_path: Path) -> None:
    path = write(tmp_path, "none.yaml", """\
        id: nonelist
        title: None list
        query: sanctions
        none:
          - "title:opinion"
          - "title:(opinion"
        """)
    # line 6 is `  - "title:(opinion"`: the parenthesis is in column 12
    assert errors_of(path) == [f"{path}:6:12: error: none[1]: ( without )"]


def test_a_negation_only_query_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "neg.yaml", "id: neg\ntitle: Neg\nquery: NOT opinion\n")
    assert errors_of(path) == [
        f"{path}:3:8: error: query: a query of negations only matches almost everything:"
        " add a positive term"
    ]


def test_a_wildcard_with_one_literal_character_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "wild.yaml", "id: wild\ntitle: Wild\nquery: sanctions OR s*\n")
    assert errors_of(path) == [
        f"{path}:3:21: error: query: wildcard 's*' needs at least two literal characters"
        " (it would match too much)"
    ]


def test_a_rule_without_a_positive_query_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "nopos.yaml", """\
        id: nopos
        title: No positive query
        none: ["title:opinion"]
        """)
    assert errors_of(path) == [
        f"{path}:1:1: error: a rule needs at least one positive query: 'query', 'all' or 'any'"
    ]


# --- dedupe and throttle ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{scope: article}", Dedupe("article", timedelta(hours=72))),
        ("{window: 30m}", Dedupe("story", timedelta(minutes=30))),
        ("{scope: story, window: 7d}", Dedupe("story", timedelta(days=7))),
    ],
)
def test_dedupe_is_read_with_defaults_for_missing_parts(
    tmp_path: Path, value: str, expected: Dedupe
) -> None:
    path = write(tmp_path, "dedupe.yaml", MINIMAL + f"dedupe: {value}\n")
    assert load_one(path).dedupe == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("72h", "6:9: error: dedupe: expected a mapping like {scope: story, window: 72h}"),
        ("{scope: world}", "6:17: error: dedupe.scope: 'world' is not one of story, article"),
        ("{window: 3x}", "6:18: error: dedupe.window: invalid duration '3x'"),
        ("{window: 72}",
         "6:18: error: dedupe.window: expected a non-empty string, got the number 72"),
        ("{scope: story, size: 3}",
         "6:24: error: dedupe: unknown key 'size' (use 'scope' and 'window')"),
    ],
)
def test_dedupe_errors_are_reported_at_their_value(
    tmp_path: Path, value: str, message: str
) -> None:
    path = write(tmp_path, "dedupe.yaml", MINIMAL + f"dedupe: {value}\n")
    errors = errors_of(path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:{message}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20/1h", Throttle(20, timedelta(hours=1))),
        ("5 / 30m", Throttle(5, timedelta(minutes=30))),
        ("1/1d", Throttle(1, timedelta(days=1))),
    ],
)
def test_throttle_is_count_per_period(tmp_path: Path, value: str, expected: Throttle) -> None:
    path = write(tmp_path, "throttle.yaml", MINIMAL + f"throttle: {value}\n")
    assert load_one(path).throttle == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0/1h", "throttle: '0/1h' is not COUNT/PERIOD, e.g. 20/1h"),
        ("20", "throttle: expected a non-empty string, got the number 20"),
        ("twenty/1h", "throttle: 'twenty/1h' is not COUNT/PERIOD, e.g. 20/1h"),
        ("20/1x", "throttle: invalid duration '1x'"),
        ("20/60", "throttle: invalid duration '60'"),
    ],
)
def test_throttle_errors_are_reported_at_their_value(
    tmp_path: Path, value: str, message: str
) -> None:
    path = write(tmp_path, "throttle.yaml", MINIMAL + f"throttle: {value}\n")
    errors = errors_of(path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:6:11: error: {message}")


# --- warnings -----------------------------------------------------------------------------


def test_a_rule_without_examples_gets_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "noex.yaml", "id: noex\ntitle: No examples\nquery: sanctions\n")
    rules, errors, warnings = collect_rules([path])
    assert [r.id for r in rules] == ["noex"]
    assert errors == []
    assert [str(w) for w in warnings] == [
        f"{path}:1:1: warning: rule has no examples: add examples.match and examples.no_match"
    ]
    assert warnings[0].severity == "warning"


def test_a_lowercase_us_gets_a_warning_suggesting_the_acronym(tmp_path: Path) -> None:
    path = write(tmp_path, "us.yaml", MINIMAL.replace("query: sanctions",
                                                      "query: sanctions AND us"))
    assert warnings_of(path) == [
        f"{path}:3:22: warning: query: 'us' also matches the ordinary word;"
        " write {US} for the acronym"
    ]


def test_the_case_sensitive_acronym_gets_no_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "us.yaml", MINIMAL.replace("query: sanctions",
                                                      "query: sanctions AND {US}"))
    assert warnings_of(path) == []


def test_a_regional_language_tag_is_read_as_its_primary_subtag_with_a_warning(
    tmp_path: Path,
) -> None:
    """The daemon keeps an article's primary subtag (``en-US`` is ``en``), so a rule's
    ``en-us`` would otherwise match nothing at all."""
    path = write(tmp_path, "lang.yaml", MINIMAL + "languages: [en-US, de, EN]\n")
    assert load_one(path).languages == ("en", "de")
    assert warnings_of(path) == [
        f"{path}:6:12: warning: languages: 'en-US' is compared as 'en': an article keeps"
        " only the first part of its language tag"
    ]


def test_load_rules_keeps_the_warnings_of_a_valid_set(tmp_path: Path) -> None:
    path = write(tmp_path, "noex.yaml", "id: noex\ntitle: No examples\nquery: eu\n")
    rule_set = load_rules([path])
    assert [r.id for r in rule_set.rules] == ["noex"]
    assert len(rule_set.warnings) == 2
    assert any("'eu' also matches the ordinary word" in w for w in rule_set.warnings)
    assert any("rule has no examples" in w for w in rule_set.warnings)


# --- the shipped rules --------------------------------------------------------------------


def test_the_shipped_rules_load_without_errors_or_warnings() -> None:
    rules_dir = Path(__file__).resolve().parent.parent / "rules"
    rule_set = load_rules([rules_dir])
    assert sorted(r.id for r in rule_set.rules) == [
        "long-range-strike-policy", "north-korean-troops", "russia-sanctions-package"
    ]
    assert rule_set.warnings == ()
