"""Conformance: the rule language and the rules CLI, checked from DESIGN.md's contract alone.

Every check goes through the command line exactly as DESIGN.md writes it
(`newsmon rules check`, `newsmon rules test RULES INPUT --json`, `newsmon backtest`), in temp dirs,
so what is pinned here is the outward behaviour, not how monitor/ builds it.
The query-table cases share one `rules test` run: one rule and one article per case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def newsmon(
    *args: str | Path, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_jsonl(path: Path, articles: list[dict[str, str]]) -> Path:
    path.write_text(
        "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles), encoding="utf-8"
    )
    return path


def json_hits(proc: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    matches: bool
    title: str = ""
    summary: str = ""
    content: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # author, link, source, language
    rule: dict[str, object] = field(default_factory=dict)  # further rule keys


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


# fmt: off
QUERY_TABLE = [
    # words: whole word, case- and accent-insensitive
    Case("a word matches the whole word", "sanctions", True, title="New sanctions on Russia"),
    Case("a word does not match inside a longer word", "sanction", False,
         title="New sanctions on Russia"),
    Case("a word ignores case", "sanctions", True, title="NEW SANCTIONS"),
    Case("an accented query matches unaccented text", "Zélensky", True, title="zelensky speaks"),
    Case("an unaccented query matches accented text", "zelensky", True, title="Zélensky speaks"),
    Case("a different spelling is a different word", "Zelenskyj", False, title="Zelensky speaks"),
    Case("case folding makes Straße match strasse", "Straße", True, title="Strasse closed"),
    Case("case folding makes strasse match Straße", "strasse", True, title="Die Straße ist zu"),
    Case("NFKC makes a ligature match its letters", "first", True, title="The ﬁrst package"),
    Case("NFKC makes full-width letters match", "ATACMS", True, title="ＡＴＡＣＭＳ fired"),
    Case("HTML tags are removed before matching", "strong", False,
         summary="<strong>Sanctions</strong> announced"),
    Case("HTML attributes are not matched", "missile", False,
         summary='<a href="http://example.com/missile">link</a> text'),
    Case("text inside HTML tags is matched", "sanctions", True,
         summary="<p>New <b>sanctions</b> on Russia</p>"),
    Case("an inline tag inside a word leaves one word", "sanctions", True,
         summary="sanc<b>tion</b>s"),
    Case("a block tag separates words", '"shadow fleet"', True,
         summary="<p>shadow</p><p>fleet</p>"),
    Case("script content is not matched", "sanctions", False,
         summary="<script>var sanctions = 1;</script>news"),
    Case("HTML entities are decoded before matching", "cafe", True,
         summary="<p>caf&eacute; owners</p>"),
    # wildcards
    Case("a star matches more word characters", "sanction*", True, title="Russia sanctioned again"),
    Case("a star matches zero characters", "sanction*", True, title="a sanction list"),
    Case("a star stays inside one word", "sanction*", False, title="sanc tions"),
    Case("a star may stand inside a word", "sanc*ns", True, title="new sanctions"),
    Case("a question mark matches one character (s)", "authori?e", True, title="they authorise it"),
    Case("a question mark matches one character (z)", "authori?e", True, title="they authorize it"),
    Case("a question mark needs exactly one character", "authori?e", False,
         title="they authorie it"),
    Case("a question mark matches no more than one character", "authori?e", False,
         title="authoriise"),
    Case("a wildcard word is still whole-word", "authori?e", False, title="they authorised it"),
    # phrases
    Case("a phrase matches consecutive words", '"shadow fleet"', True,
         title="the shadow fleet grows"),
    Case("a phrase ignores punctuation between words", '"shadow fleet"', True,
         title="shadow, fleet"),
    Case("a phrase needs the words in order", '"shadow fleet"', False, title="fleet shadow"),
    Case("a phrase needs the words adjacent", '"shadow fleet"', False, title="shadow oil fleet"),
    Case("a phrase does not span two fields", '"shadow fleet"', False,
         title="shadow", summary="fleet"),
    Case("a wildcard inside a phrase", '"long-range missile*"', True, title="long range missiles"),
    Case("a phrase ignores case and accents", '"ÉLYSÉE palace"', True,
         title="the elysee Palace said"),
    # hyphenated and apostrophised words
    Case("a hyphenated word matches itself", "long-range", True, title="long-range weapons"),
    Case("a hyphenated word matches its parts apart", "long-range", True,
         title="long range weapons"),
    Case("a hyphenated word is a phrase, not a conjunction", "long-range", False,
         title="range is long"),
    Case("an apostrophised word matches itself", "Ukraine's", True, title="Ukraine's army"),
    Case("an apostrophised word matches a typographic apostrophe", "Ukraine's", True,
         title="Ukraine’s army"),
    Case("an apostrophised word needs its second part", "Ukraine's", False, title="Ukraine army"),
    # case-sensitive
    Case("a case-sensitive term matches its case", "{US}", True, title="US troops"),
    Case("a case-sensitive term refuses another case", "{US}", False, title="tell us more"),
    Case("a case-sensitive term refuses mixed case", "{US}", False, title="Us and them"),
    Case("a case-sensitive term is still a whole word", "{US}", False, title="USA troops"),
    Case("a case-sensitive phrase matches its case", '{"EU Council"}', True,
         title="the EU Council met"),
    Case("a case-sensitive phrase refuses another case", '{"EU Council"}', False,
         title="the eu council met"),
    # boolean operators
    Case("AND needs both (both there)", "sanctions AND Russia", True, title="sanctions on Russia"),
    Case("AND needs both (one missing)", "sanctions AND Russia", False, title="sanctions on Iran"),
    Case("adjacent operands mean AND", "sanctions Russia", False, title="sanctions on Iran"),
    Case("adjacent operands match when both are there", "sanctions Russia", True,
         title="Russia faces sanctions"),
    Case("AND may combine terms from different fields", "sanctions Russia", True,
         title="sanctions", content="Russia"),
    Case("OR needs either", "Iran OR Russia", True, title="sanctions on Iran"),
    Case("OR fails when neither is there", "Iran OR Russia", False, title="sanctions on Cuba"),
    Case("a NOT b excludes b", "sanctions NOT Iran", False, title="sanctions on Iran"),
    Case("a NOT b keeps a without b", "sanctions NOT Iran", True, title="sanctions on Russia"),
    Case("AND binds tighter than OR (right side alone)", "Iran OR sanctions Russia", False,
         title="Russia"),
    Case("AND binds tighter than OR (left side alone)", "Iran OR sanctions Russia", True,
         title="Iran"),
    Case("NOT binds tighter than AND", "Iran NOT Cuba Russia", True, title="Iran Russia"),
    Case("NOT binds tighter than OR", "sanctions NOT Iran OR Russia", True, title="Iran Russia"),
    Case("NOT then AND then OR reads as (a AND NOT b) OR c", "sanctions NOT Iran OR Russia", False,
         title="Iran sanctions"),
    Case("lowercase and is an ordinary word", "rock and roll", False, title="rock roll"),
    Case("lowercase and is matched as a word", "rock and roll", True, title="rock and roll"),
    Case("lowercase or is an ordinary word", "Iran or Cuba", False, title="Iran"),
    Case("lowercase not is an ordinary word", "not guilty", False, title="guilty"),
    Case("lowercase not is matched as a word", "not guilty", True, title="not guilty"),
    Case("parentheses group", "(Iran OR Cuba) sanctions", False, title="Iran"),
    Case("parentheses group (match)", "(Iran OR Cuba) sanctions", True, title="Cuba sanctions"),
    Case("NOT of a group", "sanctions NOT (Iran OR Cuba)", False, title="sanctions on Cuba"),
    # NEAR
    Case("NEAR/5 allows exactly 5 words between", "alpha NEAR/5 omega", True,
         title=f"alpha {words(5)} omega"),
    Case("NEAR/5 refuses 6 words between", "alpha NEAR/5 omega", False,
         title=f"alpha {words(6)} omega"),
    Case("NEAR works in either order", "alpha NEAR/5 omega", True, title=f"omega {words(5)} alpha"),
    Case("NEAR/0 means adjacent", "alpha NEAR/0 omega", True, title="alpha omega"),
    Case("NEAR/0 refuses one word between", "alpha NEAR/0 omega", False, title="alpha x omega"),
    Case("NEAR does not count punctuation as words", "alpha NEAR/0 omega", True,
         title="alpha, — omega"),
    Case("NEAR/nf allows a first", "alpha NEAR/3f omega", True, title=f"alpha {words(3)} omega"),
    Case("NEAR/nf refuses b first", "alpha NEAR/3f omega", False, title=f"omega {words(1)} alpha"),
    Case("NEAR/nf refuses 4 words between", "alpha NEAR/3f omega", False,
         title=f"alpha {words(4)} omega"),
    Case("NEAR needs the same field", "alpha NEAR/5 omega", False, title="alpha", summary="omega"),
    Case("NEAR takes any pair of occurrences", "alpha NEAR/1 omega", True,
         title=f"alpha {words(8)} omega x alpha"),
    Case("NEAR takes phrase operands", '"shadow fleet" NEAR/2 sanctions', True,
         title="sanctions on the shadow fleet"),
    Case("NEAR counts words between the end of a phrase and the term",
         '"shadow fleet" NEAR/1 sanctions', False,
         title="sanctions on the shadow fleet"),
    Case("NEAR takes parenthesised ORs", "(Iran OR Cuba) NEAR/1 sanctions", True,
         title="Cuba faces sanctions"),
    Case("NEAR takes wildcards", "missile* NEAR/2 approv*", True, title="missiles were approved"),
    Case("NEAR binds tighter than AND", "Iran sanctions NEAR/0 package", True,
         title="sanctions package", content="Iran"),
    Case("NEAR binds tighter than OR", "Iran OR sanctions NEAR/0 package", False,
         title=f"sanctions {words(3)} package"),
    Case("NEAR binds tighter than OR (the OR side)", "Iran OR sanctions NEAR/0 package", True,
         title="Iran"),
    # fields
    Case("title: looks only in the title", "title:sanctions", False, summary="sanctions"),
    Case("title: finds the title", "title:sanctions", True, title="sanctions"),
    Case("summary: looks only in the summary", "summary:sanctions", False, title="sanctions"),
    Case("content: looks only in the content", "content:sanctions", True, content="new sanctions"),
    Case("text: covers the summary", "text:sanctions", True, summary="new sanctions"),
    Case("text: covers the content", "text:sanctions", True, content="new sanctions"),
    Case("text: does not cover the title", "text:sanctions", False, title="new sanctions"),
    Case("author: looks in the author", "author:smith", True, extra={"author": "Jane Smith"}),
    Case("the default fields leave out the author", "smith", False, extra={"author": "Jane Smith"}),
    Case("url: looks in the link", "url:wire", True,
         extra={"link": "https://wire.example/world/1"}),
    Case("source: looks in the source name", "source:seed-wire", True,
         extra={"source": "seed-wire"}),
    Case("lang: looks in the language", "lang:en", True, title="x", extra={"language": "en"}),
    Case("lang: refuses another language", "lang:en", False, title="x", extra={"language": "de"}),
    Case("a field prefix takes a group", "title:(Iran OR Cuba)", True, title="Cuba"),
    Case("a field prefix takes a phrase", 'title:"shadow fleet"', True, title="the shadow fleet"),
    Case("a field prefix binds tighter than AND", "title:Iran sanctions", True,
         title="Iran", content="sanctions"),
    Case("a field prefix binds only its operand", "title:Iran sanctions", False,
         title="sanctions", content="Iran"),
    Case("a field prefix binds tighter than NOT", "sanctions NOT title:Iran", True,
         title="sanctions", content="Iran"),
    Case("fields: restricts unprefixed terms", "sanctions", False, content="sanctions",
         rule={"fields": ["title"]}),
    # rule keys that decide a match
    Case("all: needs every query", "sanctions", False,
         title="sanctions on Iran", rule={"all": ["Russia", "Iran"]}),
    Case("all: passes when every query matches", "sanctions", True,
         title="Iran and Russia sanctions",
         rule={"all": ["Russia", "Iran"]}),
    Case("any: needs one of its queries", "sanctions", False,
         title="sanctions on Cuba", rule={"any": ["Iran", "Russia"]}),
    Case("any: passes with one of its queries", "sanctions", True, title="sanctions on Iran",
         rule={"any": ["Iran", "Russia"]}),
    Case("all: alone is a positive query", "sanctions", True,
         title="Russia sanctions", rule={"all": ["Russia"]}),
    Case("none: excludes on any of its queries", "sanctions", False, title="sanctions on Cuba",
         rule={"none": ["Iran", "Cuba"]}),
    Case("sources: keeps a source its glob names", "sanctions", True, title="sanctions",
         extra={"source": "seed-wire"}, rule={"sources": ["seed-*"]}),
    Case("sources: drops other sources", "sanctions", False, title="sanctions",
         extra={"source": "other"}, rule={"sources": ["seed-*"]}),
    Case("exclude_sources: drops a source its glob names", "sanctions", False, title="sanctions",
         extra={"source": "seed-wire"}, rule={"exclude_sources": ["seed-*"]}),
    Case("languages: drops other languages", "sanctions", False, title="sanctions",
         extra={"language": "de"}, rule={"languages": ["en"]}),
    Case("languages: keeps its languages", "sanctions", True, title="sanctions",
         extra={"language": "en"}, rule={"languages": ["en"]}),
    Case("fields: makes unprefixed terms look in the named field", "sanctions", True,
         summary="sanctions",
         rule={"fields": ["summary"]}),
    # regex
    Case("a regex matches case-insensitively", "/sanction(s|ed)/", True, title="SANCTIONED"),
    Case("a regex runs on the raw field text", "/zelensky/", False, title="Zélensky"),
    Case("a regex takes a field prefix", r"url:/world\/[0-9]+/", True,
         extra={"link": "https://wire.example/world/17"}),
    Case("a regex is linear time", "/(a+)+$/", False, title="a" * 5000 + "!"),
]
# fmt: on


@pytest.fixture(scope="module")
def table_hits(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("table")
    rules = []
    articles = []
    for number, case in enumerate(QUERY_TABLE):
        rules.append(
            {
                "id": f"case-{number}",
                "title": case.name,
                "severity": "low",
                "query": case.query,
                **case.rule,
            }
        )
        articles.append(
            {
                "id": f"article-{number}",
                "title": case.title,
                "summary": case.summary,
                "content": case.content,
                **case.extra,
            }
        )
    (folder / "rules.yaml").write_text(
        yaml.safe_dump({"rules": rules}, allow_unicode=True), encoding="utf-8"
    )
    write_jsonl(folder / "articles.jsonl", articles)
    proc = newsmon("rules", "test", "rules.yaml", "articles.jsonl", "--json", cwd=folder)
    return {(str(hit["article"]), str(hit["rule"])) for hit in json_hits(proc)}


@pytest.mark.parametrize("number", range(len(QUERY_TABLE)), ids=[case.name for case in QUERY_TABLE])
def test_the_query_table_row_behaves_as_design_says(
    table_hits: set[tuple[str, str]], number: int
) -> None:
    case = QUERY_TABLE[number]
    assert ((f"article-{number}", f"case-{number}") in table_hits) is case.matches, case


# -- rules test --json: the output contract ------------------------------------------------------


def write_rule(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def spans_for(tmp_path: Path, query: str, article: dict[str, str]) -> list[dict[str, object]]:
    rule = write_rule(
        tmp_path,
        "rule.yaml",
        yaml.safe_dump({"id": "r", "title": "t", "query": query}, allow_unicode=True),
    )
    write_jsonl(
        tmp_path / "in.jsonl", [{"id": "a", "title": "", "summary": "", "content": "", **article}]
    )
    hits = json_hits(newsmon("rules", "test", rule, "in.jsonl", "--json", cwd=tmp_path))
    assert [(hit["article"], hit["rule"]) for hit in hits] == [("a", "r")]
    spans = hits[0]["spans"]
    assert isinstance(spans, list)
    for span in spans:
        raw = article[span["field"]]
        assert raw[span["start"] : span["end"]] == span["text"], (raw, span)
    return spans


@pytest.mark.parametrize(
    ("raw", "query", "expected"),
    [
        ("Zélensky visits Kyiv", "zelensky", "Zélensky"),
        ("Die Straße ist zu", "strasse", "Straße"),
        ("The ﬁrst sanctions package", "sanctions", "sanctions"),
        ("ＡＴＡＣＭＳ fired at Kursk", "Kursk", "Kursk"),
        ("🚀🚀 Missiles fired at Kursk", "kursk", "Kursk"),
        ("e\u0301te\u0301 sanctions", "sanctions", "sanctions"),
    ],
)
def test_spans_count_code_points_of_the_raw_field_text(
    tmp_path: Path, raw: str, query: str, expected: str
) -> None:
    spans = spans_for(tmp_path, query, {"title": raw})
    assert [(s["field"], s["start"], s["end"], s["text"]) for s in spans] == [
        ("title", raw.index(expected), raw.index(expected) + len(expected), expected)
    ]


def test_spans_index_the_raw_text_around_html(tmp_path: Path) -> None:
    raw = '<p class="lead">The <b>shadow</b> fleet: caf&eacute; sanctions</p>'
    spans = spans_for(tmp_path, "sanctions", {"summary": raw})
    assert [(s["start"], s["end"]) for s in spans] == [
        (raw.index("sanctions"), raw.index("sanctions") + 9)
    ]


@pytest.mark.parametrize(
    "raw",
    [
        "Ministers say if a<b then sanctions follow",  # a '<' that opens no tag
        "Unclosed </b then sanctions follow",
        "A comment that never closes <!-- then sanctions follow",
    ],
)
def test_text_that_merely_contains_a_bracket_is_matched_whole_as_feed_text_is(
    tmp_path: Path, raw: str
) -> None:
    spans = spans_for(tmp_path, "sanctions", {"summary": raw})
    assert [(s["start"], s["text"]) for s in spans] == [(raw.index("sanctions"), "sanctions")]


def test_an_attribute_value_with_a_bracket_is_markup_not_text(tmp_path: Path) -> None:
    rule = write_rule(tmp_path, "rule.yaml", "id: r\ntitle: t\nquery: sanctions\n")
    write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "title": "Paris talks", "summary": "",
                                         "content": '<a title="x>sanctions">Paris</a> talks'}])
    assert json_hits(newsmon("rules", "test", rule, "in.jsonl", "--json", cwd=tmp_path)) == []


def test_a_span_over_markup_is_the_raw_text_with_its_markup(tmp_path: Path) -> None:
    spans = spans_for(
        tmp_path, "cafe NEAR/0 sanctions", {"content": "<p>caf&eacute; <i>sanc</i>tions</p>"}
    )
    assert sorted(str(s["text"]) for s in spans) == ["caf&eacute;", "sanc</i>tions"]


def test_a_phrase_span_covers_its_words(tmp_path: Path) -> None:
    spans = spans_for(tmp_path, '"shadow fleet"', {"content": "EU targets Russia's shadow, fleet."})
    assert "".join(str(s["text"]) for s in spans).startswith("shadow")
    assert "fleet" in " ".join(str(s["text"]) for s in spans)


def test_a_near_match_reports_both_operands(tmp_path: Path) -> None:
    spans = spans_for(
        tmp_path, "ATACMS NEAR/3 authori?e*", {"title": "Biden authorises ATACMS strikes"}
    )
    assert {s["text"] for s in spans} >= {"ATACMS", "authorises"}


def test_a_regex_span_is_the_raw_match(tmp_path: Path) -> None:
    spans = spans_for(tmp_path, r"/\$[0-9]+ ?bn/", {"title": "A $60bn aid package"})
    assert [s["text"] for s in spans] == ["$60bn"]


def test_rules_test_json_prints_one_line_per_article_and_rule_and_nothing_for_misses(
    tmp_path: Path,
) -> None:
    write_rule(
        tmp_path,
        "rules.yaml",
        "rules:\n  - {id: one, title: One, query: sanctions}\n"
        "  - {id: two, title: Two, query: 'sanctions AND Iran'}\n",
    )
    write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "both", "title": "Iran sanctions", "summary": "", "content": ""},
            {"id": "neither", "title": "Weather", "summary": "", "content": ""},
            {"id": "first", "title": "sanctions", "summary": "", "content": ""},
        ],
    )
    hits = json_hits(newsmon("rules", "test", "rules.yaml", "in.jsonl", "--json", cwd=tmp_path))
    assert sorted((h["article"], h["rule"]) for h in hits) == [
        ("both", "one"),
        ("both", "two"),
        ("first", "one"),
    ]
    assert all(set(h) == {"article", "rule", "spans"} for h in hits)


def test_rules_test_reads_a_folder_of_rules(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    write_rule(tmp_path / "rules", "a.yaml", "id: a\ntitle: A\nquery: sanctions\n")
    write_rule(tmp_path / "rules", "b.yml", "id: b\ntitle: B\nquery: Iran\n")
    write_jsonl(
        tmp_path / "in.jsonl",
        [{"id": "x", "title": "Iran sanctions", "summary": "", "content": ""}],
    )
    hits = json_hits(newsmon("rules", "test", "rules", "in.jsonl", "--json", cwd=tmp_path))
    assert sorted(h["rule"] for h in hits) == ["a", "b"]


def test_rules_test_reads_an_rss_feed(tmp_path: Path) -> None:
    write_rule(tmp_path, "r.yaml", "id: r\ntitle: R\nquery: shadow fleet\n")
    (tmp_path / "feed.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://x.example/</link>'
        "<description>d</description><item><title>Sanctions</title><guid>item-1</guid>"
        "<link>http://x.example/1</link>"
        "<description>&lt;p&gt;the shadow fleet&lt;/p&gt;</description>"
        "</item></channel></rss>",
        encoding="utf-8",
    )
    hits = json_hits(newsmon("rules", "test", "r.yaml", "feed.xml", "--json", cwd=tmp_path))
    assert [(h["article"], h["rule"]) for h in hits] == [("item-1", "r")]


def test_rules_test_reads_plain_text_with_the_first_line_as_title(tmp_path: Path) -> None:
    write_rule(tmp_path, "r.yaml", "id: r\ntitle: R\nquery: 'title:sanctions content:fleet'\n")
    (tmp_path / "note.txt").write_text("New sanctions\nThe shadow fleet grows.\n", encoding="utf-8")
    hits = json_hits(newsmon("rules", "test", "r.yaml", "note.txt", "--json", cwd=tmp_path))
    assert [(h["article"], h["rule"]) for h in hits] == [("note.txt", "r")]


def test_rules_test_with_invalid_rules_exits_2_with_the_error_on_stderr(tmp_path: Path) -> None:
    write_rule(tmp_path, "r.yaml", "id: r\ntitle: R\nquery: NOT sanctions\n")
    write_jsonl(tmp_path / "in.jsonl", [{"id": "x", "title": "y", "summary": "", "content": ""}])
    proc = newsmon("rules", "test", "r.yaml", "in.jsonl", "--json", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert "r.yaml:3:" in proc.stderr


def test_rules_test_with_invalid_input_exits_2(tmp_path: Path) -> None:
    write_rule(tmp_path, "r.yaml", "id: r\ntitle: R\nquery: sanctions\n")
    (tmp_path / "in.jsonl").write_text(
        '{"id": "x", "title": "sanctions"}\n{not json\n', encoding="utf-8"
    )
    proc = newsmon("rules", "test", "r.yaml", "in.jsonl", "--json", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip()


def test_rules_test_human_output_names_article_rule_and_highlights(tmp_path: Path) -> None:
    write_rule(
        tmp_path, "r.yaml", "id: fleet-rule\ntitle: Shadow fleet\nquery: '\"shadow fleet\"'\n"
    )
    write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "hit", "title": "EU sanctions the shadow fleet", "summary": "", "content": ""},
            {"id": "miss", "title": "Weather", "summary": "", "content": ""},
        ],
    )
    proc = newsmon("rules", "test", "r.yaml", "in.jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "hit" in proc.stdout
    assert "fleet-rule" in proc.stdout
    assert "miss" not in proc.stdout
    highlighted = proc.stdout.replace("shadow fleet", "")
    assert "shadow" in highlighted.lower()  # the match is marked up, not shown bare


def test_rules_test_explain_says_which_clause_failed(tmp_path: Path) -> None:
    write_rule(tmp_path, "r.yaml", "id: r\ntitle: R\nquery: sanctions\nnone: ['title:opinion']\n")
    write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "op", "title": "Opinion: sanctions", "summary": "", "content": ""},
            {"id": "no", "title": "Weather", "summary": "", "content": ""},
        ],
    )
    proc = newsmon("rules", "test", "r.yaml", "in.jsonl", "--explain", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    opinion = next(i for i, line in enumerate(lines) if line.startswith("op"))
    assert "excluded by none[0]: title:opinion" in lines[opinion + 1]
    weather = next(i for i, line in enumerate(lines) if line.startswith("no"))
    assert "query did not match: sanctions" in lines[weather + 1]


# -- rules check: PATH:LINE:COL, warnings, examples, exit codes ----------------------------------


def check(tmp_path: Path, text: str, name: str = "rule.yaml") -> tuple[int, list[str]]:
    write_rule(tmp_path, name, text)
    proc = newsmon("rules", "check", name, cwd=tmp_path)
    return proc.returncode, proc.stdout.splitlines()


GOOD_EXAMPLES = "examples:\n  match: [new sanctions]\n  no_match: [weather]\n"

# (file text, where the error is: LINE:COL, words its message holds); one file per case, one run.
# fmt: off
RULE_ERRORS = [
    ("id: r\ntitle: T\nqeury: sanctions\n" + GOOD_EXAMPLES, "3:1",
     ["qeury", "did you mean", "query"]),
    ("id: Bad_Id\ntitle: T\nquery: sanctions\n" + GOOD_EXAMPLES, "1:5", ["id"]),
    ("id: r\ntitle: T\nseverity: urgent\nquery: sanctions\n" + GOOD_EXAMPLES, "3:11", ["severity"]),
    ("id: r\ntitle: T\ntags: 5\nquery: sanctions\n" + GOOD_EXAMPLES, "3:7", ["tags"]),
    ("id: r\ntitle: T\nquery: NOT sanctions\n" + GOOD_EXAMPLES, "3:", ["negation"]),
    ("id: r\ntitle: T\nquery: sanctions AND a*\n" + GOOD_EXAMPLES, "3:22", ["wildcard"]),
    ("id: r\ntitle: T\nquery: sanctions AND s?\n" + GOOD_EXAMPLES, "3:22", ["wildcard"]),
    ("id: r\ntitle: T\nquery: sanctions AND foo:bar\n" + GOOD_EXAMPLES, "3:22", ["foo"]),
    ("id: r\ntitle: T\nquery: sanctions NEAR/x Iran\n" + GOOD_EXAMPLES, "3:18", ["NEAR"]),
    ("id: r\ntitle: T\nquery: sanctions NEAR/ Iran\n" + GOOD_EXAMPLES, "3:18", ["NEAR"]),
    ("id: r\ntitle: T\nquery: (sanctions OR Iran\n" + GOOD_EXAMPLES, "3:", []),
    ("id: r\ntitle: T\nquery: /(a)\\1/\n" + GOOD_EXAMPLES, "3:", []),
    ("id: r\ntitle: T\nnone: [opinion]\n" + GOOD_EXAMPLES, "", ["positive"]),
    ("id: r\ntitle: T\nquery: sanctions\ndedupe: {scope: planet, window: 72h}\n" + GOOD_EXAMPLES,
     "4:", ["scope"]),
    ("id: r\ntitle: T\nquery: sanctions\nthrottle: lots\n" + GOOD_EXAMPLES, "4:11", ["throttle"]),
    ("id: r\ntitle: T\nquery: sanctions\nenabled: maybe\n" + GOOD_EXAMPLES, "4:10", ["enabled"]),
    ("id: r\ntitle: T\nquery: sanctions\nexamples:\n  match: [weather]\n", "5:", ["example"]),
    ("id: r\ntitle: T\nquery: sanctions\nobj: !!python/object:os.system {}\n", "4:", []),
]
# fmt: on


@pytest.fixture(scope="module")
def check_lines(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[str]]:
    folder = tmp_path_factory.mktemp("check")
    (folder / "cases").mkdir()
    for number, (text, _, _) in enumerate(RULE_ERRORS):
        write_rule(
            folder / "cases", f"case-{number}.yaml", text.replace("id: r\n", f"id: r{number}\n")
        )
    proc = newsmon("rules", "check", "cases", cwd=folder)
    return proc.returncode, proc.stdout.splitlines()


@pytest.mark.parametrize(
    "number", range(len(RULE_ERRORS)), ids=[str(n) for n in range(len(RULE_ERRORS))]
)
def test_rules_check_reports_each_error_at_path_line_col_and_exits_1(
    check_lines: tuple[int, list[str]], number: int
) -> None:
    code, lines = check_lines
    _, where, words = RULE_ERRORS[number]
    prefix = str(Path("cases") / f"case-{number}.yaml") + ":"
    errors = [line for line in lines if line.startswith(prefix) and ": error: " in line]
    assert code == 1, lines
    assert errors, lines
    assert any(line.startswith(prefix + where) for line in errors), errors
    assert all(word.lower() in " ".join(errors).lower() for word in words), errors


def test_rules_check_reports_a_duplicate_id_in_another_file(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    write_rule(
        tmp_path / "rules", "a.yaml", "id: same\ntitle: A\nquery: sanctions\n" + GOOD_EXAMPLES
    )
    write_rule(
        tmp_path / "rules", "b.yaml", "title: B\nid: same\nquery: sanctions\n" + GOOD_EXAMPLES
    )
    proc = newsmon("rules", "check", "rules", cwd=tmp_path)
    assert proc.returncode == 1
    assert any(":2:5: error: " in line and "same" in line for line in proc.stdout.splitlines()), (
        proc.stdout
    )


def test_rules_check_refuses_an_alias_bomb_quickly(tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    levels += [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)
    ]
    code, lines = check(tmp_path, "id: r\ntitle: T\nquery: sanctions\n" + "\n".join(levels) + "\n")
    assert code == 1, lines
    assert any(": error: " in line for line in lines), lines


def test_rules_check_warns_on_short_lowercase_acronyms_and_missing_examples_but_exits_0(
    tmp_path: Path,
) -> None:
    code, lines = check(tmp_path, "id: r\ntitle: T\nquery: us NEAR/3 sanctions\n")
    warnings = [line for line in lines if ": warning: " in line]
    assert code == 0, lines
    assert any(line.startswith("rule.yaml:3:") and "us" in line for line in warnings), warnings
    assert any("example" in line for line in warnings), warnings


def test_rules_check_passes_a_rule_using_every_key(tmp_path: Path) -> None:
    code, lines = check(
        tmp_path,
        """\
id: every-key_1
title: Every key
description: A rule using every key DESIGN.md lists.
severity: critical
query: '{EU} NEAR/5f sanction*'
all: ["package OR fleet"]
any: ["shadow", "oil"]
none: ["title:(opinion OR analysis)"]
fields: [title, summary]
sources: ["*"]
exclude_sources: ["satire-*"]
languages: [en]
notify: [console]
dedupe: {scope: article, window: 72h}
throttle: 20/1h
enabled: true
tags: [eu, sanctions]
examples:
  match: ["EU sanctions the shadow fleet", "EU adopts new sanctions package against oil tankers"]
  no_match:
    - eu sanctions the shadow fleet
    - "Opinion: EU sanctions the shadow fleet"
    - EU fleet sanctions
""",
    )
    assert (code, [line for line in lines if ": error: " in line or ": warning: " in line]) == (
        0,
        [],
    )


def test_the_shipped_rules_pass_rules_check_with_no_warning() -> None:
    proc = newsmon("rules", "check", "rules/", cwd=REPO)
    assert proc.returncode == 0, proc.stdout
    assert [
        line for line in proc.stdout.splitlines() if ": error: " in line or ": warning: " in line
    ] == []


# -- backtest --------------------------------------------------------------------------------------


def test_backtest_replays_stored_articles_through_proposed_rules(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    write_rule(tmp_path / "rules", "a.yaml", "id: atacms\ntitle: A\nquery: ATACMS\n")
    (tmp_path / "proposed").mkdir()
    write_rule(
        tmp_path / "proposed", "a.yaml", "id: atacms\ntitle: A\nquery: ATACMS NEAR/3 missile*\n"
    )
    (tmp_path / "newsmon.toml").write_text(
        f"""\
[storage]
url = "sqlite:///newsmon.db"
[rules]
paths = ["rules"]
[defaults]
channels = ["console"]
max_age = "off"
[[sources]]
name = "seed-wire"
url = "{REPO / "seeds" / "feeds" / "wire.xml"}"
[channels.console]
type = "console"
""",
        encoding="utf-8",
    )
    assert newsmon("run", "--once", cwd=tmp_path).returncode == 0
    current = newsmon("backtest", "--since", "100000d", cwd=tmp_path)
    assert current.returncode == 0, current.stderr
    assert "atacms" in current.stdout
    proposed = newsmon("backtest", "--since", "100000d", "--rules", "proposed", cwd=tmp_path)
    assert proposed.returncode == 0, proposed.stderr
    assert "atacms" in proposed.stdout
    assert proposed.stdout != current.stdout
