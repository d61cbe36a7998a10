"""`newsmon rules review`: hits and near misses asked about; answers become examples in the
rule's own file, which keeps every other byte."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.records import Article
from monitor.review import answer_target, highlight, parse_answer, select_for_review
from monitor.rules.edit import Addition, ExampleEditError, add_examples
from monitor.rules.load import load_rules
from monitor.store import NewArticle, SourceState, Store

NOW = datetime.now(UTC)

RULES = """\
# Two rules in one file: the review must edit the right one.
rules:
  - id: strike-policy   # the rule under review
    title: Long-range strike policy
    query: >
      (ATACMS OR "Storm Shadow")
      NEAR/12 (authori?e* OR clears OR allow*)
    none: ['title:(opinion OR analysis)']
    examples:
      match:
        - Biden authorises Ukraine to strike Russia with ATACMS missiles
      no_match:    ["North Korea tests a long-range missile"]

  - id: sanctions
    title: Sanctions package
    query: sanction* NEAR/5 package*
    examples:
      match: [EU drafts 15th sanctions package]   # keep this comment
"""

CLEARS = "UK clears Ukraine to fire Storm Shadow missiles into Russia"
OPINION = "Opinion: Allowing ATACMS strikes inside Russia comes a year too late"
LOCKHEED = "Lockheed tests extended-range ATACMS variant at White Sands"
APART = ("Storm Shadow maker wins export order as the long war in Ukraine drags on"
         " and ministers allow more production")


def article(identity: str, title: str, *, days: float = 1, source: str = "seed-wire") -> Article:
    when = NOW - timedelta(days=days)
    return Article(source=source, identity=identity, guid=identity,
                   url=f"http://{source}.example/{identity}", title=title, summary="",
                   content="", author="", published=when, fetched=NOW, language=None)


ARTICLES = [
    article("clears", CLEARS, days=1),
    article("biden", "Biden authorises Ukraine to strike Russia with ATACMS missiles", days=2),
    article("opinion", OPINION, days=3),
    article("lockheed", LOCKHEED, days=4),
    article("bank", "Central bank holds rates steady", days=2),
    article("uk-package", "UK unveils new sanctions package on Russian banks", days=2),
    article("old", "Germany allows ATACMS deliveries", days=30),
]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration, the two-rule file and a SQLite store of ``ARTICLES``."""
    monkeypatch.delenv("NEWSMON_CONFIG", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "policy.yaml").write_text(RULES)
    (tmp_path / "newsmon.toml").write_text(
        '[storage]\nurl = "sqlite:///s.db"\n\n[rules]\npaths = ["rules"]\n')
    save(tmp_path, ARTICLES)
    return tmp_path


def save(folder: Path, articles: list[Article]) -> None:
    store = Store(f"sqlite:///{folder}/s.db").open()
    try:
        store.save_batch(SourceState("seed-wire", "seeds/feeds/wire.xml"),
                         [NewArticle(a, a.identity, (), ()) for a in articles], NOW)
    finally:
        store.close()


def review(workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
           answers: str, rule: str = "strike-policy") -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(answers))
    code = main(["rules", "review", rule, "--config", str(workspace / "newsmon.toml")])
    return code, capsys.readouterr().out


def rule_file(workspace: Path) -> str:
    return (workspace / "rules" / "policy.yaml").read_bytes().decode()


def test_answers_become_examples_and_every_other_byte_of_the_file_stays(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = review(workspace, monkeypatch, capsys, "w\nr\nw\nq\n")
    assert code == 0
    # a wrong hit and a right near miss should not match; a wrong near miss should
    assert rule_file(workspace) == RULES.replace(
        "        - Biden authorises Ukraine to strike Russia with ATACMS missiles\n",
        "        - Biden authorises Ukraine to strike Russia with ATACMS missiles\n"
        f"        - {LOCKHEED}\n",
    ).replace(
        'no_match:    ["North Korea tests a long-range missile"]',
        f'no_match:    ["North Korea tests a long-range missile", "{CLEARS}", "{OPINION}"]',
    )
    assert "Added 3 examples" in out


def test_the_examples_are_checked_again_after_saving_and_failures_named(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = review(workspace, monkeypatch, capsys, "w\n")  # the rule does match CLEARS
    path = workspace / "rules" / "policy.yaml"
    assert "1 of 3 examples of strike-policy fail" in out
    assert f"  {path}:12:63: should not match but does: {CLEARS!r}" in out


def test_the_examples_are_checked_again_after_saving_and_success_said(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = review(workspace, monkeypatch, capsys, "s\nr\n")  # the opinion piece: right
    assert "All 3 examples of strike-policy pass." in out
    assert OPINION in rule_file(workspace)


def test_hits_come_first_then_near_misses_closest_first(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    save(workspace, [article("apart", APART, days=2)])
    _, out = review(workspace, monkeypatch, capsys, "s\ns\ns\ns\n")
    asked = [line for line in out.splitlines() if line.startswith("[")]
    assert asked == [
        "[1/4] HIT: strike-policy matches this article",
        "[2/4] NEAR MISS: strike-policy does not match this article: excluded by none[0]"
        " (found “Opinion” in title)",
        "[3/4] NEAR MISS (90% matched): strike-policy does not match this article:"
        " query did not match (about 90% of it did)",
        "[4/4] NEAR MISS (45% matched): strike-policy does not match this article:"
        " query did not match (about 45% of it did)",
    ]
    assert f"  {CLEARS}" in out
    assert "  title: UK [clears] Ukraine to fire [Storm Shadow] missiles into Russia" in out
    assert "  title: [Opinion]: [Allowing] [ATACMS] strikes" not in out  # the excluder is not
    assert "  title: Opinion: [Allowing] [ATACMS] strikes inside Russia" in out
    assert "No examples to add." in out


def test_a_multi_rule_file_gets_the_examples_under_the_reviewed_rule(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = review(workspace, monkeypatch, capsys, "r\n", rule="sanctions")
    assert code == 0
    assert rule_file(workspace) == RULES.replace(
        "match: [EU drafts 15th sanctions package]",
        "match: [EU drafts 15th sanctions package, UK unveils new sanctions package on Russian"
        " banks]")
    assert "All 2 examples of sanctions pass." in out


def test_headlines_already_among_the_examples_are_neither_asked_nor_added_again(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    save(workspace, [article("clears-again", CLEARS, days=2, source="baltic-observer")])
    _, out = review(workspace, monkeypatch, capsys, "r\nr\nr\n")
    assert "(1 already among its examples)" in out  # the Biden headline
    assert out.count(f"  {CLEARS}\n") == 1  # two outlets, one question
    text = rule_file(workspace)
    assert text.count(CLEARS) == 1
    assert text.count("Biden authorises Ukraine") == 1


def test_end_of_input_ends_the_review_and_keeps_the_answers_so_far(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = review(workspace, monkeypatch, capsys, "r")
    assert out.count("Is the rule right?") == 2
    assert CLEARS in rule_file(workspace)


def test_an_unknown_answer_is_asked_again(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = review(workspace, monkeypatch, capsys, "yes\nq\n")
    assert "Please answer r, w, s or q (not 'yes')." in out
    assert rule_file(workspace) == RULES


def test_an_unknown_rule_exits_2(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = main(["rules", "review", "nope", "--config", str(workspace / "newsmon.toml")])
    assert code == 2
    assert "no rule 'nope'" in capsys.readouterr().err


def test_answers_file_hits_and_near_misses_on_opposite_sides() -> None:
    assert answer_target("hit", "right") == "match"
    assert answer_target("hit", "wrong") == "no_match"
    assert answer_target("near_miss", "right") == "no_match"
    assert answer_target("near_miss", "wrong") == "match"
    assert answer_target("hit", "skip") is None
    assert [parse_answer(a) for a in ("r", "W", " skip ", "q", "", "x")] == [
        "right", "wrong", "skip", "quit", None, None]


def test_near_misses_include_failed_all_clauses_but_not_a_failed_or_of_words(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n"
                    "  - {id: with-all, title: A, query: ATACMS, all: [Russia]}\n"
                    "  - {id: words, title: W, query: ATACMS OR Taurus}\n")
    rules = load_rules([path]).by_id()
    articles = [article("lockheed", LOCKHEED), article("bank", "Central bank holds rates")]
    with_all = select_for_review(rules["with-all"], articles)
    assert [(i.headline, i.reason) for i in with_all.near_misses] == [
        (LOCKHEED, "all[0] did not match")]
    assert with_all.near_misses[0].closeness == 0.5
    assert select_for_review(rules["words"], articles[1:]).near_misses == ()


def test_at_most_the_closest_near_misses_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text('id: r\ntitle: R\nquery: ATACMS NEAR/2 approved\n')
    rule = load_rules([path]).rules[0]
    articles = [article(f"a{n}", f"ATACMS report number {n}", days=n) for n in range(1, 30)]
    articles.append(article("close", "ATACMS strikes on depots now approved"))
    selection = select_for_review(rule, articles, near_misses=3)
    assert [i.headline for i in selection.near_misses] == [
        "ATACMS strikes on depots now approved", "ATACMS report number 1",
        "ATACMS report number 2"]


def test_highlight_marks_spans_and_keeps_context_around_them() -> None:
    from monitor.records import Span

    text = "A " * 100 + "ATACMS approved" + " b" * 100
    spans = [Span("content", 200, 206, "ATACMS"), Span("content", 207, 215, "approved")]
    shown = highlight(text, spans, lambda t: f"[{t}]", context=6)
    assert shown == "…A A A [ATACMS] [approved] b b b…"


def test_adding_examples_creates_the_examples_keys_in_the_files_own_indentation() -> None:
    text = "rules:\n- id: a\n  title: A\n  query: x\n  tags:\n  - one\n- id: b\n  title: B\n"
    edit = add_examples(text, "a", [Addition("no_match", "Weather: sunny")])
    assert edit.text == text.replace(
        "  - one\n", '  - one\n  examples:\n    no_match:\n    - "Weather: sunny"\n')


def test_adding_examples_keeps_crlf_line_ends_and_a_missing_final_newline() -> None:
    text = "id: a\r\ntitle: A\r\nquery: x\r\nexamples:\r\n  match:\r\n    - 'x'"
    edit = add_examples(text, "a", [Addition("match", "it's x"), Addition("no_match", "no")])
    assert edit.text == text + "\r\n    - 'it''s x'\r\n  no_match:\r\n    - \"no\"\r\n"


def test_adding_an_example_that_exists_changes_nothing() -> None:
    text = "id: a\ntitle: A\nquery: x\nexamples:\n  match:\n    - {title: Known  headline}\n"
    edit = add_examples(text, "a", [Addition("no_match", "Known headline")])
    assert edit.text == text
    assert [d.text for d in edit.duplicates] == ["Known headline"]


def test_adding_examples_to_a_rule_that_is_not_in_the_file_fails() -> None:
    with pytest.raises(ExampleEditError, match="rule 'b' is not in this file"):
        add_examples("id: a\ntitle: A\nquery: x\n", "b", [Addition("match", "x")])
