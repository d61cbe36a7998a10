"""Black-box: the command-line contracts of DESIGN.md and docs/rules.md.

``rules check`` (``PATH:LINE:COL: error: MESSAGE``, exit 1 on any error, warnings alone
exit 0), ``rules test RULES INPUT [--json] [--explain]`` (spans index the raw field
text; bad input or rules exit 2 with the error on standard error) and configuration
errors (exit 2, one line per problem naming the file and the key). Every command of
this module is started at once by one fixture, so their start-up costs overlap.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.blackbox_support import Result, finish, once_per_session, start

FILES: dict[str, str] = {
    # rules check: each problem at its own line and column
    "check/unknown-key.yaml": "id: a-rule\ntitle: A\nseverty: high\nquery: sanctions\n",
    "check/block-query.yaml": ("id: b-rule\ntitle: B\nquery: >\n  (sanctions OR embargo)\n"
                               "  NEAR/5 (russia OR moscow\n"),
    "check/double-quoted.yaml": ('id: c-rule\ntitle: C\n'
                                 'query: "\\"shadow fleet\\" AND caf\\u00e9 AND (russia"\n'),
    "check/single-quoted.yaml": "id: d-rule\ntitle: D\nquery: 'it''s AND (russia'\n",
    "check/list-query.yaml": ('id: e-rule\ntitle: E\nquery: sanctions\n'
                              'none: ["title:(opinion OR analysis"]\n'),
    "check/duplicate-key.yaml": "id: f-rule\ntitle: F\ntitle: F again\nquery: sanctions\n",
    "check/alias.yaml": "id: g-rule\ntitle: &t G\ndescription: *t\nquery: sanctions\n",
    "check/failing-examples.yaml": ('id: h-rule\ntitle: H\nquery: sanctions\nexamples:\n'
                                    '  match: ["embargo on oil"]\n'
                                    '  no_match: ["new sanctions"]\n'),
    "check/negations-only.yaml": "id: i-rule\ntitle: I\nquery: NOT sanctions\n",
    "check/dup-id-1.yaml": "id: same-id\ntitle: One\nquery: sanctions\n",
    "check/dup-id-2.yaml": "\n\nid: same-id\ntitle: Two\nquery: embargo\n",
    # warnings only
    "warn/lowercase-us.yaml": ('id: us-rule\ntitle: US\nquery: us AND sanctions\n'
                               'languages: [no]\nexamples:\n  match: ["us sanctions"]\n'
                               '  no_match: ["sanctions"]\n'),
    # rules test
    "test/rules.yaml": ('rules:\n  - id: words\n    title: Words\n'
                        '    query: sanctions OR "shadow fleet" OR zelensky OR strasse\n'
                        '  - id: near\n    title: Near\n    query: long-range NEAR/3 missiles\n'
                        '  - id: guarded\n    title: Guarded\n    query: sanctions NEAR/3 russia\n'
                        '    all: ["{EU}"]\n    none: ["title:opinion"]\n'),
    "test/english.yaml": "id: english\ntitle: English\nquery: sanctions\nlanguages: [en]\n",
    "test/languages.jsonl": ('{"id": "plain", "title": "New sanctions", "language": "en"}\n'
                             '{"id": "regional", "title": "New sanctions", "language": "en-US"}\n'
                             '{"id": "german", "title": "Neue sanctions", "language": "de-DE"}\n'),
    "test/story.txt": "Sanctions hit Moscow\nThe EU adopted new sanctions on Friday.\n",
    "test/bad.jsonl": '{"id": "x1", "title": "sanctions"}\n{not json\n',
}

ARTICLES = [
    {"id": "markup", "title": "Straße sanctions",
     "summary": "<b>New</b> sanctions on the &quot;shadow&nbsp;fleet&quot; &amp; more",
     "content": ""},
    {"id": "wide", "title": "🚀🚀 Zélensky: sanctions", "summary": "",
     "content": "Ｓａｎｃｔｉｏｎｓ and ﬁnal long\u2011range cruise missiles"},
    {"id": "nothing", "title": "Markets rally", "summary": "", "content": ""},
    {"id": "opinion", "title": "Opinion: EU sanctions on Russia", "summary": "", "content": ""},
    {"id": "no-eu", "title": "Russia sanctions", "summary": "no bloc named", "content": ""},
]

CONFIGS = {
    "config/many-problems.toml": ('[rules]\npaths = ["rules"]\n[[sources]]\nname = "a"\n'
                                  'url = "x.xml"\ninterval = 15\n[defaults]\nmax_age = "7x"\n'
                                  '[fetch]\nmax_bytez = 5\n'),
    "config/syntax.toml": '[rules]\npaths = ["rules"]\n[defaults]\ninterval = 15m\n',
    "config/unknown-channel.toml": ('[rules]\npaths = ["rules"]\n[defaults]\n'
                                    'channels = ["nowhere"]\n'),
    "config/name-and-duplicate.toml": ('[rules]\npaths = ["rules"]\n[[sources]]\n'
                                       'name = "Bad Name"\nurl = "x.xml"\n[[sources]]\n'
                                       'name = "ok"\nurl = "x.xml"\n[[sources]]\nname = "ok"\n'
                                       'url = "y.xml"\n'),
    "config/bad-rules.toml": '[rules]\npaths = ["../check/unknown-key.yaml"]\n',
}

COMMANDS: dict[str, list[str]] = {
    "check-errors": ["rules", "check", "check"],
    "check-warnings": ["rules", "check", "warn"],
    "test-json": ["rules", "test", "test/rules.yaml", "test/articles.jsonl", "--json"],
    "test-explain": ["rules", "test", "test/rules.yaml", "test/articles.jsonl", "--explain"],
    "test-languages": ["rules", "test", "test/english.yaml", "test/languages.jsonl", "--json"],
    "test-text-file": ["rules", "test", "test/rules.yaml", "test/story.txt", "--json"],
    "test-bad-input": ["rules", "test", "test/rules.yaml", "test/bad.jsonl", "--json"],
    "test-bad-rules": ["rules", "test", "check/unknown-key.yaml", "test/story.txt", "--json"],
    **{f"run-{Path(name).stem}": ["run", "--once", "--config", name] for name in CONFIGS},
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    return once_per_session(tmp_path_factory, "cli", lambda: observe(tmp_path_factory))


def observe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    folder: Path = tmp_path_factory.mktemp("cli")
    for name, text in {**FILES, **CONFIGS}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / "config" / "rules").mkdir()
    (folder / "test" / "articles.jsonl").write_text(
        "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in ARTICLES))
    started = {name: start(args, folder) for name, args in COMMANDS.items()}
    return {name: finish(process, timeout=60) for name, process in started.items()}


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines() + result.stderr.splitlines()
            if ": error: " in line]


@pytest.mark.parametrize(("file", "position"), [
    ("check/unknown-key.yaml", "3:1"),
    ("check/block-query.yaml", "5:10"),  # the "(" left open, on the block's second line
    ("check/single-quoted.yaml", "3:19"),
    ("check/list-query.yaml", "4:15"),
    ("check/duplicate-key.yaml", "3:1"),
    ("check/dup-id-2.yaml", r"3:\d+"),  # the second file's id line
])
def test_rules_check_reports_each_error_at_its_line_and_column(
        results: dict[str, Result], file: str, position: str) -> None:
    lines = error_lines(results["check-errors"])
    assert any(re.match(rf"{re.escape(file)}:{position}: error: ", line) for line in lines), lines


def test_rules_check_column_inside_a_double_quoted_query_with_escapes(
        results: dict[str, Result]) -> None:
    lines = error_lines(results["check-errors"])
    # query: "\"shadow fleet\" AND caf\u00e9 AND (russia"  -- the "(" is column 44
    assert any(line.startswith("check/double-quoted.yaml:3:44: error: ") for line in lines), \
        [line for line in lines if "double-quoted" in line]


@pytest.mark.parametrize("file", ["check/alias.yaml", "check/failing-examples.yaml",
                                  "check/negations-only.yaml"])
def test_rules_check_reports_other_errors_with_a_position(
        results: dict[str, Result], file: str) -> None:
    lines = error_lines(results["check-errors"])
    assert any(line.startswith(f"{file}:") and line.split(":")[1].isdigit() for line in lines
               if line.startswith(file)), lines


def test_failing_examples_are_both_reported(results: dict[str, Result]) -> None:
    lines = [ln for ln in error_lines(results["check-errors"])
             if ln.startswith("check/failing-examples.yaml:")]
    assert len(lines) == 2, lines
    assert any("embargo on oil" in ln for ln in lines), lines


def test_rules_check_exits_1_on_errors_and_0_on_warnings_alone(
        results: dict[str, Result]) -> None:
    assert results["check-errors"].rc == 1
    warnings = results["check-warnings"]
    assert warnings.rc == 0, warnings.stdout + warnings.stderr
    text = warnings.stdout + warnings.stderr
    assert "warn/lowercase-us.yaml:3:8: warning:" in text, text
    assert "{US}" in text, text
    assert not error_lines(warnings)  # languages: [no] is Norwegian, not false


def matches(results: dict[str, Result], name: str = "test-json") -> list[dict[str, Any]]:
    result = results[name]
    assert result.rc == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_rules_test_json_spans_index_the_raw_field_text(results: dict[str, Result]) -> None:
    raw = {a["id"]: a for a in ARTICLES}
    found = matches(results)
    assert found
    for match in found:
        for span in match["spans"]:
            text = raw[match["article"]][span["field"]]
            assert text[span["start"]:span["end"]] == span["text"], (match["article"], span)


def test_rules_test_json_prints_one_object_per_matching_article_and_rule(
        results: dict[str, Result]) -> None:
    pairs = sorted((m["article"], m["rule"]) for m in matches(results))
    assert pairs == [("markup", "words"), ("no-eu", "words"), ("opinion", "words"),
                     ("wide", "near"), ("wide", "words")], pairs


def test_rules_test_json_finds_words_behind_case_folding_width_and_markup(
        results: dict[str, Result]) -> None:
    spans = {(m["article"], s["text"]) for m in matches(results) for s in m["spans"]}
    assert ("markup", "Straße") in spans
    assert ("markup", "shadow&nbsp;fleet") in spans
    assert ("wide", "Ｓａｎｃｔｉｏｎｓ") in spans
    assert ("wide", "Zélensky") in spans
    assert ("wide", "long\u2011range") in spans


def test_rules_test_on_a_plain_text_file_uses_the_file_name_as_id(
        results: dict[str, Result]) -> None:
    found = matches(results, "test-text-file")
    assert [m["article"] for m in found] == ["story.txt"]
    title = next(s for s in found[0]["spans"] if s["field"] == "title")
    assert (title["start"], title["end"], title["text"]) == (0, 9, "Sanctions")


def test_rules_test_explain_names_the_clause_that_failed(results: dict[str, Result]) -> None:
    result = results["test-explain"]
    assert result.rc == 0, result.stderr
    blocks = result.stdout.split("\n")
    opinion = next(i for i, line in enumerate(blocks) if line.startswith("opinion"))
    no_eu = next(i for i, line in enumerate(blocks) if line.startswith("no-eu"))
    assert any("guarded" in ln and "none" in ln for ln in blocks[opinion:opinion + 5]), blocks
    assert any("guarded" in ln and "all" in ln for ln in blocks[no_eu:no_eu + 5]), blocks


@pytest.mark.parametrize(("name", "where"), [("test-bad-input", "test/bad.jsonl:2"),
                                         ("test-bad-rules", "check/unknown-key.yaml:3:1")])
def test_rules_test_exits_2_with_the_error_on_stderr(
        results: dict[str, Result], name: str, where: str) -> None:
    result = results[name]
    assert result.rc == 2, result
    assert result.stdout == "", result
    assert where in result.stderr, result.stderr


@pytest.mark.parametrize(("name", "needles"), [
    ("run-many-problems", ["many-problems.toml", "sources[0].interval", "defaults.max_age",
                           "fetch.max_bytez"]),
    ("run-syntax", ["syntax.toml", "line 4"]),
    ("run-unknown-channel", ["unknown-channel.toml", "defaults.channels", "nowhere"]),
    ("run-bad-rules", ["unknown-key.yaml:3:1: error:"]),
])
def test_configuration_errors_exit_2_with_one_line_per_problem(
        results: dict[str, Result], name: str, needles: list[str]) -> None:
    result = results[name]
    assert result.rc == 2, result
    for needle in needles:
        assert sum(needle in line for line in result.stderr.splitlines()) >= 1, (needle,
                                                                                result.stderr)
    assert "Traceback" not in result.stderr


def test_every_configuration_problem_is_reported_at_once(results: dict[str, Result]) -> None:
    result = results["run-name-and-duplicate"]
    assert result.rc == 2
    assert "sources[0].name" in result.stderr, result.stderr
    assert "duplicate source name 'ok'" in result.stderr, result.stderr


def test_rules_test_matches_a_regional_language_tag_like_the_daemon(
        results: dict[str, Result]) -> None:
    assert sorted(m["article"] for m in matches(results, "test-languages")) == [
        "plain", "regional"]
