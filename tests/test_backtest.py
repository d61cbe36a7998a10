"""`newsmon backtest`: stored articles replayed through the current and a proposed rule set."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.backtest import backtest
from monitor.cli import main
from monitor.cli.backtest_cmd import ProgressBar
from monitor.records import Article
from monitor.rules.load import load_rules
from monitor.store import NewArticle, SourceState, Store
from tests.conftest import RULES

NOW = datetime.now(UTC)


def article(identity: str, title: str, *, days: float = 1, source: str = "seed-wire",
            summary: str = "", dated: bool = True, language: str | None = None) -> Article:
    """A seed-like article, published (or, when not ``dated``, fetched) ``days`` ago."""
    when = NOW - timedelta(days=days)
    return Article(source=source, identity=identity, guid=identity,
                   url=f"http://{source}.example/{identity}", title=title, summary=summary,
                   content="", author="", published=when if dated else None,
                   fetched=NOW if dated else when, language=language)


ARTICLES = [
    article("biden-atacms", "Biden authorises Ukraine to strike Russia with ATACMS missiles",
            days=2),
    article("uk-storm-shadow", "UK clears Ukraine to fire Storm Shadow missiles at targets in"
            " Russia", days=3, source="baltic-observer"),
    article("scholz-refuses", "Scholz again refuses to allow Taurus strikes on Russian soil",
            days=4, source="baltic-observer"),
    article("opinion-atacms", "Opinion: Allowing ATACMS strikes inside Russia comes a year too"
            " late", days=5),
    article("eu-package", "EU drafts 15th sanctions package against Russia", days=6),
    article("nk-kursk", "North Korean troops join Russian assault in Kursk", days=7),
    article("nk-missile", "North Korea test-fires new long-range missile into the sea", days=8),
    article("pyongyang-undated", "Pyongyang sends 10,000 soldiers to fight for Russia", days=1,
            dated=False),
    # outside a 30-day window: published 60 days ago, or (no date) fetched 90 days ago
    article("old-curbs", "Washington lifts curbs on ATACMS strikes inside Russia", days=60),
    article("old-undated", "North Korean soldiers are fighting for Russia in Kursk", days=90,
            dated=False),
]


def save(url: str, articles: list[Article]) -> None:
    store = Store(url).open()
    try:
        store.save_batch(SourceState("seed-wire", "seeds/feeds/wire.xml"),
                         [NewArticle(a, a.identity, (), ()) for a in articles], NOW)
    finally:
        store.close()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration with the shipped rules and a SQLite store holding ``ARTICLES``."""
    monkeypatch.delenv("NEWSMON_CONFIG", raising=False)
    shutil.copytree(RULES, tmp_path / "rules")
    path = tmp_path / "newsmon.toml"
    path.write_text('[storage]\nurl = "sqlite:///s.db"\n\n[rules]\npaths = ["rules"]\n')
    save(f"sqlite:///{tmp_path}/s.db", ARTICLES)
    return path


def proposed_rules(tmp_path: Path) -> Path:
    """The shipped rules, changed: no Storm Shadow, no `none` queries, no sanctions rule,
    and a new Taurus rule."""
    folder = tmp_path / "proposed"
    shutil.copytree(RULES, folder)
    policy = folder / "long-range-strike-policy.yaml"
    text = policy.read_text()
    text = text.replace(' OR "Storm Shadow"', "")
    start, end = text.index("none:\n"), text.index("dedupe:")
    policy.write_text(text[:start] + text[end:])
    (folder / "russia-sanctions-package.yaml").unlink()
    (folder / "taurus.yaml").write_text(
        "id: taurus\ntitle: Taurus\nquery: Taurus\nexamples:\n  match: [Taurus]\n")
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_backtest_counts_each_rules_hits_among_the_articles_of_the_window(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "backtest", "--config", str(config))
    assert code == 0
    assert out.splitlines()[0] == (
        f"Replayed 8 articles of the last 30d ({(NOW - timedelta(days=8)):%Y-%m-%d} to"
        f" {(NOW - timedelta(days=1)):%Y-%m-%d}) through 3 current rules.")
    assert out.splitlines()[2:] == [
        "long-range-strike-policy  2 hits",
        "north-korean-troops       2 hits",
        "russia-sanctions-package  1 hit",
    ]


def test_a_changed_rule_set_shows_exactly_the_articles_it_adds_and_removes(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "backtest", "--config", str(config), "--rules",
                         str(proposed_rules(tmp_path)), "--json")
    assert code == 0
    assert "through 3 current rules and 3 proposed rules" in err
    results = {r["rule"]: r for r in map(json.loads, out.splitlines())}
    policy = results["long-range-strike-policy"]
    assert (policy["status"], policy["current_hits"], policy["proposed_hits"]) == ("changed", 2, 3)
    assert [e["title"] for e in policy["added"]["examples"]] == [
        "Scholz again refuses to allow Taurus strikes on Russian soil",
        "Opinion: Allowing ATACMS strikes inside Russia comes a year too late",
    ]
    assert policy["added"]["count"] == 2
    assert policy["removed"] == {"count": 1, "examples": [{
        "title": "UK clears Ukraine to fire Storm Shadow missiles at targets in Russia",
        "source": "baltic-observer", "date": (NOW - timedelta(days=3)).isoformat(),
        "url": "http://baltic-observer.example/uk-storm-shadow"}]}
    assert results["north-korean-troops"]["status"] == "unchanged"
    assert results["north-korean-troops"]["added"]["count"] == 0
    assert results["russia-sanctions-package"]["status"] == "removed"
    assert results["russia-sanctions-package"]["removed"]["count"] == 1
    assert results["taurus"]["status"] == "new"
    assert [e["title"] for e in results["taurus"]["added"]["examples"]] == [
        "Scholz again refuses to allow Taurus strikes on Russian soil"]


def test_the_text_report_lists_added_and_removed_headlines_with_source_and_date(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "backtest", "--config", str(config), "--rules",
                       str(proposed_rules(tmp_path)))
    assert code == 0
    day = lambda n: f"{NOW - timedelta(days=n):%Y-%m-%d}"  # noqa: E731
    assert out.splitlines()[2:] == [
        "long-range-strike-policy: changed, 2 hits now, 3 proposed: 2 added, 1 removed",
        f"  + Scholz again refuses to allow Taurus strikes on Russian soil"
        f" (baltic-observer, {day(4)})",
        f"  + Opinion: Allowing ATACMS strikes inside Russia comes a year too late"
        f" (seed-wire, {day(5)})",
        f"  - UK clears Ukraine to fire Storm Shadow missiles at targets in Russia"
        f" (baltic-observer, {day(3)})",
        "north-korean-troops: unchanged, 2 hits",
        "russia-sanctions-package: removed rule, 1 hit now",
        f"  - EU drafts 15th sanctions package against Russia (seed-wire, {day(6)})",
        "taurus: new rule, 1 hit",
        f"  + Scholz again refuses to allow Taurus strikes on Russian soil"
        f" (baltic-observer, {day(4)})",
    ]


def test_the_since_window_leaves_out_older_articles(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counts = {}
    for since in ("4d", "30d", "100d"):
        code, out, _ = run(capsys, "backtest", "--config", str(config), "--since", since,
                           "--json")
        assert code == 0
        counts[since] = {r["rule"]: r["current_hits"] for r in map(json.loads, out.splitlines())}
    assert counts["4d"] == {"long-range-strike-policy": 2, "north-korean-troops": 1,
                            "russia-sanctions-package": 0}
    assert counts["30d"] == {"long-range-strike-policy": 2, "north-korean-troops": 2,
                             "russia-sanctions-package": 1}
    assert counts["100d"] == {"long-range-strike-policy": 3, "north-korean-troops": 3,
                              "russia-sanctions-package": 1}


def test_json_output_is_one_object_per_rule_with_a_fixed_set_of_keys(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "backtest", "--config", str(config), "--json")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["rule"] for r in records] == ["long-range-strike-policy", "north-korean-troops",
                                            "russia-sanctions-package"]
    assert records[0] == {"rule": "long-range-strike-policy",
                          "title": "Policy shift on long-range strikes into Russia",
                          "status": "current", "current_hits": 2, "proposed_hits": None,
                          "added": None, "removed": None}
    assert err.startswith("Replayed 8 articles")


def test_invalid_proposed_rules_exit_2_with_path_line_and_column(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad-rule\ntitle: Bad\nquery: (ATACMS OR\n")
    code, out, err = run(capsys, "backtest", "--config", str(config), "--rules", str(bad))
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"{bad}:3:18: error: query: the query ends where a term was expected"]


def test_an_invalid_configuration_exits_2(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text('[storage]\nurl = "sqlite:///s.db"\nsurplus = 1\n')
    code, _, err = run(capsys, "backtest", "--config", str(config))
    assert code == 2
    assert "configuration error" in err
    assert "surplus" in err


def test_an_unreadable_since_is_a_usage_error(config: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["backtest", "--config", str(config), "--since", "a month"])
    assert exit_.value.code == 2
    assert "invalid duration 'a month'" in capsys.readouterr().err


def test_rules_look_only_at_their_sources_and_languages_as_in_the_daemon(tmp_path: Path) -> None:
    rule = tmp_path / "r.yaml"
    rule.write_text("id: atacms\ntitle: ATACMS\nquery: ATACMS\nsources: [seed-*]\n"
                    "languages: [en]\n")
    articles = [
        article("a", "ATACMS news", source="seed-wire", language="en"),
        article("b", "ATACMS news", source="other-wire", language="en"),
        article("c", "ATACMS Nachrichten", source="seed-wire", language="de"),
    ]
    report = backtest(articles, load_rules([rule]))
    assert report.rules[0].current_hits == 1


def test_changes_keep_the_five_most_recent_headlines_and_the_full_count(tmp_path: Path) -> None:
    before, after = tmp_path / "before.yaml", tmp_path / "after.yaml"
    before.write_text("id: r\ntitle: R\nquery: nothing-matches-this\n")
    after.write_text("id: r\ntitle: R\nquery: ATACMS\n")
    articles = [article(f"a{n}", f"ATACMS report {n}", days=n) for n in range(1, 9)]
    report = backtest(articles, load_rules([before]), load_rules([after]))
    added = report.rules[0].added
    assert added is not None
    assert added.count == 8
    assert [e.title for e in added.examples] == [f"ATACMS report {n}" for n in range(1, 6)]


def test_a_headline_repeated_by_several_articles_is_one_example(tmp_path: Path) -> None:
    before, after = tmp_path / "before.yaml", tmp_path / "after.yaml"
    before.write_text("id: r\ntitle: R\nquery: nothing-matches-this\n")
    after.write_text("id: r\ntitle: R\nquery: ATACMS\n")
    articles = [article(f"a{n}", "ATACMS report", days=n, source=f"outlet-{n}")
                for n in range(1, 4)]
    articles.append(article("other", "Another ATACMS report", days=9))
    report = backtest(articles, load_rules([before]), load_rules([after]))
    added = report.rules[0].added
    assert added is not None
    assert added.count == 4
    assert [(e.title, e.source) for e in added.examples] == [
        ("ATACMS report", "outlet-1"), ("Another ATACMS report", "seed-wire")]


def test_articles_since_yields_the_window_in_id_order_one_batch_at_a_time(store_url: str) -> None:
    save(store_url, ARTICLES)
    store = Store(store_url).open()
    try:
        batches = list(store.articles_since(NOW - timedelta(days=30), batch=3))
        count = store.count_articles_since(NOW - timedelta(days=30))
    finally:
        store.close()
    assert [len(b) for b in batches] == [3, 3, 2]
    assert [a.identity for b in batches for a in b] == [a.identity for a in ARTICLES[:8]]
    first = batches[0][0]
    assert first == ARTICLES[0]
    assert count == 8


def test_a_progress_bar_is_drawn_on_one_line_and_erased_when_done() -> None:
    stream = io.StringIO()
    bar = ProgressBar(2000, stream, width=10, interval=0)
    bar.advance(500)
    bar.advance(1500)
    bar.close()
    drawn = stream.getvalue().split("\r")
    assert drawn[1] == "[##........]  25%  500/2000 articles"
    assert drawn[2] == "[##########] 100%  2000/2000 articles"
    assert drawn[3].strip() == ""
    assert stream.getvalue().endswith("\r")


def test_no_progress_bar_when_stderr_is_not_a_terminal(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, err = run(capsys, "backtest", "--config", str(config))
    assert err == ""
