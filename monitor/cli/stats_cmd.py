"""`newsmon stats [--since 7d] [--json]`: hits per rule per day, noisy and silent rules.

Reads the configuration, the rules and the store; the report is ``monitor.stats``.
Changes nothing.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from monitor.config import find_config_path, load_settings
from monitor.durations import format_duration
from monitor.rules.load import load_rules
from monitor.stats import RuleStats, StatsReport, build_stats, sparkline
from monitor.store import Store
from monitor.store.hit_counts import hits_per_day, last_hits


def stats(args: argparse.Namespace) -> int:
    settings = load_settings(find_config_path(args.config))
    rules = load_rules(settings.rules.paths)
    now = datetime.now(UTC)
    since = now - args.since
    store = Store(settings.storage.url).open()
    try:
        counts = hits_per_day(store, since)
        latest = last_hits(store)
    finally:
        store.close()
    report = build_stats(counts, latest, [(r.id, r.title) for r in rules.rules], since, now)
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print(render(report, format_duration(args.since)))
    return 0


def report_json(report: StatsReport) -> dict[str, Any]:
    return {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "days": [d.isoformat() for d in report.days],
        "total": report.total,
        "rules": [{"rule": r.rule_id, "title": r.title, "loaded": r.loaded, "total": r.total,
                   "per_day": list(r.per_day), "last_hit": _iso(r.last_hit)}
                  for r in report.rules],
        "noisiest": [{"rule": r.rule_id, "total": r.total} for r in report.noisiest],
        "silent": [{"rule": r.rule_id, "last_hit": _iso(r.last_hit)} for r in report.silent],
    }


def render(report: StatsReport, period: str) -> str:
    first, last = report.days[0], report.days[-1]
    lines = [f"hits per rule per day, last {period}: {first} to {last} (UTC days),"
             f" {report.total} hits"]
    if not report.rules:
        return "\n".join([*lines, "no rules loaded and no hits stored"])
    width = max(len("RULE"), *(len(r.rule_id) for r in report.rules))
    days = len(report.days)
    lines.append(f"{'RULE':<{width}}  {'TOTAL':>6}  {'PER DAY':<{max(days, 7)}}  "
                 f"{'MAX':>4}  LAST HIT")
    for rule in report.rules:
        lines.append(f"{rule.rule_id:<{width}}  {rule.total:>6}  "
                     f"{sparkline(rule.per_day):<{max(days, 7)}}  {max(rule.per_day):>4}  "
                     f"{_short(rule.last_hit)}{'' if rule.loaded else '  (not loaded now)'}")
    if report.noisiest:
        lines.append("")
        lines.append("noisiest: " + ", ".join(
            f"{r.rule_id} ({r.total}, {_share(r, report)})" for r in report.noisiest))
    lines.append("")
    if report.silent:
        lines.append("silent (no hit in the period; check their queries and examples with"
                     " `newsmon backtest`):")
        lines.extend(f"  {r.rule_id}: last hit {_short(r.last_hit)}" for r in report.silent)
    else:
        lines.append("silent: none (every loaded rule had a hit)")
    return "\n".join(lines)


def _share(rule: RuleStats, report: StatsReport) -> str:
    return f"{100 * rule.total / report.total:.0f}%" if report.total else "0%"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _short(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "never"
