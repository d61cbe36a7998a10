"""What a rule author needs to tune: hits per rule per day, the noisy and the silent rules.

Builds a ``StatsReport`` from per-day counts the store aggregated
(``store/hit_counts.py``) and the rules loaded now; ``sparkline`` draws a row of
counts. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from monitor.store.hit_counts import DayCount

BARS = "▁▂▃▄▅▆▇█"
NOISIEST = 5


@dataclass(frozen=True, slots=True)
class RuleStats:
    rule_id: str
    title: str | None  # None: hits of a rule that is not loaded any more
    per_day: tuple[int, ...]
    last_hit: datetime | None  # ever, not only in the period

    @property
    def total(self) -> int:
        return sum(self.per_day)

    @property
    def loaded(self) -> bool:
        return self.title is not None


@dataclass(frozen=True, slots=True)
class StatsReport:
    since: datetime
    until: datetime
    days: tuple[date, ...]
    rules: tuple[RuleStats, ...]  # noisiest first, then by id

    @property
    def total(self) -> int:
        return sum(r.total for r in self.rules)

    @property
    def noisiest(self) -> list[RuleStats]:
        return [r for r in self.rules if r.total > 0][:NOISIEST]

    @property
    def silent(self) -> list[RuleStats]:
        """Loaded rules without a hit in the period: broken, too narrow, or quiet news."""
        return [r for r in self.rules if r.loaded and r.total == 0]


def build_stats(counts: Iterable[DayCount], last_hits: Mapping[str, datetime],
                rules: Sequence[tuple[str, str]], since: datetime,
                until: datetime) -> StatsReport:
    """``rules``: (id, title) of the rules loaded now."""
    days = tuple(since.date() + timedelta(days=n)
                 for n in range((until.date() - since.date()).days + 1))
    index = {day: n for n, day in enumerate(days)}
    rows: dict[str, list[int]] = {rule_id: [0] * len(days) for rule_id, _ in rules}
    for count in counts:
        if count.day in index:
            rows.setdefault(count.rule_id, [0] * len(days))[index[count.day]] += count.count
    titles = dict(rules)
    stats = [RuleStats(rule_id, titles.get(rule_id), tuple(per_day), last_hits.get(rule_id))
             for rule_id, per_day in rows.items()]
    stats.sort(key=lambda r: (-r.total, r.rule_id))
    return StatsReport(since, until, days, tuple(stats))


def sparkline(values: Sequence[int]) -> str:
    """One character a value, scaled to the row's largest; a blank for none at all."""
    top = max(values, default=0)
    if top == 0:
        return " " * len(values)
    return "".join(" " if v == 0 else BARS[min(len(BARS) - 1, (v * len(BARS) - 1) // top)]
                   for v in values)
