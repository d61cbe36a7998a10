"""`newsmon stats`: hits per rule per day from a seeded store, noisy and silent rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.records import Article, Hit
from monitor.stats import build_stats, sparkline
from monitor.store import NewArticle, SourceState, Store
from monitor.store.hit_counts import DayCount
from tests.conftest import RULES


def test_a_sparkline_scales_to_the_rows_largest_value_and_leaves_empty_days_blank() -> None:
    assert sparkline([0, 1, 4, 8, 0]) == " ▁▄█ "
    assert sparkline([3, 3]) == "██"
    assert sparkline([0, 0, 0]) == "   "
    assert sparkline([]) == ""


def test_the_report_has_a_column_per_day_and_orders_rules_noisiest_first() -> None:
    until = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    since = until - timedelta(days=2)
    counts = [DayCount("quiet", since.date(), 1), DayCount("loud", until.date(), 9),
              DayCount("gone", until.date(), 2),
              DayCount("loud", (since - timedelta(days=1)).date(), 50)]  # before the period
    report = build_stats(counts, {}, [("loud", "Loud"), ("quiet", "Quiet"), ("mute", "Mute")],
                         since, until)
    assert [d.isoformat() for d in report.days] == ["2026-11-24", "2026-11-25", "2026-11-26"]
    assert [(r.rule_id, r.per_day) for r in report.rules] == [
        ("loud", (0, 0, 9)), ("gone", (0, 0, 2)), ("quiet", (1, 0, 0)), ("mute", (0, 0, 0))]
    assert [r.rule_id for r in report.noisiest] == ["loud", "gone", "quiet"]
    assert [r.rule_id for r in report.silent] == ["mute"]  # "gone" is not loaded: not silent
    assert not report.rules[1].loaded


def seed_hits(store_url: str, now: datetime) -> None:
    """long-range-strike-policy: 3 hits two days ago and 5 today; russia-sanctions-package:
    1 today; north-korean-troops: one hit, 30 days ago (outside the period)."""
    store = Store(store_url).open()
    plan = [(now - timedelta(days=30), "north-korean-troops", 1),
            (now - timedelta(days=2), "long-range-strike-policy", 3),
            (now, "long-range-strike-policy", 5), (now, "russia-sanctions-package", 1)]
    n = 0
    try:
        for when, rule, count in plan:
            batch = []
            for _ in range(count):
                n += 1
                article = Article(source="wire", identity=f"a{n}", guid=None, url=None,
                                  title="t", summary="", content="c", author="",
                                  published=when, fetched=when, language="en")
                batch.append(NewArticle(article, f"s{n}", (Hit(rule, ()),), ()))
            store.save_batch(SourceState("wire", "u"), batch, when)
    finally:
        store.close()


def test_stats_shows_hits_per_rule_per_day_and_the_silent_rules(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    seed_hits(store_url, now)
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[storage]\nurl = "{store_url}"\n[rules]\npaths = ["{RULES}"]\n')
    assert main(["stats", "--since", "7d", "--json", "--config", str(config)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["days"]) == 8
    assert data["days"][-1] == now.date().isoformat()
    per_day = {r["rule"]: r["per_day"] for r in data["rules"]}
    assert per_day["long-range-strike-policy"] == [0, 0, 0, 0, 0, 3, 0, 5]
    assert per_day["russia-sanctions-package"] == [0, 0, 0, 0, 0, 0, 0, 1]
    assert per_day["north-korean-troops"] == [0] * 8
    assert data["total"] == 9
    assert [n["rule"] for n in data["noisiest"]] == ["long-range-strike-policy",
                                                      "russia-sanctions-package"]
    (silent,) = data["silent"]
    assert silent["rule"] == "north-korean-troops"
    assert silent["last_hit"].startswith((now - timedelta(days=30)).date().isoformat())

    assert main(["stats", "--config", str(config)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].endswith(", 9 hits")
    row = next(line for line in lines if line.startswith("long-range-strike-policy"))
    assert row.split()[1] == "8"
    assert "▅ █" in row  # 3 then nothing then 5
    assert ("noisiest: long-range-strike-policy (8, 89%), russia-sanctions-package (1, 11%)"
            in lines)
    assert any(line.startswith("  north-korean-troops: last hit ") for line in lines)
