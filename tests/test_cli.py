"""The command line contract of DESIGN.md: outputs and exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.store import Store
from tests.conftest import REPO, RULES, SEEDS, FeedServer, Route
from tests.test_deliver import Clock, file, make_alert


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSMON_CONFIG", raising=False)


def test_rules_check_passes_on_the_shipped_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "rules", "check", str(RULES))
    assert code == 0, out
    assert "error:" not in out
    assert "3 rules checked: 0 errors" in err


def test_rules_check_reports_path_line_col_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad-rule\ntitle: Bad\nquery: (ATACMS OR\nqeury: x\n")
    code, out, _ = run(capsys, "rules", "check", str(bad))
    assert code == 1
    lines = out.splitlines()
    assert f"{bad}:3:18: error: query: the query ends where a term was expected" in lines
    assert f"{bad}:4:1: error: unknown key 'qeury': did you mean 'query'?" in lines


def test_rules_check_runs_each_rules_examples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = tmp_path / "r.yaml"
    rule.write_text(
        "id: sanctions\ntitle: Sanctions\nquery: sanction*\nexamples:\n"
        "  match: ['EU adopts sanctions', 'Nothing relevant here']\n"
        "  no_match: ['Weather: sunny']\n"
    )
    code, out, _ = run(capsys, "rules", "check", str(rule))
    assert code == 1
    assert out.strip() == (f"{rule}:5:34: error: example should match but does not rule "
                           "'sanctions': 'Nothing relevant here'")


def test_rules_check_warns_without_failing(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    rule = tmp_path / "r.yaml"
    rule.write_text("id: us-policy\ntitle: US policy\nquery: us AND policy\n")
    code, out, _ = run(capsys, "rules", "check", str(rule))
    assert code == 0
    assert f"{rule}:1:1: warning: rule has no examples" in out
    assert "warning: query: 'us' also matches the ordinary word" in out


def test_rules_test_json_prints_spans_into_the_raw_field_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "rules", "test", str(RULES), str(SEEDS / "articles.jsonl"),
                       "--json")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    articles = {
        a["id"]: a for a in map(json.loads, (SEEDS / "articles.jsonl").read_text().splitlines())
    }
    assert {"article": "seed-article", "rule": "long-range-strike-policy"} in [
        {"article": r["article"], "rule": r["rule"]} for r in records
    ]
    assert not any(r["article"] == "wire-nk-missile-test" for r in records)
    for record in records:
        assert record["spans"], record
        for span in record["spans"]:
            raw = articles[record["article"]][span["field"]]
            assert raw[span["start"] : span["end"]] == span["text"]


def test_rules_test_reads_a_regional_language_tag_as_the_daemon_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    rules = tmp_path / "english.yaml"
    rules.write_text("id: english\ntitle: English\nquery: sanctions\nlanguages: [en]\n")
    articles = tmp_path / "articles.jsonl"
    articles.write_text("".join(
        json.dumps({"id": tag, "title": "New sanctions", "language": tag}) + "\n"
        for tag in ("en", "en-US", "EN-gb", "de-DE")))
    code, out, err = run(capsys, "rules", "test", str(rules), str(articles), "--json")
    assert code == 0, err
    # the daemon keeps a feed's primary subtag (normalise_entry): en-US is en, de-DE is de
    assert [json.loads(line)["article"] for line in out.splitlines()] == ["en", "en-US", "EN-gb"]


def test_rules_test_reads_plain_text_with_the_file_name_as_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "rules", "test", str(RULES),
                       str(SEEDS / "articles" / "seed-article.txt"), "--json")
    assert code == 0
    rules = {json.loads(line)["rule"] for line in out.splitlines()}
    ids = {json.loads(line)["article"] for line in out.splitlines()}
    assert ids == {"seed-article.txt"}
    assert {"long-range-strike-policy", "russia-sanctions-package"} <= rules


def test_rules_test_reads_feeds_and_explains(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "test", str(RULES / "north-korean-troops.yaml"),
                       str(SEEDS / "feeds" / "wire.xml"), "--explain")
    assert code == 0
    assert "MATCH north-korean-troops" in out
    assert "no match north-korean-troops: query did not match" in out


def test_rules_test_with_invalid_rules_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntitle: X\nquery: NOT y\n")
    code, _, err = run(capsys, "rules", "test", str(bad), str(SEEDS / "articles.jsonl"))
    assert code == 2
    assert f"{bad}:3:8: error: query: a query of negations only" in err


def test_rules_test_with_bad_input_names_the_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('{"id": "a", "title": "ok"}\n{"id": "b", "title": \n')
    code, _, err = run(capsys, "rules", "test", str(RULES), str(data))
    assert code == 2
    assert f"{data}:2:" in err


def test_an_invalid_configuration_exits_2_naming_each_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text('[defaults]\ninterval = "soon"\n\n[[sources]]\nname = "a"\nurl = "x"\n'
                      'colour = "red"\n')
    code, _, err = run(capsys, "run", "--once", "--config", str(config))
    assert code == 2
    assert "defaults.interval: invalid duration 'soon'" in err
    assert "sources[0].colour: unknown key" in err


def test_a_rule_naming_an_unknown_channel_is_an_error_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text("id: r\ntitle: R\nquery: x\nnotify: [nowhere]\n")
    config = tmp_path / "newsmon.toml"
    config.write_text('[rules]\npaths = ["rules"]\n')
    code, _, err = run(capsys, "run", "--once", "--config", str(config))
    assert code == 2
    assert f"{rules / 'r.yaml'}:4:9: error: notify: unknown channel 'nowhere'" in err


def test_a_missing_configuration_file_exits_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "run", "--config", str(tmp_path / "nope.toml"))
    assert code == 2
    assert "configuration file not found" in err


def test_status_shows_sources_and_outbox_but_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = SEEDS / "feeds" / "wire.xml"
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[rules]\npaths = ["{RULES}"]\n[defaults]\nmax_age = "off"\n'
                      f'[[sources]]\nname = "seed-wire"\nurl = "{feed}"\n'
                      '[channels.console]\ntype = "console"\n'
                      '[channels.slack]\ntype = "slack"\nwebhook_url = "https://hooks.example/T0/SECRET123"\n')
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "run", "--once", "--config", str(config))[0] == 0
    code, out, _ = run(capsys, "status", "--config", str(config))
    assert code == 0
    assert "seed-wire: last success" in out
    assert "console:" in out
    assert "sent" in out
    assert "rules: 3 loaded" in out
    assert "SECRET123" not in out


def _webhook_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///state.db"\n[rules]\npaths = ["{RULES}"]\n'
                      f'[channels.hook]\ntype = "webhook"\nurl = "{url}"\n')
    return config


def test_channels_test_sends_a_test_alert_and_says_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer
) -> None:
    config = _webhook_config(tmp_path, feed_server.url("/hook/SECRET"))
    code, out, _ = run(capsys, "channels", "test", "hook", "--config", str(config))
    assert code == 0
    assert out.startswith("ok: test alert sent to hook")
    (request,) = feed_server.requests_to("/hook/SECRET")
    assert json.loads(request.body)["rule"]["id"] == "newsmon-test"


def test_channels_test_reports_the_exact_error_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer
) -> None:
    feed_server.script("/hook/SECRET", Route(status=404))
    config = _webhook_config(tmp_path, feed_server.url("/hook/SECRET"))
    code, _, err = run(capsys, "channels", "test", "hook", "--config", str(config))
    assert code == 1
    assert err.strip() == "failed: HTTP 404 from the webhook (client, permanent)"
    assert "SECRET" not in err


def test_a_successful_channels_test_clears_a_failing_channel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer
) -> None:
    config = _webhook_config(tmp_path, feed_server.url("/hook/SECRET"))
    store = Store(f"sqlite:///{tmp_path / 'state.db'}").open()
    store.channel_health.set_failing("hook", "Slack said invalid_auth", "old", datetime.now(UTC))
    store.close()
    code, out, _ = run(capsys, "status", "--config", str(config))
    assert "hook: no alerts yet; FAILING since" in out
    assert "Slack said invalid_auth" in out
    code, out, _ = run(capsys, "channels", "test", "hook", "--config", str(config))
    assert code == 0
    assert "was marked failing (Slack said invalid_auth); cleared" in out
    _, out, _ = run(capsys, "status", "--config", str(config))
    assert "FAILING" not in out


def test_status_shows_the_waiting_alerts_of_a_channel_no_longer_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _webhook_config(tmp_path, "http://127.0.0.1:9/hook")
    store = Store(f"sqlite:///{tmp_path / 'state.db'}").open()
    file(store, Clock(), (1, make_alert(1, "gone"), {"in_digest": True, "hold": True}))
    store.close()
    code, out, _ = run(capsys, "status", "--config", str(config))
    assert code == 0
    assert ("  gone: 1 held; not in the configuration any more: its waiting alerts are"
            " retried, then recorded failed after delivery.max_age") in out.splitlines()


def test_channels_test_of_an_unknown_channel_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text("")
    code, _, err = run(capsys, "channels", "test", "nope", "--config", str(config))
    assert code == 2
    assert "no channel named 'nope'" in err


def _shape(value: object) -> object:
    """The keys of a JSON value, recursively (the first item standing for a list's items)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None


def test_status_json_has_the_shape_the_operations_docs_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = SEEDS / "feeds" / "wire.xml"
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[rules]\npaths = ["{RULES}"]\n[defaults]\nmax_age = "off"\n'
                      f'[[sources]]\nname = "seed-wire"\nurl = "{feed}"\n')
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "silence", "add", "--rule", "north-korean-troops", "--for", "1h",
               "--config", str(config))[0] == 0
    assert run(capsys, "run", "--once", "--config", str(config))[0] == 0
    code, out, _ = run(capsys, "status", "--json", "--config", str(config))
    assert code == 0
    data = json.loads(out)
    docs = (REPO / "docs" / "operations.md").read_text()
    example = json.loads(docs.split("## Status", 1)[1].split("```json", 1)[1].split("```", 1)[0])
    assert data["silences"][0]["alerts"] == {"deferred": 2}
    # Free-form parts: no alert failed here; a silence's alerts are counted per status.
    data["failed_alerts"] = example["failed_alerts"]
    data["silences"][0]["alerts"] = example["silences"][0]["alerts"]
    # No node runs once `run --once` is over (test_migrate_state.py pins a node's shape).
    assert data["nodes"] == []
    data["nodes"] = example["nodes"]
    assert _shape(data) == _shape(example)
    assert data["sources"][0]["consecutive_failures"] == 0
