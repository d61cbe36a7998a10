"""`newsmon backtest`: replay stored articles through the current (and proposed) rules.

Reads the configuration, both rule sets and the store; the replay itself is
``monitor.backtest``. Writes results to stdout and a progress bar to stderr
(on a terminal, for long runs). Changes nothing: no hit, alert or rule file is
written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from monitor.backtest import BacktestReport, Change, RuleResult, backtest
from monitor.config import find_config_path, load_settings
from monitor.durations import format_duration, parse_duration
from monitor.records import Article
from monitor.rules.load import load_rules
from monitor.store import Store

BATCH = 500
PROGRESS_THRESHOLD = 1000  # articles: fewer finish before a bar would help


def duration(text: str) -> timedelta:
    """argparse type for ``--since``: ``30d``, ``12h``, ..."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    settings = load_settings(find_config_path(args.config))
    current = load_rules(settings.rules.paths)
    proposed = load_rules([Path(args.rules)]) if args.rules else None
    since: timedelta = args.since
    store = Store(settings.storage.url).open()
    try:
        start = datetime.now(UTC) - since
        total = store.count_articles_since(start) if sys.stderr.isatty() else 0
        bar = ProgressBar(total, sys.stderr) if total > PROGRESS_THRESHOLD else None
        try:
            report = backtest(_articles(store, start, bar), current, proposed)
        finally:
            if bar is not None:
                bar.close()
    finally:
        store.close()
    if args.json:
        for result in report.rules:
            print(json.dumps(result.to_json(), ensure_ascii=False))
        print(_summary(report, since, len(current.rules),
                       len(proposed.rules) if proposed else None), file=sys.stderr)
    else:
        print(_summary(report, since, len(current.rules),
                       len(proposed.rules) if proposed else None))
        print()
        print("\n".join(format_report(report)))
    return 0


def _articles(store: Store, start: datetime, bar: ProgressBar | None) -> Iterator[Article]:
    for batch in store.articles_since(start, BATCH):
        yield from batch
        if bar is not None:
            bar.advance(len(batch))


def window(since: timedelta) -> str:
    """``the last 7d`` (days as people write them, rather than ``1w``)."""
    days, rest = divmod(since, timedelta(days=1))
    return f"the last {days}d" if days and not rest else f"the last {format_duration(since)}"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def _summary(report: BacktestReport, since: timedelta, current: int, proposed: int | None) -> str:
    if report.first is None or report.last is None:
        head = f"No stored articles in {window(since)}"
    else:
        head = (f"Replayed {plural(report.articles, 'article')} of {window(since)}"
                f" ({_date(report.first)} to {_date(report.last)})")
    sets = plural(current, "current rule") + (
        f" and {plural(proposed, 'proposed rule')}" if proposed is not None else "")
    return f"{head} through {sets}."


def format_report(report: BacktestReport) -> list[str]:
    """The human-readable report, one block per rule id."""
    width = max((len(r.rule_id) for r in report.rules), default=0)
    lines: list[str] = []
    for result in report.rules:
        if result.status == "current":
            off = "  (disabled)" if not result.enabled else ""
            lines.append(f"{result.rule_id:<{width}}  {_hits(result.current_hits)}{off}")
            continue
        lines.append(f"{result.rule_id}: {_comparison(result)}")
        for sign, change in (("+", result.added), ("-", result.removed)):
            if change is not None:
                lines.extend(_examples(sign, change))
    return lines


def _comparison(result: RuleResult) -> str:
    off = ", disabled" if not result.enabled else ""
    if result.status == "new":
        return f"new rule{off}, {_hits(result.proposed_hits)}"
    if result.status == "removed":
        return f"removed rule, {_hits(result.current_hits)} now"
    if result.status == "unchanged":
        return f"unchanged{off}, {_hits(result.current_hits)}"
    added = result.added.count if result.added else 0
    removed = result.removed.count if result.removed else 0
    return (f"{result.status}{off}, {_hits(result.current_hits)} now,"
            f" {result.proposed_hits} proposed: {added} added, {removed} removed")


def _examples(sign: str, change: Change) -> list[str]:
    lines = [f"  {sign} {e.title} ({e.source}, {_date(e.when)})" for e in change.examples]
    if change.count > len(change.examples):
        lines.append(f"  {sign} ... and {change.count - len(change.examples)} more")
    return lines


def _hits(count: int | None) -> str:
    return plural(count or 0, "hit")


def _date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")


class ProgressBar:
    """``[#####.....]  45%  4500/10000 articles`` on one terminal line, redrawn at most
    ten times a second, erased when done."""

    def __init__(self, total: int, stream: TextIO, width: int = 30,
                 interval: float = 0.1) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.width = width
        self.interval = interval
        self.done = 0
        self._drawn_at = float("-inf")
        self._length = 0

    def advance(self, count: int) -> None:
        self.done = min(self.done + count, self.total)
        now = time.monotonic()
        if now - self._drawn_at >= self.interval or self.done == self.total:
            self._drawn_at = now
            self._draw()

    def _draw(self) -> None:
        filled = self.width * self.done // self.total
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}]"
                f" {100 * self.done // self.total:3d}%  {self.done}/{self.total} articles")
        self._length = len(line)
        self.stream.write("\r" + line)
        self.stream.flush()

    def close(self) -> None:
        if self._length:
            self.stream.write("\r" + " " * self._length + "\r")
            self.stream.flush()
